//! Envoy stats for delivery (Envoy shows them prefixed `wasmcustom.`): counters
//! `audit_sidecar.captured`, `.sent`, `.retried`, `.dropped`, `.rejected`, `.gap_records`,
//! `.refused`, and gauges `audit_sidecar.buffered_bytes`, `.buffered_events` and
//! `.delivery_failing` (workers whose last delivery attempt failed). Every worker adds its
//! deltas, so the stats are totals over workers. Published from the root context (on tick
//! and after each answer), never per request, to keep host calls off the request path.

use log::warn;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use audit_filter_core::worker::delivery::Snapshot;

pub struct Metrics {
    ids: Option<MetricIds>,
    published: Snapshot,
}

struct MetricIds {
    captured: u32,
    sent: u32,
    retried: u32,
    dropped: u32,
    rejected: u32,
    gap_records: u32,
    refused: u32,
    buffered_bytes: u32,
    buffered_events: u32,
    delivery_failing: u32,
}

impl Metrics {
    pub fn define() -> Metrics {
        let define = |kind, name| hostcalls::define_metric(kind, name);
        let ids = (|| {
            Ok::<_, proxy_wasm::types::Status>(MetricIds {
                captured: define(MetricType::Counter, "audit_sidecar.captured")?,
                sent: define(MetricType::Counter, "audit_sidecar.sent")?,
                retried: define(MetricType::Counter, "audit_sidecar.retried")?,
                dropped: define(MetricType::Counter, "audit_sidecar.dropped")?,
                rejected: define(MetricType::Counter, "audit_sidecar.rejected")?,
                gap_records: define(MetricType::Counter, "audit_sidecar.gap_records")?,
                refused: define(MetricType::Counter, "audit_sidecar.refused")?,
                buffered_bytes: define(MetricType::Gauge, "audit_sidecar.buffered_bytes")?,
                buffered_events: define(MetricType::Gauge, "audit_sidecar.buffered_events")?,
                delivery_failing: define(MetricType::Gauge, "audit_sidecar.delivery_failing")?,
            })
        })();
        if let Err(status) = &ids {
            warn!("audit-filter: could not define metrics ({status:?}); running without them");
        }
        Metrics { ids: ids.ok(), published: Snapshot::default() }
    }

    /// Adds what changed since the last call.
    pub fn publish(&mut self, now: Snapshot) {
        let Some(ids) = &self.ids else { return };
        let before = self.published;
        let add = |id: u32, delta: i64| {
            if delta != 0 {
                let _ = hostcalls::increment_metric(id, delta);
            }
        };
        let grown = |now: u64, before: u64| i64::try_from(now.saturating_sub(before)).unwrap_or(i64::MAX);
        let (counters, published) = (now.outbox, before.outbox);
        add(ids.captured, grown(counters.captured, published.captured));
        add(ids.sent, grown(counters.sent, published.sent));
        add(ids.retried, grown(counters.retried, published.retried));
        add(ids.dropped, grown(counters.dropped, published.dropped));
        add(ids.rejected, grown(counters.rejected, published.rejected));
        add(ids.gap_records, grown(counters.gap_records, published.gap_records));
        add(ids.refused, grown(now.refused, before.refused));
        let level = |value: usize| i64::try_from(value).unwrap_or(i64::MAX);
        add(ids.buffered_bytes, level(counters.buffered_bytes) - level(published.buffered_bytes));
        add(ids.buffered_events, level(counters.buffered_events) - level(published.buffered_events));
        add(ids.delivery_failing, i64::from(now.delivery_failing) - i64::from(before.delivery_failing));
        self.published = now;
    }
}
