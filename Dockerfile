# kappa: change-data-capture into log-compacted Kafka topics.
#   docker build -t kappa .      (or: docker compose up --build)
# Only the workspace manifests and the four crates are copied, so the build context's target/
# and .kappa-state/ are never sent (BuildKit transfers what COPY names).
#
# The builder is not rust:1.85 (the workspace's declared rust-version): the locked dependencies
# need a newer rustc (uuid 1.29 needs 1.89; pgwire-replication 0.5 and schema_registry_converter
# 6.0 need 1.88). The default is the toolchain CI tests with; override with
# --build-arg RUST_VERSION=1.xx.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY schemas ./schemas
COPY source ./source
COPY sink ./sink
COPY src ./src
RUN cargo build --release --bin kappa

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --no-create-home --shell /usr/sbin/nologin kappa
COPY --from=builder /src/target/release/kappa /usr/local/bin/kappa
USER kappa
CMD ["kappa", "run", "--config", "/etc/kappa/kappa.toml"]
