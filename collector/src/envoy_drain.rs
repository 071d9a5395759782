//! `audit-collector envoy-drain --admin http://127.0.0.1:9901`: the graceful stop of an
//! Envoy running the audit filter, so stopping it loses no event. It drains Envoy's
//! listeners (`POST /drain_listeners?graceful`: no new connections, requests in flight
//! finish), then polls the filter's stats until every worker's buffer is delivered
//! (`audit_sidecar.buffered_events` is 0 and `captured` has stopped moving), or the
//! deadline passes. Exit 0: Envoy can be stopped with nothing buffered. Exit 1: what is
//! still buffered, and whether delivery is failing, is printed. Run it as a Kubernetes
//! `preStop` hook, or before `docker stop` (docs/guarantees.md).

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

    /// How often the stats are read, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub poll_ms: u64,
}

/// Why the drain did not end with empty buffers.
#[derive(Debug, thiserror::Error)]
pub enum DrainError {
    /// Envoy's admin interface could not be used.
    #[error("Envoy's admin interface at {admin} did not answer {what}: {reason}; check --admin")]
    Admin {
        /// The admin URL.
        admin: String,
        /// Which call.
        what: &'static str,
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
         {failing} worker(s) report delivery failing (is the collector reachable?); stopping Envoy now loses them"
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
}

/// The filter's figures, summed over workers, as Envoy's admin prints them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilterStats {
    /// Events captured so far.
    pub captured: u64,
    /// Events buffered now.
    pub buffered_events: u64,
    /// Their bytes.
    pub buffered_bytes: u64,
    /// Workers whose last delivery attempt failed.
    pub delivery_failing: u64,
}

impl FilterStats {
    /// Reads the `audit_sidecar.*` lines of `GET /stats` (Envoy prefixes them `wasmcustom.`
    /// for the wasm filter, `dynamicmodulescustom.` for the native module; one Envoy runs one
    /// of them); None without them.
    pub fn parse(stats: &str) -> Option<FilterStats> {
        let mut found = false;
        let mut figures = FilterStats::default();
        for (name, value) in stats.lines().filter_map(|line| line.split_once(": ")) {
            let name = name.trim();
            let Some(name) = ["wasmcustom.audit_sidecar.", "dynamicmodulescustom.audit_sidecar."]
                .iter()
                .find_map(|prefix| name.strip_prefix(prefix))
            else {
                continue;
            };
            let Ok(value) = value.trim().parse::<u64>() else { continue };
            match name {
                "captured" => figures.captured = value,
                "buffered_events" => {
                    figures.buffered_events = value;
                    found = true;
                }
                "buffered_bytes" => figures.buffered_bytes = value,
                "delivery_failing" => figures.delivery_failing = value,
                _ => {}
            }
        }
        found.then_some(figures)
    }
}

/// Drains Envoy and waits for the filter's buffers to empty; prints progress to `out`.
pub fn run(args: &EnvoyDrainArgs, out: &mut impl std::io::Write) -> Result<FilterStats, DrainError> {
    let admin = args.admin.trim_end_matches('/').to_owned();
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    let admin_error = |what, reason: String| DrainError::Admin { admin: admin.clone(), what, reason };
    let drained = agent
        .post(&format!("{admin}/drain_listeners?graceful"))
        .send_empty()
        .map_err(|error| admin_error("POST /drain_listeners?graceful", error.to_string()))?;
    if drained.status() != 200 {
        return Err(admin_error("POST /drain_listeners?graceful", format!("status {}", drained.status())));
    }
    let _ = writeln!(out, "envoy-drain: listeners draining at {admin}; waiting for the audit filter's buffers");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.deadline_secs);
    let mut previous: Option<FilterStats> = None;
    loop {
        let mut reply = agent
            .get(&format!("{admin}/stats?filter=audit_sidecar"))
            .call()
            .map_err(|error| admin_error("GET /stats", error.to_string()))?;
        let text = reply.body_mut().read_to_string().map_err(|error| admin_error("GET /stats", error.to_string()))?;
        let stats = FilterStats::parse(&text).ok_or_else(|| DrainError::NoFilter { admin: admin.clone() })?;
        // Empty twice in a row with no new capture in between: nothing is on its way in.
        let quiet = previous.is_some_and(|before| before.captured == stats.captured && before.buffered_events == 0);
        if stats.buffered_events == 0 && quiet {
            let _ =
                writeln!(out, "envoy-drain: every worker's buffer is delivered ({} events captured)", stats.captured);
            return Ok(stats);
        }
        if Instant::now() >= deadline {
            return Err(DrainError::StillBuffered {
                waited_secs: started.elapsed().as_secs(),
                buffered_events: stats.buffered_events,
                buffered_bytes: stats.buffered_bytes,
                failing: stats.delivery_failing,
            });
        }
        previous = Some(stats);
        std::thread::sleep(Duration::from_millis(args.poll_ms.max(10)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_filters_stats_and_ignores_the_rest() {
        let stats = "cluster.x.upstream_rq: 5\nwasmcustom.audit_sidecar.captured: 120\n\
                     wasmcustom.audit_sidecar.buffered_events: 7\nwasmcustom.audit_sidecar.buffered_bytes: 5600\n\
                     wasmcustom.audit_sidecar.delivery_failing: 1\n";
        let parsed = FilterStats::parse(stats).expect("the filter's stats");
        assert_eq!(
            parsed,
            FilterStats { captured: 120, buffered_events: 7, buffered_bytes: 5600, delivery_failing: 1 }
        );
        assert_eq!(FilterStats::parse("server.live: 1\n"), None, "no filter loaded");
    }

    #[test]
    fn reads_the_native_modules_stats_too() {
        let stats = "dynamicmodulescustom.audit_sidecar.captured: 9\n\
                     dynamicmodulescustom.audit_sidecar.buffered_events: 2\n";
        let parsed = FilterStats::parse(stats).expect("the native filter's stats");
        assert_eq!(parsed, FilterStats { captured: 9, buffered_events: 2, ..FilterStats::default() });
    }

    #[test]
    fn an_unreachable_admin_is_named() {
        let args = EnvoyDrainArgs { admin: "http://127.0.0.1:9".into(), deadline_secs: 1, poll_ms: 10 };
        let error = run(&args, &mut Vec::new()).expect_err("nothing listens on port 9");
        assert!(error.to_string().contains("http://127.0.0.1:9") && error.to_string().contains("--admin"), "{error}");
    }
}
