//! Which build of the audit filter a stack loads: the proxy-wasm module (`envoy.yaml` as
//! users copy it) or the native Envoy dynamic module (`libaudit_filter_native.so`, with
//! `envoy-native.yaml` as users copy it), given the same JSON configuration in the same place
//! of the filter chain. `AUDIT_FILTER_HOST=native` runs a test (or the whole suite) against
//! the native build; the default is wasm.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::paths;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FilterHost {
    #[default]
    Wasm,
    Native,
}

impl FilterHost {
    /// From `AUDIT_FILTER_HOST` (`wasm` or `native`; unset: wasm).
    pub fn from_env() -> Result<FilterHost> {
        match std::env::var("AUDIT_FILTER_HOST").as_deref() {
            Err(_) | Ok("") | Ok("wasm") => Ok(FilterHost::Wasm),
            Ok("native") => Ok(FilterHost::Native),
            Ok(other) => bail!("AUDIT_FILTER_HOST is `{other}`; it must be `wasm` or `native`"),
        }
    }

    /// The configuration users copy for this host, which the stack renders: `envoy.yaml`
    /// or `envoy-native.yaml` (the same but for the filter's entry).
    pub fn envoy_file(self) -> PathBuf {
        match self {
            FilterHost::Wasm => paths::envoy_yaml(),
            FilterHost::Native => paths::envoy_native_yaml(),
        }
    }

    /// The prefix of the filter's stats in Envoy's Prometheus output
    /// (`<prefix>audit_sidecar_captured`): Envoy drops the wasm namespace there, and keeps
    /// the dynamic modules' one behind its `envoy_`.
    pub fn prometheus_prefix(self) -> &'static str {
        match self {
            FilterHost::Wasm => "",
            FilterHost::Native => "envoy_dynamicmodulescustom_",
        }
    }

    /// The prefix Envoy gives the filter's own stats (`<prefix>audit_sidecar.captured`).
    pub fn stats_prefix(self) -> &'static str {
        match self {
            FilterHost::Wasm => "wasmcustom.",
            FilterHost::Native => "dynamicmodulescustom.",
        }
    }
}
