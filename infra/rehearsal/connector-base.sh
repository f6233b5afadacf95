#!/usr/bin/env bash
# Builds a local stand-in for gcr.io/distroless/cc-debian12:nonroot, the base of the
# connector's runtime stage (infra/connector.Dockerfile), without pulling anything: the
# rehearsal (infra/rehearsal) cannot fetch from gcr.io everywhere, so this assembles a root
# filesystem from the host and `docker import`s it, as infra/sam/base-image.sh does for SAM.
#
#   infra/rehearsal/connector-base.sh [IMAGE] [EXTRA_CA_PEM]
#       IMAGE         default billwire/rehearsal-distroless-cc:nonroot
#       EXTRA_CA_PEM  a PEM file appended to the CA bundle (the rehearsal's test CA, for
#                     its fake AWS endpoints served over TLS)
#
# What it copies from distroless (GoogleContainerTools/distroless: common/BUILD.bazel,
# static/static.bzl, cc/cc.bzl), so that the connector meets the same image:
#   - users: /etc/passwd with root (0), nobody (65534) and nonroot (65532), every shell
#     /sbin/nologin (which does not exist); /etc/group with root, nobody, tty, staff, nonroot.
#   - /home (0755), /home/nonroot (0700, owned by 65532:65532), /root (0700).
#   - /tmp with mode 1777 (distroless's tmp.tar): a VOLUME declared at /tmp is created from
#     this directory, mode included.
#   - the CA bundle at /etc/ssl/certs/ca-certificates.crt, /etc/nsswitch.conf, /etc/os-release.
#   - the image config: USER 65532 (distroless sets the uid alone; the group, 65532, comes
#     from /etc/passwd), WORKDIR /home/nonroot, ENV PATH=... and SSL_CERT_FILE=... as
#     distroless sets them, no entrypoint, no command.
#   - NO shell and no tools: a health check written as CMD-SHELL fails here as it does on
#     the real image.
# What differs: glibc and libgcc_s are the host's (the connector binary the rehearsal runs
# is built here, against them; the real image carries Debian 12's, the same major version
# on a Debian 12 host), and the cc image's libstdc++/libgomp/libssl are left out (a Rust
# binary linked with rustls loads none of them).
#
# The image carries the recipe's hash in the label billwire.recipe (this script, the host's
# glibc, the extra CA); infra/rehearsal rebuilds it only when that changes.
set -euo pipefail

IMAGE="${1:-billwire/rehearsal-distroless-cc:nonroot}"
EXTRA_CA="${2:-}"

need() { command -v "$1" >/dev/null 2>&1 || { echo "connector-base.sh: $1 is missing ($2)" >&2; exit 2; }; }
need docker "apt-get install docker.io"
need tar "apt-get install tar"
need ldconfig "glibc's ldconfig"

if [ -n "$EXTRA_CA" ] && [ ! -f "$EXTRA_CA" ]; then
  echo "connector-base.sh: no extra CA file at $EXTRA_CA" >&2; exit 2
fi
if [ -z "${BILLWIRE_REHEARSAL_RECIPE:-}" ]; then
  BILLWIRE_REHEARSAL_RECIPE="$( { cat "$0"; ldd --version 2>/dev/null | head -n1; [ -z "$EXTRA_CA" ] || cat "$EXTRA_CA"; } | sha256sum | cut -c1-16)"
fi
CA="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
[ -f "$CA" ] || { echo "connector-base.sh: no CA bundle at $CA (apt-get install ca-certificates)" >&2; exit 2; }

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
ROOT="$WORK/root"
mkdir -p "$ROOT"/{etc/ssl/certs,home/nonroot,root,tmp,usr/local/bin}
chmod 0755 "$ROOT" "$ROOT/home" "$ROOT/etc" "$ROOT/usr" "$ROOT/usr/local" "$ROOT/usr/local/bin"
chmod 0700 "$ROOT/root" "$ROOT/home/nonroot"
chmod 1777 "$ROOT/tmp"

# glibc and libgcc_s from the host: what a Rust binary built here loads (ldd
# target/debug/connector: libgcc_s, libm, libc, ld-linux), the rest of glibc's core set,
# and the NSS modules for /etc/hosts and DNS. Laid out as the host has them (Debian 12 is
# usr-merged: /lib -> usr/lib, /lib64 -> usr/lib64), so the binary's interpreter
# /lib64/ld-linux-x86-64.so.2 resolves and the loader finds the libraries in its default
# multiarch directory.
LIBC="$(ldconfig -p | awk '/libc\.so\.6 .*x86-64/ {print $NF; exit}')"
[ -n "$LIBC" ] || { echo "connector-base.sh: cannot find the host's x86-64 libc" >&2; exit 2; }
LIBDIR="$(dirname "$(readlink -f "$LIBC")")"
mkdir -p "$ROOT$LIBDIR"
for lib in ld-linux-x86-64.so.2 libc.so.6 libm.so.6 libgcc_s.so.1 libpthread.so.0 libdl.so.2 \
           librt.so.1 libresolv.so.2 libnss_files.so.2 libnss_dns.so.2 libutil.so.1; do
  if [ -e "$LIBDIR/$lib" ]; then
    cp -L "$LIBDIR/$lib" "$ROOT$LIBDIR/$lib"
  fi
done
[ -e "$ROOT$LIBDIR/libc.so.6" ] || { echo "connector-base.sh: libc.so.6 not found in $LIBDIR" >&2; exit 2; }
case "$LIBDIR" in
  /usr/lib/*)
    ln -s usr/lib "$ROOT/lib"
    mkdir -p "$ROOT/usr/lib64"
    ln -s usr/lib64 "$ROOT/lib64"
    ln -s "$LIBDIR/ld-linux-x86-64.so.2" "$ROOT/usr/lib64/ld-linux-x86-64.so.2"
    ;;
  *)
    mkdir -p "$ROOT/lib64"
    ln -s "$LIBDIR/ld-linux-x86-64.so.2" "$ROOT/lib64/ld-linux-x86-64.so.2"
    ;;
esac

# The CA bundle, with the rehearsal's own CA appended when given.
cp "$CA" "$ROOT/etc/ssl/certs/ca-certificates.crt"
if [ -n "$EXTRA_CA" ]; then
  { echo; cat "$EXTRA_CA"; } >> "$ROOT/etc/ssl/certs/ca-certificates.crt"
fi
chmod 0644 "$ROOT/etc/ssl/certs/ca-certificates.crt"

# Users and groups exactly as distroless writes them (common/BUILD.bazel).
cat > "$ROOT/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
cat > "$ROOT/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
tty:x:5:
staff:x:50:
nonroot:x:65532:
EOF
printf 'passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n' > "$ROOT/etc/nsswitch.conf"
cat > "$ROOT/etc/os-release" <<'EOF'
PRETTY_NAME="Distroless (Billwire rehearsal stand-in, infra/rehearsal/connector-base.sh)"
NAME="Debian GNU/Linux"
ID=debian
VERSION_ID="12"
EOF
chmod 0644 "$ROOT/etc/passwd" "$ROOT/etc/group" "$ROOT/etc/nsswitch.conf" "$ROOT/etc/os-release"

# Owners as distroless has them whoever runs this (a member of the docker group need not be
# root): everything root's, /home/nonroot nonroot's.
TAR="$WORK/rootfs.tar"
tar -C "$ROOT" --numeric-owner --owner=0 --group=0 --exclude=./home/nonroot -cf "$TAR" .
tar -C "$ROOT" --numeric-owner --owner=65532 --group=65532 -rf "$TAR" ./home/nonroot

docker import \
  --change 'USER 65532' \
  --change 'WORKDIR /home/nonroot' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt' \
  --change "LABEL billwire.recipe=$BILLWIRE_REHEARSAL_RECIPE" \
  --message "Billwire's local gcr.io/distroless/cc-debian12:nonroot stand-in (infra/rehearsal/connector-base.sh)" \
  "$TAR" "$IMAGE" >/dev/null
echo "$IMAGE"
