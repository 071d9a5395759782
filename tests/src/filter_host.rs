//! Which build of the audit filter a stack loads: the proxy-wasm module (`envoy.yaml` as
//! users copy it) or the native Envoy dynamic module (`libaudit_filter_native.so`), given the
//! same JSON configuration in the same place of the filter chain. `AUDIT_FILTER_HOST=native`
//! runs a test (or the whole suite) against the native build; the default is wasm.

use anyhow::{anyhow, bail, Context, Result};
use serde_yaml::Value;

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

    /// The prefix Envoy gives the filter's own stats (`<prefix>audit_sidecar.captured`).
    pub fn stats_prefix(self) -> &'static str {
        match self {
            FilterHost::Wasm => "wasmcustom.",
            FilterHost::Native => "dynamicmodulescustom.",
        }
    }
}

/// `rendered` (an `envoy.yaml` with the wasm audit filter) with that filter replaced by the
/// native module, loaded by name from `ENVOY_DYNAMIC_MODULES_SEARCH_PATH`, with the same
/// JSON configuration.
pub fn with_native_filter(rendered: &str) -> Result<String> {
    let mut root: Value = serde_yaml::from_str(rendered).context("the rendered envoy.yaml is not YAML")?;
    let filters = root
        .get_mut("static_resources")
        .and_then(|statics| statics.get_mut("listeners"))
        .and_then(|listeners| listeners.get_mut(0))
        .and_then(|listener| listener.get_mut("filter_chains"))
        .and_then(|chains| chains.get_mut(0))
        .and_then(|chain| chain.get_mut("filters"))
        .and_then(Value::as_sequence_mut)
        .ok_or_else(|| anyhow!("envoy.yaml has no listener filter chain"))?;
    let manager = filters
        .iter_mut()
        .find(|filter| {
            filter.get("name").and_then(Value::as_str) == Some("envoy.filters.network.http_connection_manager")
        })
        .ok_or_else(|| anyhow!("envoy.yaml has no http_connection_manager"))?;
    let http_filters = manager
        .get_mut("typed_config")
        .and_then(|config| config.get_mut("http_filters"))
        .and_then(Value::as_sequence_mut)
        .ok_or_else(|| anyhow!("envoy.yaml has no http_filters"))?;
    let wasm = http_filters
        .iter_mut()
        .find(|filter| filter.get("name").and_then(Value::as_str) == Some("envoy.filters.http.wasm"))
        .ok_or_else(|| anyhow!("envoy.yaml has no wasm audit filter"))?;
    let json = wasm
        .get("typed_config")
        .and_then(|config| config.get("config"))
        .and_then(|config| config.get("configuration"))
        .and_then(|configuration| configuration.get("value"))
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the wasm audit filter has no configuration value"))?
        .to_string();
    *wasm = native_filter(&json)?;
    Ok(serde_yaml::to_string(&root)?)
}

/// The native audit filter's entry in `http_filters`, with `json` as its configuration.
pub fn native_filter(json: &str) -> Result<Value> {
    let mut filter: Value = serde_yaml::from_str(
        r#"
name: envoy.filters.http.dynamic_modules
typed_config:
  "@type": type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter
  dynamic_module_config: { name: audit_filter_native }
  filter_name: audit_sidecar
  filter_config:
    "@type": type.googleapis.com/google.protobuf.StringValue
    value: ""
"#,
    )?;
    let value = filter
        .get_mut("typed_config")
        .and_then(|config| config.get_mut("filter_config"))
        .and_then(|config| config.get_mut("value"))
        .ok_or_else(|| anyhow!("the native filter template has no value"))?;
    *value = Value::String(json.to_string());
    Ok(filter)
}
