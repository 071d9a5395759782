# audit-sidecar. The two commands in the README: `make demo` and `make test`.
# Each installs what it needs (the wasm target, a .venv with the pinned Envoy and Pact
# tools, Debian's docker-compose for checking docker-compose.yml, Debian's postgresql for
# the PostgreSQL store's tests), then builds.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV       := .venv
WASM       := target/wasm32-wasip1/wasm-release/audit_filter.wasm
COLLECTOR  := target/debug/audit-collector

.PHONY: help setup build demo test lint clean setup-browser screenshot

help:
	@echo "make demo   run Envoy + audit filter + collector + a Pact Broker stand-in on 127.0.0.1:$${LISTEN_PORT:-10000}"
	@echo "make test   run every test: unit tests, then end-to-end tests in real Envoy"
	@echo "make build  build the collector and the filter's wasm"
	@echo "make lint   clippy (native and wasm32-wasip1), rustfmt check (bench tools too), no import cycles"
	@echo "make screenshot  regenerate docs/viewer.png (the viewer, from the browser tests)"
	@echo "make bench  side-by-side benchmarks (bench/README.md); appends to bench/results.md"
	@echo "make fuzz   coverage-guided fuzzing of every target in fuzz/, FUZZ_SECONDS each (docs/fuzzing.md)"

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
	cargo build --release -p audit-filter-native

demo: build
	AUDIT_REPO_ROOT="$(CURDIR)" cargo run --quiet -p audit-e2e --bin audit-demo

## The viewer's browser tests (tests/tests/viewer.rs) drive Debian's chromium with
## playwright-core from npm (tests/browser/, locked); no browser is ever downloaded.
setup-browser:
	@command -v chromium >/dev/null || { apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null; }
	@[ tests/browser/node_modules/.package-lock.json -nt tests/browser/package-lock.json ] || \
	  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

## screenshot: docs/viewer.png, the README's picture, taken by the browser test run.
screenshot: build setup-browser
	VIEWER_SCREENSHOT=docs/viewer.png cargo test -p audit-e2e --test viewer

## The PostgreSQL store's tests start their own throwaway server from Debian's binaries;
## the TLS tests make its certificate with the openssl command.
.PHONY: setup-postgres
setup-postgres:
	@{ ls /usr/lib/postgresql/*/bin/postgres && command -v openssl; } >/dev/null 2>&1 || { \
	  apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq postgresql openssl >/dev/null; }

## The instruction budgets (tests/instructions/) count with valgrind's callgrind.
.PHONY: setup-valgrind
setup-valgrind:
	@command -v valgrind >/dev/null && command -v callgrind_annotate >/dev/null || { \
	  apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq valgrind >/dev/null; }

## The end-to-end tests of what the filter does run twice: against the wasm filter
## (envoy.yaml), then the native module (envoy-native.yaml, AUDIT_FILTER_HOST=native). The
## collector's own (audit_api, postgres_replicas, viewer) and native_host (which runs both
## hosts itself) run once.
NATIVE_E2E := --test as_sent --test trail --test broker_clients --test identity --test redaction --test delivery \
  --test completeness --test envoy_restarts --test envoy_stops --test deployment_files --test demo

test: build setup-compose setup-postgres setup-browser setup-valgrind
	node --test collector/ui/tests/
	cargo test --workspace --exclude audit-e2e
	python3 -m unittest discover -s tests/instructions
	python3 tests/instructions/check.py
	cargo test -p audit-e2e
	AUDIT_FILTER_HOST=native cargo test -p audit-e2e $(NATIVE_E2E)
	bash tests/schemathesis.sh
	$(VENV)/bin/python tests/siem/check_exports.py

## lint: also type-checks the fuzz targets (their own workspace) on stable, so they cannot rot,
## and checks the bench tools' formatting (their own workspace too).
lint: setup
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p audit-filter-core -p audit-filter --target wasm32-wasip1 -- -D warnings
	cargo clippy -p audit-filter-core -p audit-filter --target wasm32-wasip1 --features audit-filter/cost-stages -- -D warnings
	cargo fmt --all --check
	cargo fmt --manifest-path bench/Cargo.toml --all --check
	python3 .ci/import_cycles_test.py
	python3 .ci/import_cycles.py
	cargo check --manifest-path fuzz/Cargo.toml --bins --target-dir target

clean:
	cargo clean
	rm -rf $(VENV) .data

## bench: measurements, not tests (bench/README.md). Release builds; wrk, nginx and taskset
## from Debian when missing; the bench tools are their own workspace, built only here.
.PHONY: bench
bench: setup setup-postgres
	@command -v wrk >/dev/null && command -v nginx >/dev/null && command -v taskset >/dev/null || { \
	  apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq wrk nginx-light util-linux >/dev/null; }
	cargo build --release -p audit-collector
	cargo build -p audit-filter --target wasm32-wasip1 --profile wasm-release
	cargo build -p audit-filter --features cost-stages --target wasm32-wasip1 --profile wasm-release --target-dir target/cost-stages
	cargo build --release -p audit-filter-native
	cargo build --release --manifest-path bench/Cargo.toml -p audit-bench
	cargo build --manifest-path bench/Cargo.toml -p noop-filter --target wasm32-wasip1 --profile wasm-release
	python3 bench/run.py

## fuzz: coverage-guided fuzzing (cargo-fuzz, libFuzzer), not part of `make test`. Needs a
## nightly toolchain (sanitizer coverage). FUZZ_SECONDS per target; FUZZ_TARGETS to pick some.
## Each target's corpus grows in fuzz/corpus/<target>; fuzz/seeds/<target> and
## fuzz/<target>.dict are used when present. A crash stops the run, input in fuzz/artifacts/.
FUZZ_SECONDS ?= 600
.PHONY: fuzz
fuzz:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	@for target in $${FUZZ_TARGETS:-$$(cargo +nightly fuzz list)}; do \
	  mkdir -p fuzz/corpus/$$target; \
	  seeds=$$(test -d fuzz/seeds/$$target && echo fuzz/seeds/$$target); \
	  dict=$$(test -f fuzz/$$target.dict && echo -dict=fuzz/$$target.dict); \
	  echo "== $$target: $(FUZZ_SECONDS) s"; \
	  nice -n 19 cargo +nightly fuzz run -O $$target fuzz/corpus/$$target $$seeds -- \
	    -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $$dict || exit 1; \
	done
