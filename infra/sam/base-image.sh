#!/usr/bin/env bash
# Builds the local base image that `sam local` runs Billwire's functions in, without pulling
# anything: public.ecr.aws/lambda/provided:al2023 cannot be fetched everywhere (CI, offline
# machines), so this assembles a root filesystem from the host and `docker import`s it.
#
#   infra/sam/base-image.sh [IMAGE]        (default billwire/sam-provided:al2023)
#
# What SAM needs from a base image for a provided.al2023 (custom runtime) function
# (samcli/local/docker/lambda_image.py and lambda_container.py):
#   - /bin/sh, mv, chmod, cp, rm: SAM builds its own image FROM this one with
#     `ADD aws-lambda-rie /var/rapid/` and `RUN mv ... && chmod +x ...`, and copies layers
#     to /opt with `RUN cp -rf`. A static busybox provides them.
#   - the entrypoint is SAM's: /var/rapid/aws-lambda-rie (the Runtime Interface Emulator,
#     bundled with the SAM CLI), which runs /var/task/bootstrap; the function's code
#     directory is mounted at /var/task, layers are in /opt.
#   - the function binary's shared libraries: glibc (libc, libm, ld-linux), libgcc_s. They
#     are copied from the host that built the binary, so a host build runs unchanged.
#   - CA certificates (TLS to RDS uses DATABASE_CA_FILE; the AWS SDK uses the system roots).
# The image carries the recipe's hash in the label billwire.recipe; infra/samlocal rebuilds
# the image when this file (or the host's glibc) changes.
set -euo pipefail

IMAGE="${1:-billwire/sam-provided:al2023}"
RECIPE="${BILLWIRE_SAM_RECIPE:-$(sha256sum "$0" | cut -c1-16)}"

need() { command -v "$1" >/dev/null 2>&1 || { echo "base-image.sh: $1 is missing ($2)" >&2; exit 2; }; }
need docker "apt-get install docker.io"
BUSYBOX="${BUSYBOX:-/bin/busybox}"
[ -x "$BUSYBOX" ] || { echo "base-image.sh: no busybox at $BUSYBOX (apt-get install busybox-static)" >&2; exit 2; }
if ldd "$BUSYBOX" >/dev/null 2>&1; then
  echo "base-image.sh: $BUSYBOX is dynamically linked; install busybox-static" >&2; exit 2
fi
CA="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
[ -f "$CA" ] || { echo "base-image.sh: no CA bundle at $CA (apt-get install ca-certificates)" >&2; exit 2; }

ROOT="$(mktemp -d)"
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT"/{bin,etc/ssl/certs,etc/pki/tls/certs,lib64,usr/lib64,tmp,var/task,var/runtime,var/rapid,var/lang/lib,opt}
chmod 1777 "$ROOT/tmp"

# busybox and the applets SAM's Dockerfile and a person debugging need.
cp "$BUSYBOX" "$ROOT/bin/busybox"
for applet in sh mv cp rm chmod mkdir ls cat env ln sleep ps id wget nc; do
  ln -s busybox "$ROOT/bin/$applet"
done

# glibc and libgcc_s, from the host: the libraries any Rust binary built here may load
# (ldd target/debug/<function>: libgcc_s, libm, libc, ld-linux), plus the rest of glibc's
# core set, and the NSS modules for /etc/hosts and DNS lookups.
LIBDIR="$(dirname "$(readlink -f "$(ldconfig -p | awk '/libc\.so\.6 .*x86-64/ {print $NF; exit}')")")"
[ -d "$LIBDIR" ] || { echo "base-image.sh: cannot find the host's x86-64 libc" >&2; exit 2; }
mkdir -p "$ROOT$LIBDIR"
for lib in ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libgcc_s.so.1 libpthread.so.0 libdl.so.2 \
           librt.so.1 libresolv.so.2 libnss_files.so.2 libnss_dns.so.2 libutil.so.1; do
  if [ -e "$LIBDIR/$lib" ]; then
    cp -L "$LIBDIR/$lib" "$ROOT$LIBDIR/$lib"
  fi
done
[ -e "$ROOT$LIBDIR/libc.so.6" ] || { echo "base-image.sh: libc.so.6 not found in $LIBDIR" >&2; exit 2; }
ln -s "$LIBDIR/ld-linux-x86-64.so.2" "$ROOT/lib64/ld-linux-x86-64.so.2"
printf '%s\n' "$LIBDIR" /lib64 /usr/lib64 > "$ROOT/etc/ld.so.conf"

# CA certificates where Debian and Amazon Linux keep them.
cp "$CA" "$ROOT/etc/ssl/certs/ca-certificates.crt"
ln -s /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/pki/tls/certs/ca-bundle.crt"
ln -s /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/cert.pem"

printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' > "$ROOT/etc/passwd"
printf 'root:x:0:\nnobody:x:65534:\n' > "$ROOT/etc/group"
printf 'hosts: files dns\n' > "$ROOT/etc/nsswitch.conf"

# The same environment as AWS's provided.al2023 image.
tar -C "$ROOT" -c . | docker import \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/opt/bin' \
  --change "ENV LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:$LIBDIR:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib" \
  --change 'ENV LANG=en_US.UTF-8' \
  --change 'ENV TZ=:/etc/localtime' \
  --change 'ENV LAMBDA_TASK_ROOT=/var/task' \
  --change 'ENV LAMBDA_RUNTIME_DIR=/var/runtime' \
  --change 'WORKDIR /var/task' \
  --change "LABEL billwire.recipe=$RECIPE" \
  --change 'ENTRYPOINT ["/var/rapid/aws-lambda-rie"]' \
  --message "Billwire's local provided.al2023 stand-in (infra/sam/base-image.sh)" \
  - "$IMAGE" >/dev/null
echo "$IMAGE"
