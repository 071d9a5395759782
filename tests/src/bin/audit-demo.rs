//! `make demo`: the whole stack in the foreground on 127.0.0.1:$LISTEN_PORT (default 10000;
//! 0 lets the OS pick), with the wasm filter (`envoy.yaml`) or, with AUDIT_FILTER_HOST=native,
//! the native module (`envoy-native.yaml`), with the trail in `.data/demo/` (or `$DEMO_DATA_DIR`), until Ctrl-C
//! or SIGTERM; then Envoy is drained (`audit-collector envoy-drain`) and everything it
//! started stops. The folder is kept, so a run continues the
//! trail of the runs before it. It runs from its repository: `AUDIT_REPO_ROOT` (which
//! `make demo` sets to the Makefile's directory) or the current directory, which must be the
//! checkout it was built in; anything else is refused with what to do.

use std::time::Duration;

use anyhow::{Context, Result};
use audit_e2e::filter_host::FilterHost;
use audit_e2e::{paths, AuditStack, StackOptions};
use signal_hook::consts::{SIGINT, SIGTERM};

fn main() -> Result<()> {
    // Refuses to run from anywhere but the checkout it names (see `demo_repo_root`).
    paths::demo_repo_root()?;
    let listen_port = match std::env::var("LISTEN_PORT") {
        Ok(port) => port.parse().with_context(|| format!("LISTEN_PORT={port:?} is not a port number (1-65535)"))?,
        Err(_) => 10000,
    };
    let read_token = std::env::var("AUDIT_TOKEN").unwrap_or_else(|_| "demo-read-token".to_string());
    let data_dir = std::env::var_os("DEMO_DATA_DIR")
        .map_or_else(|| paths::repo_root().join(".data/demo"), std::path::PathBuf::from);
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;

    let stack = AuditStack::start(StackOptions {
        listen_port,
        read_token: read_token.clone(),
        ingest_token: std::env::var("AUDIT_INGEST_TOKEN").unwrap_or_else(|_| "demo-ingest-token".to_string()),
        data_dir: Some(data_dir.clone()),
        ..StackOptions::default()
    })
    .context("starting the demo stack")?;

    let url = stack.envoy_url();
    println!(
        r#"
audit-sidecar demo: Envoy with the audit filter at {url}, in front of a Pact Broker stand-in.
The filter: {host} (AUDIT_FILTER_HOST=wasm|native picks it).
Trail database and logs: {data}

The trail viewer: {url}/audit/ui/   (read token: {token})

Try:
  curl -s {url}/pacticipants
  curl -s -u alice:secret {url}/pacticipants/Foo
  curl -s -u mallory:pw -H 'x-forwarded-email: alice@corp.example' -H 'x-user-id: 1' -X PUT {url}/pacticipants/Foo/versions/1.0.0/tags/main
                                                  # stored as mallory; the claim on alice is an alert
  curl -s -H 'Authorization: Bearer {token}' {url}/audit | python3 -m json.tool
  curl -s -i {url}/audit                          # 401 without the token (and audited too)

Events reach /audit within about a second (the filter sends them in batches).
Envoy admin: {admin}/stats?filter=audit   Ctrl-C stops everything.
"#,
        host = match stack.filter_host() {
            FilterHost::Wasm => "the proxy-wasm build, with envoy.yaml",
            FilterHost::Native => "the native dynamic module, with envoy-native.yaml",
        },
        data = data_dir.display(),
        token = read_token,
        admin = stack.admin_url(),
    );

    if let Some(signal) = signals.forever().next() {
        println!("signal {signal}: draining Envoy (audit-collector envoy-drain), then stopping everything");
    }
    // The documented graceful stop: drain Envoy's listeners and wait until the filter's
    // buffers are delivered, so stopping Envoy loses no event.
    let drained = std::process::Command::new(paths::collector_binary()?)
        .args(["envoy-drain", "--admin", &stack.admin_url(), "--deadline-secs", "20"])
        .status();
    if drained.is_ok_and(|status| status.success()) {
        println!("drained: every event Envoy captured was delivered; stopping everything");
    } else {
        eprintln!("envoy-drain did not finish cleanly; events still buffered in Envoy are lost (see above)");
    }
    drop(stack);
    std::thread::sleep(Duration::from_millis(50));
    Ok(())
}
