//! The whole audit-sidecar stack on this machine: the Pact Broker stand-in (`pact stub`),
//! the collector, and Envoy loading the built filter with the top-level `envoy.yaml`.
//! Started in dependency order with a readiness wait for each; stopped on drop. When a
//! test panics while a stack is alive, every process's log is printed. Envoy can be
//! stopped and started again, hot restarted, or given its listener from an LDS file that a
//! test replaces.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};

use crate::client;
use crate::envoy_config::{listener_from_file, render_envoy_config, with_vm_id, EnvoySubstitutions};
use crate::filter_host::FilterHost;
use crate::paths;
use crate::process::{tail, ManagedProcess};

/// How long any one part may take to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What a stack is started with.
#[derive(Debug, Clone)]
pub struct StackOptions {
    /// Port of the audited listener (0: the OS picks).
    pub listen_port: u16,
    /// Envoy worker threads (each has its own filter VM and batches).
    pub envoy_concurrency: usize,
    /// Merged into the filter configuration of `envoy.yaml` (JSON merge patch).
    pub filter_config_patch: Option<serde_json::Value>,
    /// HTTP filters put just before the audit filter (e.g. `jwt_authn`), in order.
    pub extra_http_filters: Vec<serde_yaml::Value>,
    /// HTTP filters put after the audit filter, before the router: they see the request as
    /// the service will.
    pub http_filters_after_audit: Vec<serde_yaml::Value>,
    /// Extra environment variables for Envoy (e.g. `AUDIT_FINGERPRINT_KEY`).
    pub envoy_env: Vec<(String, String)>,
    /// The bearer token for `GET /audit`.
    pub read_token: String,
    /// The credential the filter presents to the collector's ingest.
    pub ingest_token: String,
    /// Where the SQLite file and the logs go; a temporary folder when `None`.
    pub data_dir: Option<PathBuf>,
    /// Extra flags for `audit-collector serve` (e.g. `--sender-silence-secs 2`).
    pub collector_args: Vec<String>,
    /// Envoy can be hot restarted ([`AuditStack::hot_restart_envoy`]): it gets a base id of
    /// its own, and the listener a fixed port (a new epoch takes over the parent's socket
    /// by its address).
    pub envoy_hot_restart: bool,
    /// Envoy reads its listener from a file (LDS from the filesystem, `lds/lds.yaml`),
    /// which [`AuditStack::reload_listener`] replaces; the listener gets a fixed port.
    pub listener_from_file: bool,
    /// Extra Envoy flags (e.g. `--drain-time-s 1`), for every start and epoch.
    pub envoy_args: Vec<String>,
    /// The audit filter's `vm_config.vm_id`, when not the one of `envoy.yaml`.
    pub filter_vm_id: Option<String>,
    /// The build of the filter Envoy loads (`AUDIT_FILTER_HOST`, wasm by default).
    pub filter_host: FilterHost,
}

impl Default for StackOptions {
    fn default() -> Self {
        Self {
            listen_port: 0,
            envoy_concurrency: 2,
            filter_config_patch: None,
            extra_http_filters: Vec::new(),
            http_filters_after_audit: Vec::new(),
            envoy_env: Vec::new(),
            read_token: "test-read-token".to_string(),
            ingest_token: "test-ingest-token".to_string(),
            data_dir: None,
            collector_args: Vec::new(),
            envoy_hot_restart: false,
            listener_from_file: false,
            envoy_args: Vec::new(),
            filter_vm_id: None,
            filter_host: FilterHost::from_env().unwrap_or_default(),
        }
    }
}

/// A running stack. Dropping it stops every process.
pub struct AuditStack {
    options: StackOptions,
    // Dropped in reverse dependency order: Envoy first, the upstream last.
    envoy: ManagedProcess,
    collector: ManagedProcess,
    upstream: ManagedProcess,
    envoy_listener: SocketAddr,
    envoy_admin: SocketAddr,
    collector_address: SocketAddr,
    /// Where Envoy sends batches: the collector, or a test's proxy in front of it.
    envoy_collector: SocketAddr,
    upstream_address: SocketAddr,
    /// The hot restart epoch of the running Envoy.
    envoy_epoch: u32,
    dir: PathBuf,
    _temporary: Option<tempfile::TempDir>,
}

impl AuditStack {
    /// Starts the broker stand-in, the collector and Envoy, waiting for each to be ready.
    pub fn start(options: StackOptions) -> Result<Self> {
        Self::start_through(options, Ok)
    }

    /// Like [`AuditStack::start`], but Envoy sends its batches to the address `via` returns
    /// for the collector's address (a test's proxy that forwards, delays or swallows them).
    pub fn start_through(
        mut options: StackOptions,
        via: impl FnOnce(SocketAddr) -> Result<SocketAddr>,
    ) -> Result<Self> {
        // A misspelt AUDIT_FILTER_HOST is an error, not silently the wasm build.
        FilterHost::from_env()?;
        if (options.envoy_hot_restart || options.listener_from_file) && options.listen_port == 0 {
            options.listen_port = TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port();
        }
        let (dir, temporary) = match &options.data_dir {
            Some(dir) => {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                (dir.clone(), None)
            }
            None => {
                let temporary = tempfile::Builder::new().prefix("audit-e2e-").tempdir()?;
                (temporary.path().to_path_buf(), Some(temporary))
            }
        };
        let (upstream, upstream_address) = start_broker_stub(&dir)?;
        let (collector, collector_address) = start_collector(&dir, &options, None)?;
        let envoy_collector = via(collector_address)?;
        let (envoy, envoy_listener, envoy_admin) = start_envoy(&dir, &options, upstream_address, envoy_collector)?;
        Ok(Self {
            options,
            envoy,
            collector,
            upstream,
            envoy_listener,
            envoy_admin,
            collector_address,
            envoy_collector,
            upstream_address,
            envoy_epoch: 0,
            dir,
            _temporary: temporary,
        })
    }

    /// `http://127.0.0.1:<port>` of the audited listener: the service as clients see it.
    pub fn envoy_url(&self) -> String {
        format!("http://{}", self.envoy_listener)
    }

    /// `http://127.0.0.1:<port>` of Envoy's admin interface (`/stats`, `/ready`).
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.envoy_admin)
    }

    /// `http://127.0.0.1:<port>` of the collector itself, bypassing Envoy (reads here are
    /// not audited, so a test can look at the trail without adding to it).
    pub fn collector_url(&self) -> String {
        format!("http://{}", self.collector_address)
    }

    /// Which build of the filter this stack's Envoy loads.
    pub fn filter_host(&self) -> FilterHost {
        self.options.filter_host
    }

    /// The bearer token for `GET /audit`.
    pub fn read_token(&self) -> &str {
        &self.options.read_token
    }

    /// The ingest credential.
    pub fn ingest_token(&self) -> &str {
        &self.options.ingest_token
    }

    /// The folder with the SQLite file and the logs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The SQLite file the collector writes.
    pub fn database_path(&self) -> PathBuf {
        self.dir.join("audit.db")
    }

    /// Kills the collector with SIGKILL (no shutdown of any kind).
    pub fn kill_collector(&mut self) -> Result<()> {
        self.collector.kill().map(|_| ())
    }

    /// Stops the collector with SIGTERM (graceful shutdown), failing if it does not exit 0.
    pub fn stop_collector(&mut self) -> Result<()> {
        let status = self.collector.stop(Duration::from_secs(20))?;
        if !status.success() {
            return Err(anyhow!(
                "the collector exited with {status} on SIGTERM; its log ends:\n{}",
                tail(&self.collector.log(), 40)
            ));
        }
        Ok(())
    }

    /// Stops Envoy with SIGTERM, as `docker stop` and Kubernetes do, and waits for it to exit.
    pub fn sigterm_envoy(&mut self) -> Result<std::process::ExitStatus> {
        self.envoy.stop(Duration::from_secs(30))
    }

    /// Kills Envoy with SIGKILL (a crash, an OOM kill): no `on_done`, nothing flushed.
    pub fn sigkill_envoy(&mut self) -> Result<std::process::ExitStatus> {
        self.envoy.kill()
    }

    /// Starts Envoy again on the same collector (a new listener port: see [`AuditStack::envoy_url`]).
    pub fn start_envoy_again(&mut self) -> Result<()> {
        let _ = self.envoy.kill();
        let (envoy, listener, admin) =
            start_envoy(&self.dir, &self.options, self.upstream_address, self.envoy_collector)?;
        self.envoy = envoy;
        self.envoy_listener = listener;
        self.envoy_admin = admin;
        Ok(())
    }

    /// Hot restarts Envoy (needs [`StackOptions::envoy_hot_restart`]): starts the next
    /// epoch, which takes over the listener and has the running one drain
    /// (`--drain-time-s`) and exit (`--parent-shutdown-time-s`); waits for the new one to
    /// be ready and the old one to exit, at most `parent_exit` after that, and returns the
    /// old one's exit status and log.
    pub fn hot_restart_envoy(&mut self, parent_exit: Duration) -> Result<(std::process::ExitStatus, String)> {
        if !self.options.envoy_hot_restart {
            return Err(anyhow!("the stack was started without `envoy_hot_restart`"));
        }
        let epoch = self.envoy_epoch + 1;
        let (envoy, listener, admin) =
            launch_envoy(&self.dir, &self.options, self.upstream_address, &[self.envoy_collector], epoch)?;
        let mut parent = std::mem::replace(&mut self.envoy, envoy);
        self.envoy_epoch = epoch;
        self.envoy_listener = listener;
        self.envoy_admin = admin;
        let status = parent.wait_for_exit(parent_exit)?;
        Ok((status, parent.log()))
    }

    /// Replaces the listener Envoy reads from its file (needs
    /// [`StackOptions::listener_from_file`]) with one rendered from the options as `edit`
    /// leaves them, the way a control plane would: written aside, then renamed over the
    /// watched file. Returns once Envoy has accepted the update.
    pub fn reload_listener(&mut self, edit: impl FnOnce(&mut StackOptions)) -> Result<()> {
        if !self.options.listener_from_file {
            return Err(anyhow!("the stack was started without `listener_from_file`"));
        }
        edit(&mut self.options);
        let updates = || -> Option<u64> {
            let url = format!("http://{}/stats?filter=listener_manager.lds.update_success", self.envoy_admin);
            let reply = client::send("GET", &url, &[], None).ok()?;
            reply.body.lines().find_map(|line| line.split_once(": ")?.1.trim().parse().ok())
        };
        let before = updates().ok_or_else(|| anyhow!("Envoy's admin reports no LDS updates"))?;
        let rendered = render_envoy(&self.options, self.upstream_address, &[self.envoy_collector])?;
        write_listener_file(&self.dir, &rendered)?;
        self.envoy.wait_for("the listener update", READY_TIMEOUT, |_| updates().filter(|now| *now > before))?;
        Ok(())
    }

    /// Starts the collector again on the same address and database.
    pub fn restart_collector(&mut self) -> Result<()> {
        let _ = self.collector.kill();
        let (collector, _) = start_collector(&self.dir, &self.options, Some(self.collector_address))?;
        self.collector = collector;
        Ok(())
    }

    /// The logs of every process, for a failure message.
    pub fn logs(&self) -> String {
        [("envoy", &self.envoy), ("collector", &self.collector), ("upstream", &self.upstream)]
            .iter()
            .map(|(name, process)| format!("===== {name} log (end) =====\n{}\n", tail(&process.log(), 60)))
            .collect()
    }

    /// Everything Envoy has logged so far.
    pub fn envoy_log(&self) -> String {
        self.envoy.log()
    }
}

impl Drop for AuditStack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

fn read_address_file(path: &Path) -> Option<SocketAddr> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Starts `pact stub` on a port chosen here, so nothing has to be read back from its log.
/// The port is free when chosen; should another process take it before the stub binds it,
/// the stub exits and another port is tried.
pub fn start_broker_stub(dir: &Path) -> Result<(ManagedProcess, SocketAddr)> {
    let mut last_error = None;
    for _ in 0..3 {
        let address = TcpListener::bind(("127.0.0.1", 0))?.local_addr()?;
        let mut command = Command::new(paths::pact_binary()?);
        command
            .arg("stub")
            .arg("--file")
            .arg(paths::broker_pact())
            .arg("--port")
            .arg(address.port().to_string())
            .arg("--loglevel")
            .arg("info");
        let mut stub = ManagedProcess::spawn("upstream", command, dir)?;
        let url = format!("http://{address}/");
        match stub.wait_for("an answer on its port", READY_TIMEOUT, |_| client::send("GET", &url, &[], None).ok()) {
            Ok(_) => return Ok((stub, address)),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow!("the broker stand-in did not start")))
}

fn start_collector(
    dir: &Path,
    options: &StackOptions,
    listen: Option<SocketAddr>,
) -> Result<(ManagedProcess, SocketAddr)> {
    let address_file = dir.join("collector.address");
    let _ = std::fs::remove_file(&address_file);
    let listen = listen.map_or_else(|| "127.0.0.1:0".to_string(), |address| address.to_string());
    let mut command = Command::new(paths::collector_binary()?);
    command
        .arg("serve")
        .arg("--listen")
        .arg(listen)
        .arg("--address-file")
        .arg(&address_file)
        .arg("--database")
        .arg(dir.join("audit.db"))
        .args(&options.collector_args)
        .env("AUDIT_TOKEN", &options.read_token)
        .env("AUDIT_INGEST_TOKEN", &options.ingest_token)
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()));
    let mut collector = ManagedProcess::spawn("collector", command, dir)?;
    let address = collector.wait_for("address file", READY_TIMEOUT, |_| read_address_file(&address_file))?;
    let health = format!("http://{address}/healthz");
    collector.wait_for("/healthz answers 200", READY_TIMEOUT, |_| {
        client::send("GET", &health, &[], None).ok().filter(|reply| reply.status == 200)
    })?;
    Ok((collector, address))
}

fn start_envoy(
    dir: &Path,
    options: &StackOptions,
    upstream: SocketAddr,
    collector: SocketAddr,
) -> Result<(ManagedProcess, SocketAddr, SocketAddr)> {
    start_envoy_with_collectors(dir, options, upstream, &[collector])
}

/// Starts Envoy with `envoy.yaml` whose `audit_collector` cluster has every address of
/// `collectors` as an endpoint (several collector replicas behind one cluster); returns the
/// process, the audited listener and the admin address. Its files go in `dir`.
pub fn start_envoy_with_collectors(
    dir: &Path,
    options: &StackOptions,
    upstream: SocketAddr,
    collectors: &[SocketAddr],
) -> Result<(ManagedProcess, SocketAddr, SocketAddr)> {
    launch_envoy(dir, options, upstream, collectors, 0)
}

/// `envoy.yaml` rendered for this stack.
fn render_envoy(options: &StackOptions, upstream: SocketAddr, collectors: &[SocketAddr]) -> Result<String> {
    let (&collector, more) = collectors.split_first().ok_or_else(|| anyhow!("Envoy needs at least one collector"))?;
    let file = options.filter_host.envoy_file();
    let template = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let rendered = render_envoy_config(
        &template,
        &EnvoySubstitutions {
            listen: SocketAddr::from(([127, 0, 0, 1], options.listen_port)),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            upstream,
            collector,
            wasm: paths::filter_wasm()?,
            filter_config_patch: options.filter_config_patch.clone(),
            extra_http_filters: options.extra_http_filters.clone(),
            http_filters_after_audit: options.http_filters_after_audit.clone(),
        },
    )?;
    let rendered = if more.is_empty() { rendered } else { with_more_collector_endpoints(&rendered, more)? };
    match &options.filter_vm_id {
        Some(vm_id) => with_vm_id(&rendered, vm_id),
        None => Ok(rendered),
    }
}

/// Writes the listener of `rendered` to `<dir>/lds/lds.yaml` as Envoy's LDS file: written
/// aside and renamed over it, so Envoy (watching the folder) never reads half a file.
/// Returns the bootstrap that reads it.
fn write_listener_file(dir: &Path, rendered: &str) -> Result<String> {
    let folder = dir.join("lds");
    std::fs::create_dir_all(&folder)?;
    let path = folder.join("lds.yaml");
    let (bootstrap, listeners) = listener_from_file(rendered, &path, &folder)?;
    let aside = dir.join("lds.yaml.next");
    std::fs::write(&aside, listeners)?;
    std::fs::rename(&aside, &path)?;
    Ok(bootstrap)
}

/// Starts Envoy as hot restart epoch `epoch` (0: the first start).
fn launch_envoy(
    dir: &Path,
    options: &StackOptions,
    upstream: SocketAddr,
    collectors: &[SocketAddr],
    epoch: u32,
) -> Result<(ManagedProcess, SocketAddr, SocketAddr)> {
    let rendered = render_envoy(options, upstream, collectors)?;
    let rendered = if options.listener_from_file { write_listener_file(dir, &rendered)? } else { rendered };
    let config_path = dir.join("envoy.yaml");
    std::fs::write(&config_path, rendered)?;
    let admin_file = dir.join("envoy-admin.address");
    let _ = std::fs::remove_file(&admin_file);

    let mut command = Command::new(paths::envoy_binary()?);
    command
        .arg("--config-path")
        .arg(&config_path)
        .arg("--concurrency")
        .arg(options.envoy_concurrency.to_string())
        .arg("--admin-address-path")
        .arg(&admin_file)
        .arg("--log-level")
        .arg("info")
        .args(&options.envoy_args)
        .env("AUDIT_INGEST_TOKEN", &options.ingest_token)
        .envs(options.envoy_env.iter().map(|(name, value)| (name, value)));
    if options.filter_host == FilterHost::Native {
        command.env("ENVOY_DYNAMIC_MODULES_SEARCH_PATH", paths::filter_native_dir()?);
    }
    let base_id_file = dir.join("envoy.base-id");
    match (options.envoy_hot_restart, epoch) {
        (false, _) => command.arg("--disable-hot-restart"),
        // A base id no other Envoy on the machine uses (tests run side by side).
        (true, 0) => command.arg("--use-dynamic-base-id").arg("--base-id-path").arg(&base_id_file),
        (true, _) => {
            let base_id = std::fs::read_to_string(&base_id_file).context("reading Envoy's base id")?;
            command.arg("--base-id").arg(base_id.trim())
        }
    };
    command.arg("--restart-epoch").arg(epoch.to_string());
    let name = if epoch == 0 { "envoy".to_string() } else { format!("envoy-epoch{epoch}") };
    let mut envoy = ManagedProcess::spawn(&name, command, dir)?;
    let admin = envoy.wait_for("admin address file", READY_TIMEOUT, |_| read_address_file(&admin_file))?;
    let ready = format!("http://{admin}/ready");
    envoy.wait_for("/ready answers LIVE", READY_TIMEOUT, |_| {
        client::send("GET", &ready, &[], None).ok().filter(|reply| reply.status == 200)
    })?;
    let listeners = format!("http://{admin}/listeners?format=json");
    let listener = envoy.wait_for("the audited listener's address", READY_TIMEOUT, |_| {
        let reply = client::send("GET", &listeners, &[], None).ok()?;
        let json: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
        let socket = &json["listener_statuses"].get(0)?["local_address"]["socket_address"];
        let port = u16::try_from(socket["port_value"].as_u64()?).ok()?;
        Some(SocketAddr::from(([127, 0, 0, 1], port)))
    })?;
    Ok((envoy, listener, admin))
}

/// `config` with an endpoint added to the `audit_collector` cluster for each of `more`.
fn with_more_collector_endpoints(config: &str, more: &[SocketAddr]) -> Result<String> {
    let mut root: serde_yaml::Value = serde_yaml::from_str(config)?;
    let clusters = root["static_resources"]["clusters"]
        .as_sequence_mut()
        .ok_or_else(|| anyhow!("envoy.yaml has no static_resources.clusters"))?;
    let cluster = clusters
        .iter_mut()
        .find(|cluster| cluster["name"].as_str() == Some("audit_collector"))
        .ok_or_else(|| anyhow!("envoy.yaml has no audit_collector cluster"))?;
    let endpoints = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
        .as_sequence_mut()
        .ok_or_else(|| anyhow!("the audit_collector cluster has no lb_endpoints"))?;
    let template = endpoints.first().cloned().ok_or_else(|| anyhow!("the audit_collector cluster has no endpoint"))?;
    for address in more {
        let mut endpoint = template.clone();
        let socket = &mut endpoint["endpoint"]["address"]["socket_address"];
        socket["address"] = serde_yaml::Value::String(address.ip().to_string());
        socket["port_value"] = serde_yaml::Value::Number(address.port().into());
        endpoints.push(endpoint);
    }
    Ok(serde_yaml::to_string(&root)?)
}
