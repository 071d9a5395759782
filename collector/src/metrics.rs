//! [`Metrics`]: the collector's counters, gauges and request-latency histograms, written
//! in the Prometheus text exposition format (version 0.0.4) by [`Metrics::render`] for
//! `GET /metrics`. Hand-written rather than a client crate: seven series do not need one.
//! Label values come from fixed sets (route names, problem kinds), so the number of series
//! is bounded whatever clients send.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::store::trail_store::SealingGauges;

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 11] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// Everything `/metrics` reports that the collector counts itself.
#[derive(Default)]
pub struct Metrics {
    ingested: AtomicU64,
    duplicates: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
}

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

/// Values read when `/metrics` is scraped rather than counted.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Events retention has deleted, counted by the database itself (so across restarts).
    pub purged_events: u64,
    /// Size of the SQLite file and its WAL, in bytes.
    pub database_size_bytes: u64,
    /// Commands waiting for the writer thread.
    pub write_queue_depth: usize,
    /// PostgreSQL only: the lease, the oldest unsealed event's wait, the queue and its bound.
    pub sealing: Option<SealingGauges>,
}

impl Metrics {
    /// Counts a committed batch: events newly stored and duplicates skipped.
    pub fn count_ingested(&self, accepted: usize, duplicates: usize) {
        self.ingested.fetch_add(as_u64(accepted), Ordering::Relaxed);
        self.duplicates.fetch_add(as_u64(duplicates), Ordering::Relaxed);
    }

    /// Counts an ingest request that stored nothing, by reason (a problem kind).
    pub fn count_rejected(&self, reason: &'static str) {
        *self.rejected.lock().unwrap_or_else(PoisonError::into_inner).entry(reason).or_default() += 1;
    }

    /// Records how long a request to `route` took.
    pub fn observe_latency(&self, route: &'static str, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let mut latency = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
        let histogram = latency.entry(route).or_default();
        for (bucket, bound) in histogram.buckets.iter_mut().zip(LATENCY_BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        histogram.count += 1;
        histogram.sum_seconds += seconds;
    }

    /// The text exposition of every series.
    pub fn render(&self, gauges: Gauges) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        };
        counter(
            &mut out,
            "audit_events_ingested_total",
            "Events stored (first time seen).",
            self.ingested.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "audit_events_duplicate_total",
            "Events received again and not stored twice (retries).",
            self.duplicates.load(Ordering::Relaxed),
        );
        counter(&mut out, "audit_events_purged_total", "Events deleted by retention.", gauges.purged_events);

        let _ =
            writeln!(out, "# HELP audit_ingest_batches_rejected_total Ingest requests that stored nothing, by reason.");
        let _ = writeln!(out, "# TYPE audit_ingest_batches_rejected_total counter");
        for (reason, count) in self.rejected.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = writeln!(out, "audit_ingest_batches_rejected_total{{reason=\"{reason}\"}} {count}");
        }

        let _ = writeln!(out, "# HELP audit_http_request_duration_seconds Time to answer a request, by route.");
        let _ = writeln!(out, "# TYPE audit_http_request_duration_seconds histogram");
        for (route, histogram) in self.latency.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            for (count, bound) in histogram.buckets.iter().zip(LATENCY_BUCKETS) {
                let _ = writeln!(
                    out,
                    "audit_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                );
            }
            let name = "audit_http_request_duration_seconds";
            let _ = writeln!(out, "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {}", histogram.count);
            let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {}", histogram.sum_seconds);
            let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {}", histogram.count);
        }

        let gauge = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        };
        gauge(
            &mut out,
            "audit_database_size_bytes",
            "Size of the SQLite database file and its WAL.",
            gauges.database_size_bytes,
        );
        gauge(
            &mut out,
            "audit_write_queue_depth",
            "Commands waiting for the database writer.",
            as_u64(gauges.write_queue_depth),
        );
        if let Some(sealing) = gauges.sealing {
            gauge(
                &mut out,
                "audit_sealer_lease_live",
                "1 while a replica holds the sealer lease and renews it (PostgreSQL), else 0.",
                u64::from(sealing.lease_live),
            );
            let name = "audit_unsealed_oldest_seconds";
            let help = "How long the oldest acknowledged, not yet sealed event has waited (PostgreSQL).";
            let seconds = sealing.oldest_unsealed_ms as f64 / 1000.0;
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {seconds}");
            gauge(
                &mut out,
                "audit_unsealed_events",
                "Acknowledged events waiting for the sealer, at most (PostgreSQL).",
                sealing.unsealed_events,
            );
            gauge(
                &mut out,
                "audit_unsealed_events_max",
                "Past this many unsealed events ingest answers 503 (--pg-max-unsealed-events; PostgreSQL).",
                sealing.max_unsealed_events,
            );
        }
        out
    }
}

fn as_u64(value: usize) -> u64 {
    u64::try_from(value).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_histograms_and_gauges_are_rendered_in_the_text_format() {
        let metrics = Metrics::default();
        metrics.count_ingested(3, 1);
        metrics.count_rejected("bad-request");
        metrics.count_rejected("bad-request");
        metrics.observe_latency("audit", Duration::from_millis(3));
        let text =
            metrics.render(Gauges { purged_events: 5, database_size_bytes: 4096, write_queue_depth: 2, sealing: None });
        for line in [
            "audit_events_ingested_total 3",
            "audit_events_duplicate_total 1",
            "audit_events_purged_total 5",
            "audit_ingest_batches_rejected_total{reason=\"bad-request\"} 2",
            "audit_http_request_duration_seconds_bucket{route=\"audit\",le=\"0.0025\"} 0",
            "audit_http_request_duration_seconds_bucket{route=\"audit\",le=\"0.005\"} 1",
            "audit_http_request_duration_seconds_bucket{route=\"audit\",le=\"+Inf\"} 1",
            "audit_http_request_duration_seconds_count{route=\"audit\"} 1",
            "audit_database_size_bytes 4096",
            "audit_write_queue_depth 2",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
        }
        assert!(!text.contains("audit_sealer"), "no sealer gauges where nothing is sealed later (SQLite)");
        let sealing = SealingGauges {
            lease_live: false,
            oldest_unsealed_ms: 31_500,
            unsealed_events: 40_000,
            max_unsealed_events: 30_000,
        };
        let text = metrics.render(Gauges { sealing: Some(sealing), ..Gauges::default() });
        for line in [
            "audit_sealer_lease_live 0",
            "audit_unsealed_oldest_seconds 31.5",
            "audit_unsealed_events 40000",
            "audit_unsealed_events_max 30000",
        ] {
            assert!(text.lines().any(|l| l == line), "missing `{line}` in:\n{text}");
        }
    }
}
