//! The Envoy configurations compared, each derived from the top-level `envoy.yaml` through
//! the end-to-end suite's renderer (so the listener, routes and the audit filter's
//! configuration are exactly the ones users copy):
//! - `audit`: the file as is, with the built audit filter;
//! - `noop`: the same wasm filter entry, loading the no-op filter instead (the floor);
//! - `plain`: the wasm filter removed;
//! - `access-log`: the wasm filter removed, Envoy's built-in JSON file access log added,
//!   recording about what an audit event records;
//! - `native`: `envoy-native.yaml` as is, the audit filter as the native Envoy dynamic
//!   module (`libaudit_filter_native.so`, the same JSON configuration);
//! - `stage-<stage>`: `audit` with the VM's `AUDIT_BENCH_STAGE` set, for the filter's
//!   ablation build (feature `cost-stages`), which stops each request after that stage
//!   (`callbacks`, `request-headers`, `host-reads`, `capture`, `json`).
//!
//! `--filter-patch JSON` merges into the audit filter's configuration (e.g. a longer flush
//! interval, so that batches go only when full, as at saturation).

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use audit_e2e::envoy_config::{render_envoy_config, EnvoySubstitutions};
use serde_yaml::Value;

use crate::args::Flags;

/// The built-in access log: one JSON line per request with roughly an audit event's
/// fields, from Envoy's own formatters. `{path}` is the log file.
const ACCESS_LOG: &str = r#"
- name: envoy.access_loggers.file
  typed_config:
    "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
    path: "{path}"
    log_format:
      json_format:
        start_time: "%START_TIME%"
        method: "%REQ(:METHOD)%"
        path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"
        protocol: "%PROTOCOL%"
        status: "%RESPONSE_CODE%"
        duration_ms: "%DURATION%"
        user_agent: "%REQ(USER-AGENT)%"
        referer: "%REQ(REFERER)%"
        client: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"
        forwarded_for: "%REQ(X-FORWARDED-FOR)%"
        request_id: "%REQ(X-REQUEST-ID)%"
        authority: "%REQ(:AUTHORITY)%"
        email: "%REQ(X-FORWARDED-EMAIL)%"
"#;

pub fn run(flags: &Flags) -> Result<String> {
    let variant = flags.text("variant")?;
    let file = match variant {
        "native" => audit_e2e::paths::envoy_native_yaml(),
        _ => audit_e2e::paths::envoy_yaml(),
    };
    let template = std::fs::read_to_string(file)?;
    let substitutions = EnvoySubstitutions {
        listen: flags.number("listen")?,
        admin: flags.number("admin")?,
        upstream: flags.number("upstream")?,
        collector: flags.number("collector")?,
        wasm: PathBuf::from(flags.text("wasm")?),
        filter_config_patch: flags.optional("filter-patch").map(serde_json::from_str).transpose()?,
        extra_http_filters: Vec::new(),
        http_filters_after_audit: Vec::new(),
    };
    let rendered = render_envoy_config(&template, &substitutions)?;
    let mut root: Value = serde_yaml::from_str(&rendered)?;
    if let Some(stage) = variant.strip_prefix("stage-") {
        let environment = &mut wasm_filter(&mut root)?["typed_config"]["config"]["vm_config"]["environment_variables"];
        environment["key_values"] = serde_yaml::from_str(&format!("{{AUDIT_BENCH_STAGE: {stage}}}"))?;
        return Ok(serde_yaml::to_string(&root)?);
    }
    match variant {
        "audit" | "noop" | "native" => {}
        "plain" => remove_wasm_filter(&mut root)?,
        "access-log" => {
            remove_wasm_filter(&mut root)?;
            let access_log = ACCESS_LOG.replace("{path}", flags.text("access-log")?);
            manager(&mut root)?["typed_config"]["access_log"] = serde_yaml::from_str(&access_log)?;
        }
        other => bail!("--variant must be plain, noop, audit, native, access-log or stage-<stage>, not `{other}`"),
    }
    Ok(serde_yaml::to_string(&root)?)
}

fn manager(root: &mut Value) -> Result<&mut Value> {
    root["static_resources"]["listeners"][0]["filter_chains"][0]["filters"]
        .as_sequence_mut()
        .and_then(|filters| {
            filters.iter_mut().find(|filter| {
                filter.get("name").and_then(Value::as_str) == Some("envoy.filters.network.http_connection_manager")
            })
        })
        .ok_or_else(|| anyhow!("envoy.yaml: no http_connection_manager in the first filter chain"))
}

fn wasm_filter(root: &mut Value) -> Result<&mut Value> {
    manager(root)?["typed_config"]["http_filters"]
        .as_sequence_mut()
        .and_then(|filters| {
            filters
                .iter_mut()
                .find(|filter| filter.get("name").and_then(Value::as_str) == Some("envoy.filters.http.wasm"))
        })
        .ok_or_else(|| anyhow!("envoy.yaml: no envoy.filters.http.wasm"))
}

fn remove_wasm_filter(root: &mut Value) -> Result<()> {
    let filters = manager(root)?["typed_config"]["http_filters"]
        .as_sequence_mut()
        .ok_or_else(|| anyhow!("envoy.yaml: no http_filters"))?;
    let before = filters.len();
    filters.retain(|filter| filter.get("name").and_then(Value::as_str) != Some("envoy.filters.http.wasm"));
    if filters.len() == before {
        bail!("envoy.yaml: no envoy.filters.http.wasm to remove");
    }
    Ok(())
}
