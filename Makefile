# audit-sidecar. The two commands in the README: `make demo` and `make test`.
# Each installs what it needs (the wasm target, a .venv with the pinned Envoy and Pact
# tools, Debian's docker-compose for checking docker-compose.yml, Debian's postgresql for
# the PostgreSQL store's tests), then builds.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV       := .venv
WASM       := target/wasm32-wasip1/wasm-release/audit_filter.wasm
COLLECTOR  := target/debug/audit-collector

.PHONY: help setup build demo test lint clean

help:
	@echo "make demo   run Envoy + audit filter + collector + a Pact Broker stand-in on 127.0.0.1:$${LISTEN_PORT:-10000}"
	@echo "make test   run every test: unit tests, then end-to-end tests in real Envoy"
	@echo "make build  build the collector and the filter's wasm"
	@echo "make lint   clippy (native and wasm32-wasip1) and rustfmt check"
	@echo "make bench  side-by-side benchmarks (bench/README.md); appends to bench/results.md"

## setup: everything the demo and the tests run, installed into this checkout.
setup: $(VENV)/.installed
	@rustup target list --installed | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1

$(VENV)/.installed: tests/requirements.txt
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
	touch $@

## The compose-file check uses Debian's docker-compose (no Docker engine is needed to validate).
.PHONY: setup-compose
setup-compose:
	@command -v docker-compose >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }

build: setup
	cargo build -p audit-collector
	cargo build -p audit-filter --target wasm32-wasip1 --profile wasm-release

demo: build
	cargo run --quiet -p audit-e2e --bin audit-demo

## The PostgreSQL store's tests start their own throwaway server from Debian's binaries.
.PHONY: setup-postgres
setup-postgres:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
	  apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq postgresql >/dev/null; }

test: build setup-compose setup-postgres
	cargo test --workspace --exclude audit-e2e
	cargo test -p audit-e2e
	bash tests/schemathesis.sh
	$(VENV)/bin/python tests/siem/check_exports.py

lint: setup
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p audit-filter --target wasm32-wasip1 -- -D warnings
	cargo fmt --all --check

clean:
	cargo clean
	rm -rf $(VENV) .data

## bench: measurements, not tests (bench/README.md). Release builds; wrk, nginx and taskset
## from Debian when missing; the bench tools are their own workspace, built only here.
.PHONY: bench
bench: setup
	@command -v wrk >/dev/null && command -v nginx >/dev/null && command -v taskset >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light util-linux >/dev/null; }
	cargo build --release -p audit-collector
	cargo build -p audit-filter --target wasm32-wasip1 --profile wasm-release
	cargo build --release --manifest-path bench/Cargo.toml -p audit-bench
	cargo build --manifest-path bench/Cargo.toml -p noop-filter --target wasm32-wasip1 --profile wasm-release
	python3 bench/run.py
