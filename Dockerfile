# kappa: change-data-capture into log-compacted Kafka topics.
#   docker build -t kappa .      (or: docker compose up --build)
# Only the workspace manifests and its member crates are copied (every member must be there, or
# cargo refuses the workspace), so the build context's target/ and .kappa-state/ are never sent
# (BuildKit transfers what COPY names).
#
# The builder is the toolchain CI tests with, the workspace's rust-version; override with
# --build-arg RUST_VERSION=1.xx.
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY schemas ./schemas
COPY source ./source
COPY sink ./sink
COPY materialize ./materialize
COPY chaos ./chaos
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
