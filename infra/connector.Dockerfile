# The connector's container image, for ECS Fargate (ARM64; see ConnectorImage in template.yaml).
#   docker build -f infra/connector.Dockerfile --platform linux/arm64 -t billwire-connector .
#   docker tag billwire-connector <account>.dkr.ecr.<region>.amazonaws.com/billwire-connector:<tag>
#   docker push <account>.dkr.ecr.<region>.amazonaws.com/billwire-connector:<tag>
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p connector

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/connector /usr/local/bin/connector
# CA bundles for TLS to Postgres (DATABASE_CA_FILE=/opt/rds-global-bundle.pem; infra/certs/README.md).
COPY infra/certs/ /opt/
# SIGTERM (ECS stop) makes it flush cursors and release leadership before exiting.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/connector"]
