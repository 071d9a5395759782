//! `audit-collector envoy-drain --admin http://127.0.0.1:9901`: the graceful stop of an
//! Envoy running the audit filter, so stopping it loses no event. Measured with Envoy 1.40,
//! `POST /drain_listeners?graceful` alone keeps accepting new connections for the whole
//! `--drain-time-s` (600 s by default) and, with the default gradual strategy, tells hardly
//! any keep-alive connection to close; so the drain stops intake itself, in three admin calls:
//! `POST /healthcheck/fail` (Envoy fails its health checks, and every response from then on
//! closes its connection, whatever the drain strategy), `POST /drain_listeners?graceful`
//! (HTTP/2 connections get GOAWAY), and, `--intake-grace-secs` later (0 by default),
//! `POST /drain_listeners` (the listeners close: a new connection is refused). Then it polls
//! Envoy's stats until no request is in flight, no downstream connection is open, and every
//! worker's buffer is delivered (`audit_sidecar.buffered_events` 0 and `captured` still), or
//! the deadline passes. Exit 0: Envoy can be stopped, nothing is buffered and nothing more
//! can come in. Exit 1: events still buffered (stopping Envoy now loses them, and the
//! collector records them as lost), or Envoy's admin could not be used. Exit 2: nothing is
//! buffered, but idle keep-alive connections are still open; a request on one of them would
//! still be answered (and captured) until Envoy stops. Run it as a Kubernetes `preStop`
//! hook, or before `docker stop` (docs/guarantees.md).

use std::time::{Duration, Instant};

use clap::Args;

/// The flags of `audit-collector envoy-drain`.
#[derive(Debug, Args)]
pub struct EnvoyDrainArgs {
    /// Envoy's admin address, e.g. http://127.0.0.1:9901.
    #[arg(long, env = "AUDIT_ENVOY_ADMIN", value_name = "URL", default_value = "http://127.0.0.1:9901")]
    pub admin: String,

    /// Give up after this many seconds (keep it under the pod's terminationGracePeriodSeconds).
    #[arg(long, value_name = "SECONDS", default_value_t = 25)]
    pub deadline_secs: u64,

    /// Keep accepting new connections this long after health checks start failing (every
    /// response closing its connection), so a load balancer that is still sending new
    /// connections here has time to stop; then the listeners close.
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub intake_grace_secs: u64,

    /// Close only inbound listeners (`traffic_direction: INBOUND`), leaving outbound ones to
    /// the application that is shutting down beside Envoy. A listener without a traffic
    /// direction (as in the shipped envoy.yaml) is then not closed: Envoy 1.40 counts it as
    /// neither.
    #[arg(long)]
    pub inbound_only: bool,

    /// How often the stats are read, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub poll_ms: u64,
}

/// Why the drain did not end with intake stopped and nothing buffered.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// Envoy's admin interface could not be used.
    #[error("Envoy's admin interface at {admin} did not answer {what}: {reason}; check --admin")]
    Admin {
        /// The admin URL.
        admin: String,
        /// Which call.
        what: String,
        /// Why.
        reason: String,
    },
    /// Envoy has no audit filter stats: the filter is not loaded, or not yet configured.
    #[error(
        "Envoy at {admin} has no `audit_sidecar.buffered_events` stat (`wasmcustom.` for the wasm filter, \
         `dynamicmodulescustom.` for the native module): is the audit filter loaded?"
    )]
    NoFilter {
        /// The admin URL.
        admin: String,
    },
    /// The deadline passed with events still buffered.
    #[error(
        "after {waited_secs} s the audit filter still buffers {buffered_events} events ({buffered_bytes} bytes); \
         {failing} worker(s) report delivery failing (is the collector reachable?); stopping Envoy now loses them \
         (the collector records them as lost)"
    )]
    StillBuffered {
        /// Seconds waited.
        waited_secs: u64,
        /// Events still buffered over all workers.
        buffered_events: u64,
        /// Their bytes.
        buffered_bytes: u64,
        /// Workers whose last delivery attempt failed.
        failing: u64,
    },
    /// The deadline passed with nothing buffered but connections still open.
    #[error(
        "after {waited_secs} s nothing is buffered, but {connections} downstream connection(s) are still open \
         ({requests} request(s) in flight); a request on one is still answered and captured until Envoy stops"
    )]
    ConnectionsOpen {
        /// Seconds waited.
        waited_secs: u64,
        /// Open downstream connections over the listeners.
        connections: u64,
        /// Requests in flight.
        requests: u64,
    },
}

impl DrainError {
    /// The process exit status for this outcome: 2 when only idle connections are left
    /// (nothing would be lost by stopping now unless a request still comes on one), else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            DrainError::ConnectionsOpen { .. } => 2,
            _ => 1,
        }
    }
}

/// What Envoy's stats say, summed over workers and listeners.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainStats {
    /// Events captured so far.
    pub captured: u64,
    /// Events buffered now.
    pub buffered_events: u64,
    /// Their bytes.
    pub buffered_bytes: u64,
    /// Workers whose last delivery attempt failed.
    pub delivery_failing: u64,
    /// Downstream connections open on the listeners (the admin's own not counted).
    pub connections: u64,
    /// HTTP requests in flight (the admin's own not counted).
    pub requests: u64,
}

impl DrainStats {
    /// Reads the `audit_sidecar.*` lines of `GET /stats` (Envoy prefixes them `wasmcustom.`
    /// for the wasm filter, `dynamicmodulescustom.` for the native module), and the listeners'
    /// `downstream_cx_active` and connection managers' `downstream_rq_active`; None without
    /// the filter's.
    pub fn parse(stats: &str) -> Option<DrainStats> {
        let mut found = false;
        let mut figures = DrainStats::default();
        for (name, value) in stats.lines().filter_map(|line| line.split_once(": ")) {
            let name = name.trim();
            let Ok(value) = value.trim().parse::<u64>() else { continue };
            let filter_stat = ["wasmcustom.audit_sidecar.", "dynamicmodulescustom.audit_sidecar."]
                .iter()
                .find_map(|prefix| name.strip_prefix(prefix));
            if let Some(filter_stat) = filter_stat {
                match filter_stat {
                    "captured" => figures.captured = value,
                    "buffered_events" => {
                        figures.buffered_events = value;
                        found = true;
                    }
                    "buffered_bytes" => figures.buffered_bytes = value,
                    "delivery_failing" => figures.delivery_failing = value,
                    _ => {}
                }
            } else if name.starts_with("listener.")
                && !name.starts_with("listener.admin.")
                && !name.contains(".worker_")
                && name.ends_with(".downstream_cx_active")
            {
                figures.connections += value;
            } else if name.starts_with("http.")
                && !name.starts_with("http.admin.")
                && name.ends_with(".downstream_rq_active")
            {
                figures.requests += value;
            }
        }
        found.then_some(figures)
    }

    /// Nothing in flight, nothing open, nothing buffered.
    fn is_idle(&self) -> bool {
        self.buffered_events == 0 && self.connections == 0 && self.requests == 0
    }
}

/// Stops Envoy's intake, waits for its connections to close and the filter's buffers to
/// empty; prints progress to `out`.
pub fn run(args: &EnvoyDrainArgs, out: &mut impl std::io::Write) -> Result<DrainStats, DrainError> {
    let admin = args.admin.trim_end_matches('/').to_owned();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    let post = |path: &str| -> Result<(), DrainError> {
        let what = format!("POST {path}");
        let reply = agent.post(&format!("{admin}{path}")).send_empty().map_err(|error| DrainError::Admin {
            admin: admin.clone(),
            what: what.clone(),
            reason: error.to_string(),
        })?;
        if reply.status() != 200 {
            return Err(DrainError::Admin { admin: admin.clone(), what, reason: format!("status {}", reply.status()) });
        }
        Ok(())
    };
    let (graceful, close) = match args.inbound_only {
        true => ("/drain_listeners?graceful&inboundonly", "/drain_listeners?inboundonly"),
        false => ("/drain_listeners?graceful", "/drain_listeners"),
    };
    let started = Instant::now();
    post("/healthcheck/fail")?;
    post(graceful)?;
    if args.intake_grace_secs > 0 {
        let _ = writeln!(
            out,
            "envoy-drain: health checks fail and every response closes its connection; listeners close in {} s",
            args.intake_grace_secs
        );
        std::thread::sleep(Duration::from_secs(args.intake_grace_secs));
    }
    post(close)?;
    let _ = writeln!(
        out,
        "envoy-drain: intake stopped at {admin} (listeners closed, health checks failing); waiting for open \
         connections to close and the audit filter's buffers to be delivered"
    );
    let deadline = started + Duration::from_secs(args.deadline_secs);
    let mut previous: Option<DrainStats> = None;
    loop {
        let stats = read_stats(&agent, &admin)?;
        // Idle twice in a row with no new capture in between: nothing is on its way in.
        let quiet = previous.is_some_and(|before| before.is_idle() && before.captured == stats.captured);
        if stats.is_idle() && quiet {
            let _ = writeln!(
                out,
                "envoy-drain: no connection open, every worker's buffer delivered ({} events captured)",
                stats.captured
            );
            return Ok(stats);
        }
        if Instant::now() >= deadline {
            let waited_secs = started.elapsed().as_secs();
            if stats.buffered_events > 0 {
                return Err(DrainError::StillBuffered {
                    waited_secs,
                    buffered_events: stats.buffered_events,
                    buffered_bytes: stats.buffered_bytes,
                    failing: stats.delivery_failing,
                });
            }
            return Err(DrainError::ConnectionsOpen {
                waited_secs,
                connections: stats.connections,
                requests: stats.requests,
            });
        }
        previous = Some(stats);
        std::thread::sleep(Duration::from_millis(args.poll_ms.max(10)));
    }
}

fn read_stats(agent: &ureq::Agent, admin: &str) -> Result<DrainStats, DrainError> {
    let admin_error =
        |reason: String| DrainError::Admin { admin: admin.to_owned(), what: "GET /stats".to_owned(), reason };
    let mut reply = agent
        .get(&format!("{admin}/stats?filter=audit_sidecar|downstream_cx_active|downstream_rq_active"))
        .call()
        .map_err(|error| admin_error(error.to_string()))?;
    let text = reply.body_mut().read_to_string().map_err(|error| admin_error(error.to_string()))?;
    DrainStats::parse(&text).ok_or_else(|| DrainError::NoFilter { admin: admin.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_filters_stats_and_the_open_connections_but_not_the_admins() {
        let stats = "cluster.x.upstream_rq: 5\nwasmcustom.audit_sidecar.captured: 120\n\
                     wasmcustom.audit_sidecar.buffered_events: 7\nwasmcustom.audit_sidecar.buffered_bytes: 5600\n\
                     wasmcustom.audit_sidecar.delivery_failing: 1\nlistener.admin.downstream_cx_active: 1\n\
                     listener.127.0.0.1_10000.downstream_cx_active: 3\nlistener.0.0.0.0_8080.downstream_cx_active: 1\n\
                     listener.127.0.0.1_10000.worker_0.downstream_cx_active: 2\n\
                     http.admin.downstream_rq_active: 1\nhttp.ingress_http.downstream_rq_active: 2\n";
        let parsed = DrainStats::parse(stats).expect("the filter's stats");
        assert_eq!(
            parsed,
            DrainStats {
                captured: 120,
                buffered_events: 7,
                buffered_bytes: 5600,
                delivery_failing: 1,
                connections: 4,
                requests: 2
            }
        );
        assert_eq!(DrainStats::parse("server.live: 1\n"), None, "no filter loaded");
    }

    #[test]
    fn reads_the_native_modules_stats_too() {
        let stats = "dynamicmodulescustom.audit_sidecar.captured: 9\n\
                     dynamicmodulescustom.audit_sidecar.buffered_events: 2\n";
        let parsed = DrainStats::parse(stats).expect("the native filter's stats");
        assert_eq!(parsed, DrainStats { captured: 9, buffered_events: 2, ..DrainStats::default() });
    }

    #[test]
    fn an_unreachable_admin_is_named() {
        let args = EnvoyDrainArgs {
            admin: "http://127.0.0.1:9".into(),
            deadline_secs: 1,
            intake_grace_secs: 0,
            inbound_only: false,
            poll_ms: 10,
        };
        let error = run(&args, &mut Vec::new()).expect_err("nothing listens on port 9");
        assert!(error.to_string().contains("http://127.0.0.1:9") && error.to_string().contains("--admin"), "{error}");
        assert_eq!(error.exit_code(), 1);
    }
}
