# The connector's container image, for ECS Fargate. Build it for the stack's Architecture
# (arm64 by default) from the repository root, on any machine: the build stage runs on the
# build machine's platform and cross-compiles for the target one.
#
#   docker buildx build -f infra/connector.Dockerfile --platform linux/arm64 -t <repo>:<tag> --push .
#   (Architecture=x86_64: --platform linux/amd64)
#
# The binary is /usr/local/bin/connector; `connector health` is the task's health check.
FROM --platform=$BUILDPLATFORM rust:1.95-bookworm AS build
ARG TARGETARCH
WORKDIR /src
# The Rust target and the C cross toolchain for it (aws-lc-sys compiles C). On a matching
# build machine the native gcc already is that toolchain.
RUN set -eux; \
    case "$TARGETARCH" in \
      arm64) triple=aarch64-unknown-linux-gnu; gnu=aarch64-linux-gnu; pkg=gcc-aarch64-linux-gnu ;; \
      amd64) triple=x86_64-unknown-linux-gnu;  gnu=x86_64-linux-gnu;  pkg=gcc-x86-64-linux-gnu ;; \
      *) echo "unsupported TARGETARCH=$TARGETARCH (arm64 or amd64)" >&2; exit 1 ;; \
    esac; \
    if ! command -v "$gnu-gcc" >/dev/null; then \
      apt-get update; apt-get install -y --no-install-recommends "$pkg" libc6-dev-"${TARGETARCH}"-cross; \
      rm -rf /var/lib/apt/lists/*; \
    fi; \
    rustup target add "$triple"; \
    echo "$triple" > /target-triple; echo "$gnu" > /target-gnu
COPY . .
RUN set -eux; \
    triple="$(cat /target-triple)"; gnu="$(cat /target-gnu)"; \
    env_triple="$(echo "$triple" | tr 'a-z-' 'A-Z_')"; \
    export "CARGO_TARGET_${env_triple}_LINKER=$gnu-gcc"; \
    export "CC_$(echo "$triple" | tr '-' '_')=$gnu-gcc" "AR_$(echo "$triple" | tr '-' '_')=$gnu-ar"; \
    cargo build --release --locked -p connector --target "$triple"; \
    cp "target/$triple/release/connector" /connector

# The runtime stage has no --platform: it is the target platform's image.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /connector /usr/local/bin/connector
# CA bundle for TLS to Postgres: DATABASE_CA_FILE=/opt/rds-ca-bundle.pem (infra/certs/README.md).
COPY infra/certs/rds-ca-bundle.pem /opt/rds-ca-bundle.pem
# /tmp must stay writable for this image's user (nonroot, uid 65532): the running connector
# keeps its health file there (CONNECTOR_HEALTH_FILE) and `connector health` reads it. The
# task has a read-only root filesystem and mounts a Fargate bind volume at /tmp
# (template.yaml, ConnectorTaskDefinition). Fargate creates a bind volume as an empty
# directory owned by root with mode 0755, which nonroot cannot write: the health check would
# never pass and the deployment circuit breaker would roll the stack back. Unless the image
# declares a VOLUME at exactly the mount's containerPath: then ECS copies what the image has
# at that path into the volume, permissions included ("Use bind mounts with Amazon ECS",
# ECS Developer Guide: "By default, the volume permissions are set to 0755 and the owner as
# root. You can customize these permissions in the Dockerfile"; aws/containers-roadmap#938).
# distroless's /tmp is root-owned with mode 1777, so the task's /tmp is a normal, sticky,
# world-writable /tmp. The path must equal the containerPath (not a symlink to it); the
# rehearsal (infra/rehearsal, tests/fargate.rs) fails if this line goes. With plain
# `docker run`, it is an anonymous volume: /tmp stays writable under --read-only too.
VOLUME /tmp
# ECS runs the same check (template.yaml); this one serves `docker run` and other hosts.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/connector", "health"]
# SIGTERM (ECS stop) makes it flush cursors and release leadership before exiting.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/connector"]
