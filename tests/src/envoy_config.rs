//! The top-level `envoy.yaml` (the proxy-wasm host) or `envoy-native.yaml` (the dynamic
//! module), rendered for a run on this machine: the listener, admin and cluster addresses
//! and the wasm path are substituted, and a test may merge changes into the filter's JSON
//! configuration or put HTTP filters (say `jwt_authn`) in front of the audit filter, or
//! between it and the router (to see what reaches the service). Everything else is the file
//! users copy, so it cannot rot.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use serde_yaml::Value;

/// What changes between the checked-in `envoy.yaml` and a run here.
#[derive(Debug, Clone)]
pub struct EnvoySubstitutions {
    /// The audited listener (port 0: the OS picks; read it back from the admin API).
    pub listen: SocketAddr,
    /// The admin interface.
    pub admin: SocketAddr,
    /// The audited service (cluster `upstream_service`).
    pub upstream: SocketAddr,
    /// The collector (cluster `audit_collector`).
    pub collector: SocketAddr,
    /// The built filter, for the proxy-wasm host (the native one is found through
    /// `ENVOY_DYNAMIC_MODULES_SEARCH_PATH`).
    pub wasm: PathBuf,
    /// Merged (JSON merge patch) into the filter's configuration, when given.
    pub filter_config_patch: Option<serde_json::Value>,
    /// HTTP filters inserted, in order, in front of the audit filter (say `jwt_authn`); for
    /// the native module, which sees each request first, right after it.
    pub extra_http_filters: Vec<Value>,
    /// HTTP filters inserted, in order, after the audit filter (just before the router).
    pub http_filters_after_audit: Vec<Value>,
}

/// The audit filter's entry in `http_filters`, as each host's file names it.
const WASM_FILTER: &str = "envoy.filters.http.wasm";
const NATIVE_FILTER: &str = "envoy.filters.http.dynamic_modules";

/// Renders `template` (the text of `envoy.yaml` or `envoy-native.yaml`) with
/// `substitutions` applied.
pub fn render_envoy_config(template: &str, substitutions: &EnvoySubstitutions) -> Result<String> {
    let mut root: Value = serde_yaml::from_str(template).context("envoy.yaml is not valid YAML")?;

    set_socket_address(at(&mut root, &["admin", "address", "socket_address"])?, substitutions.admin);
    let listener = first(at(&mut root, &["static_resources", "listeners"])?, "listener")?;
    set_socket_address(at(listener, &["address", "socket_address"])?, substitutions.listen);

    for (cluster, address) in
        [("upstream_service", substitutions.upstream), ("audit_collector", substitutions.collector)]
    {
        let cluster = named(at(&mut root, &["static_resources", "clusters"])?, cluster)?;
        let endpoints = first(at(cluster, &["load_assignment", "endpoints"])?, "endpoint group")?;
        let endpoint = first(at(endpoints, &["lb_endpoints"])?, "lb endpoint")?;
        set_socket_address(at(endpoint, &["endpoint", "address", "socket_address"])?, address);
    }

    let listener = first(at(&mut root, &["static_resources", "listeners"])?, "listener")?;
    let chain = first(at(listener, &["filter_chains"])?, "filter chain")?;
    let manager = named(at(chain, &["filters"])?, "envoy.filters.network.http_connection_manager")?;
    let http_filters = at(manager, &["typed_config", "http_filters"])?;
    let audit_filter = audit_filter_name(http_filters)?;
    if audit_filter == WASM_FILTER {
        insert_before(http_filters, audit_filter, &substitutions.extra_http_filters)?;
    } else {
        // The native module must see each request first: it removes the claim headers a
        // client sent before `jwt_authn` may set them (`identity.jwt.claimHeaders`).
        insert_before(http_filters, "envoy.filters.http.router", &substitutions.extra_http_filters)?;
    }
    insert_before(http_filters, "envoy.filters.http.router", &substitutions.http_filters_after_audit)?;
    let filter = named(http_filters, audit_filter)?;
    let value = if audit_filter == WASM_FILTER {
        let plugin = at(filter, &["typed_config", "config"])?;
        *at(plugin, &["vm_config", "code", "local", "filename"])? =
            Value::String(substitutions.wasm.display().to_string());
        at(plugin, &["configuration", "value"])?
    } else {
        at(filter, &["typed_config", "filter_config", "value"])?
    };
    if let Some(patch) = &substitutions.filter_config_patch {
        let text = value.as_str().ok_or_else(|| anyhow!("the filter configuration value is not a string"))?;
        let mut config: serde_json::Value =
            serde_json::from_str(text).context("the filter configuration in the Envoy file is not JSON")?;
        merge_patch(&mut config, patch);
        *value = Value::String(serde_json::to_string_pretty(&config)?);
    }
    Ok(serde_yaml::to_string(&root)?)
}

/// A rendered `envoy.yaml` with the audit filter's VM named `vm_id`: a change of
/// `vm_config`, so Envoy starts new VMs for it (as it would for new wasm code). The wasm
/// host's only: the native module has no VM (an error names it).
pub fn with_vm_id(rendered: &str, vm_id: &str) -> Result<String> {
    let mut root: Value = serde_yaml::from_str(rendered).context("the rendered envoy.yaml is not YAML")?;
    let listener = first(at(&mut root, &["static_resources", "listeners"])?, "listener")?;
    let chain = first(at(listener, &["filter_chains"])?, "filter chain")?;
    let manager = named(at(chain, &["filters"])?, "envoy.filters.network.http_connection_manager")?;
    let wasm = named(at(manager, &["typed_config", "http_filters"])?, WASM_FILTER)
        .map_err(|_| anyhow!("no wasm audit filter: a vm_id is the wasm host's only (the native module has no VM)"))?;
    *at(wasm, &["typed_config", "config", "vm_config", "vm_id"])? = Value::String(vm_id.to_string());
    Ok(serde_yaml::to_string(&root)?)
}

/// Moves the listener of a rendered `envoy.yaml` into an LDS file, the way a deployment
/// with a control plane (or a file-based one) runs Envoy: returns the bootstrap, which
/// reads listeners from `lds_path` and watches `watched` for its replacement, and the LDS
/// file's text.
pub fn listener_from_file(rendered: &str, lds_path: &Path, watched: &Path) -> Result<(String, String)> {
    let mut root: Value = serde_yaml::from_str(rendered).context("the rendered envoy.yaml is not YAML")?;
    let statics = at(&mut root, &["static_resources"])?
        .as_mapping_mut()
        .ok_or_else(|| anyhow!("envoy.yaml: `static_resources` is not a mapping"))?;
    let mut listeners = statics.remove("listeners").ok_or_else(|| anyhow!("envoy.yaml has no listeners"))?;
    for listener in listeners.as_sequence_mut().ok_or_else(|| anyhow!("envoy.yaml: `listeners` is not a list"))? {
        if let Some(listener) = listener.as_mapping_mut() {
            listener.insert("@type".into(), "type.googleapis.com/envoy.config.listener.v3.Listener".into());
        }
    }
    let lds: Value = serde_yaml::from_str(&format!(
        "{{path_config_source: {{path: '{}', watched_directory: {{path: '{}'}}}}, resource_api_version: V3}}",
        lds_path.display(),
        watched.display()
    ))?;
    let root_map = root.as_mapping_mut().ok_or_else(|| anyhow!("envoy.yaml is not a mapping"))?;
    // LDS needs a node identity, even from a file.
    root_map.insert("node".into(), serde_yaml::from_str("{id: audit-e2e, cluster: audit-e2e}")?);
    let mut dynamic = serde_yaml::Mapping::new();
    dynamic.insert("lds_config".into(), lds);
    root_map.insert("dynamic_resources".into(), Value::Mapping(dynamic));
    let mut file = serde_yaml::Mapping::new();
    file.insert("resources".into(), listeners);
    Ok((serde_yaml::to_string(&root)?, serde_yaml::to_string(&Value::Mapping(file))?))
}

/// RFC 7396 JSON merge patch: objects merge, `null` removes, anything else replaces.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(target), serde_json::Value::Object(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge_patch(target.entry(key.clone()).or_insert(serde_json::Value::Null), value);
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

fn at<'a>(value: &'a mut Value, keys: &[&str]) -> Result<&'a mut Value> {
    keys.iter().try_fold(value, |value, key| {
        value.get_mut(*key).ok_or_else(|| anyhow!("envoy.yaml has no `{}`", keys.join(".")))
    })
}

fn first<'a>(list: &'a mut Value, what: &str) -> Result<&'a mut Value> {
    list.as_sequence_mut().and_then(|items| items.first_mut()).ok_or_else(|| anyhow!("envoy.yaml has no {what}"))
}

fn named<'a>(list: &'a mut Value, name: &str) -> Result<&'a mut Value> {
    list.as_sequence_mut()
        .and_then(|items| items.iter_mut().find(|item| item.get("name").and_then(Value::as_str) == Some(name)))
        .ok_or_else(|| anyhow!("envoy.yaml has no entry named `{name}`"))
}

/// Which host's audit filter the file has: the proxy-wasm filter or the dynamic module.
fn audit_filter_name(http_filters: &Value) -> Result<&'static str> {
    let names: Vec<&str> = http_filters
        .as_sequence()
        .map(|filters| filters.iter().filter_map(|filter| filter.get("name")?.as_str()).collect())
        .unwrap_or_default();
    [WASM_FILTER, NATIVE_FILTER]
        .into_iter()
        .find(|name| names.contains(name))
        .ok_or_else(|| anyhow!("the Envoy file has no audit filter ({WASM_FILTER} or {NATIVE_FILTER})"))
}

fn insert_before(list: &mut Value, name: &str, items: &[Value]) -> Result<()> {
    let entries = list.as_sequence_mut().ok_or_else(|| anyhow!("envoy.yaml: `http_filters` is not a list"))?;
    let at = entries
        .iter()
        .position(|item| item.get("name").and_then(Value::as_str) == Some(name))
        .ok_or_else(|| anyhow!("envoy.yaml has no entry named `{name}`"))?;
    entries.splice(at..at, items.iter().cloned());
    Ok(())
}

fn set_socket_address(socket_address: &mut Value, address: SocketAddr) {
    socket_address["address"] = Value::String(address.ip().to_string());
    socket_address["port_value"] = Value::Number(address.port().into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::{envoy_native_yaml, envoy_yaml};

    fn substitutions() -> EnvoySubstitutions {
        EnvoySubstitutions {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin: "127.0.0.1:0".parse().unwrap(),
            upstream: "127.0.0.1:4001".parse().unwrap(),
            collector: "127.0.0.1:4002".parse().unwrap(),
            wasm: PathBuf::from("/tmp/x/audit_filter.wasm"),
            filter_config_patch: Some(serde_json::json!({"batch": {"maxEvents": 7}})),
            extra_http_filters: Vec::new(),
            http_filters_after_audit: Vec::new(),
        }
    }

    fn http_filter_names(rendered: &str) -> Vec<String> {
        let root: Value = serde_yaml::from_str(rendered).unwrap();
        let filters =
            &root["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"];
        filters.as_sequence().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_string()).collect()
    }

    #[test]
    fn extra_http_filters_go_around_the_audit_filter_in_order() {
        let template = std::fs::read_to_string(envoy_yaml()).unwrap();
        let plain = render_envoy_config(&template, &substitutions()).unwrap();
        assert_eq!(http_filter_names(&plain), ["envoy.filters.http.wasm", "envoy.filters.http.router"], "no extras");
        let extras = vec![
            serde_yaml::from_str("{name: first.filter, typed_config: {x: 1}}").unwrap(),
            serde_yaml::from_str("{name: second.filter}").unwrap(),
        ];
        let after = vec![serde_yaml::from_str("{name: after.filter}").unwrap()];
        let rendered = render_envoy_config(
            &template,
            &EnvoySubstitutions { extra_http_filters: extras, http_filters_after_audit: after, ..substitutions() },
        )
        .unwrap();
        assert_eq!(
            http_filter_names(&rendered),
            ["first.filter", "second.filter", "envoy.filters.http.wasm", "after.filter", "envoy.filters.http.router"]
        );
        assert!(rendered.contains("/tmp/x/audit_filter.wasm"), "the wasm path is still substituted:\n{rendered}");
    }

    #[test]
    fn substitutes_addresses_and_wasm_path_in_the_checked_in_envoy_yaml() {
        let template = std::fs::read_to_string(envoy_yaml()).unwrap();
        let rendered = render_envoy_config(&template, &substitutions()).unwrap();
        assert!(rendered.contains("port_value: 4001"), "upstream port missing:\n{rendered}");
        assert!(rendered.contains("port_value: 4002"), "collector port missing:\n{rendered}");
        assert!(rendered.contains("/tmp/x/audit_filter.wasm"), "wasm path missing:\n{rendered}");
        assert!(!rendered.contains("pact-broker"), "the compose host name survived:\n{rendered}");
        assert!(!rendered.contains("/etc/envoy/audit_filter.wasm"), "the compose wasm path survived");
    }

    #[test]
    fn merges_the_patch_into_the_filter_configuration_and_keeps_the_rest() {
        let template = std::fs::read_to_string(envoy_yaml()).unwrap();
        let rendered = render_envoy_config(&template, &substitutions()).unwrap();
        assert!(rendered.contains("\"maxEvents\": 7"), "patched key missing:\n{rendered}");
        assert!(rendered.contains("\"flushIntervalMs\": 1000"), "unpatched sibling lost:\n{rendered}");
        assert!(rendered.contains("x-forwarded-email"), "identity config lost:\n{rendered}");
    }

    #[test]
    fn with_vm_id_renames_the_audit_filters_vm_only() {
        let template = std::fs::read_to_string(envoy_yaml()).unwrap();
        let rendered = render_envoy_config(&template, &substitutions()).unwrap();
        let renamed = with_vm_id(&rendered, "audit_sidecar_2").unwrap();
        assert!(renamed.contains("vm_id: audit_sidecar_2"), "{renamed}");
        assert_eq!(renamed.replace("vm_id: audit_sidecar_2", "vm_id: audit_sidecar"), rendered, "nothing else changed");
    }

    #[test]
    fn the_listener_moves_to_an_lds_file_the_bootstrap_watches() {
        let template = std::fs::read_to_string(envoy_yaml()).unwrap();
        let rendered = render_envoy_config(&template, &substitutions()).unwrap();
        let (bootstrap, lds) =
            listener_from_file(&rendered, Path::new("/tmp/x/lds/lds.yaml"), Path::new("/tmp/x/lds")).unwrap();
        let bootstrap: Value = serde_yaml::from_str(&bootstrap).unwrap();
        assert!(bootstrap["static_resources"].get("listeners").is_none(), "no static listener left");
        assert!(bootstrap["static_resources"]["clusters"].as_sequence().is_some_and(|c| c.len() == 2));
        let source = &bootstrap["dynamic_resources"]["lds_config"]["path_config_source"];
        assert_eq!(source["path"], "/tmp/x/lds/lds.yaml");
        assert_eq!(source["watched_directory"]["path"], "/tmp/x/lds");
        let lds: Value = serde_yaml::from_str(&lds).unwrap();
        let listener = &lds["resources"][0];
        assert_eq!(listener["@type"], "type.googleapis.com/envoy.config.listener.v3.Listener");
        assert_eq!(listener["name"], "audited_ingress");
    }

    /// The audit filter's entry of a rendered file, and the file without it.
    fn split_audit_filter(rendered: &str) -> (Value, Value) {
        let mut root: Value = serde_yaml::from_str(rendered).unwrap();
        let filters = root["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
            ["http_filters"]
            .as_sequence_mut()
            .unwrap();
        let audit = filters.remove(0);
        (audit, root)
    }

    #[test]
    fn the_native_file_is_the_wasm_file_with_the_module_in_the_filters_place_and_the_same_configuration() {
        let wasm = render_envoy_config(&std::fs::read_to_string(envoy_yaml()).unwrap(), &substitutions()).unwrap();
        let native =
            render_envoy_config(&std::fs::read_to_string(envoy_native_yaml()).unwrap(), &substitutions()).unwrap();
        let (wasm_filter, wasm_rest) = split_audit_filter(&wasm);
        let (native_filter, mut native_rest) = split_audit_filter(&native);
        // Only the native file has the module's bootstrap extension (its exit hook).
        let exit_hook = native_rest.as_mapping_mut().unwrap().remove("bootstrap_extensions").unwrap();
        assert_eq!(exit_hook[0]["typed_config"]["dynamic_module_config"]["name"], "audit_filter_native");
        assert_eq!(native_rest, wasm_rest, "listener, routes, clusters and admin are the same in both files");
        assert_eq!(wasm_filter["name"], WASM_FILTER);
        assert_eq!(native_filter["name"], NATIVE_FILTER);
        let json = |value: &Value| -> serde_json::Value { serde_json::from_str(value.as_str().unwrap()).unwrap() };
        assert_eq!(
            json(&native_filter["typed_config"]["filter_config"]["value"]),
            json(&wasm_filter["typed_config"]["config"]["configuration"]["value"]),
            "one filter configuration, patched alike"
        );
        assert!(native.contains("\"maxEvents\": 7"), "the patch reached the module's configuration:\n{native}");
        assert_eq!(native_filter["typed_config"]["dynamic_module_config"]["name"], "audit_filter_native");
    }

    #[test]
    fn the_native_module_sees_the_request_before_the_other_filters() {
        let template = std::fs::read_to_string(envoy_native_yaml()).unwrap();
        let before = vec![serde_yaml::from_str("{name: first.filter}").unwrap()];
        let after = vec![serde_yaml::from_str("{name: after.filter}").unwrap()];
        let rendered = render_envoy_config(
            &template,
            &EnvoySubstitutions { extra_http_filters: before, http_filters_after_audit: after, ..substitutions() },
        )
        .unwrap();
        assert_eq!(
            http_filter_names(&rendered),
            [NATIVE_FILTER, "first.filter", "after.filter", "envoy.filters.http.router"],
            "the module first, then jwt_authn and the like, then what sees the request as the service will"
        );
    }

    #[test]
    fn merge_patch_removes_keys_set_to_null() {
        let mut target = serde_json::json!({"a": 1, "b": {"c": 2, "d": 3}});
        merge_patch(&mut target, &serde_json::json!({"b": {"c": null}, "e": [1]}));
        assert_eq!(target, serde_json::json!({"a": 1, "b": {"d": 3}, "e": [1]}));
    }
}
