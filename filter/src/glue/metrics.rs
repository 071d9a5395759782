//! Envoy stats for the outbox: counters `audit_sidecar.captured`, `.sent`, `.retried`,
//! `.dropped` and the gauge `audit_sidecar.buffered_bytes` (Envoy shows them prefixed
//! `wasmcustom.`). Every worker adds its deltas, so the stats are totals over workers.
//! Published from the root context (on tick and after each answer), never per request,
//! to keep host calls off the request path.

use log::warn;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

use crate::outbox::OutboxCounters;

#[derive(Default)]
pub struct Metrics {
    ids: Option<MetricIds>,
    published: OutboxCounters,
}

struct MetricIds {
    captured: u32,
    sent: u32,
    retried: u32,
    dropped: u32,
    buffered_bytes: u32,
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
                buffered_bytes: define(MetricType::Gauge, "audit_sidecar.buffered_bytes")?,
            })
        })();
        if let Err(status) = &ids {
            warn!("audit-filter: could not define metrics ({status:?}); running without them");
        }
        Metrics { ids: ids.ok(), published: OutboxCounters::default() }
    }

    /// Adds what changed since the last call.
    pub fn publish(&mut self, now: OutboxCounters) {
        let Some(ids) = &self.ids else { return };
        let before = self.published;
        let add = |id: u32, delta: i64| {
            if delta != 0 {
                let _ = hostcalls::increment_metric(id, delta);
            }
        };
        let grown = |now: u64, before: u64| i64::try_from(now.saturating_sub(before)).unwrap_or(i64::MAX);
        add(ids.captured, grown(now.captured, before.captured));
        add(ids.sent, grown(now.sent, before.sent));
        add(ids.retried, grown(now.retried, before.retried));
        add(ids.dropped, grown(now.dropped, before.dropped));
        let bytes = |value: usize| i64::try_from(value).unwrap_or(i64::MAX);
        add(ids.buffered_bytes, bytes(now.buffered_bytes) - bytes(before.buffered_bytes));
        self.published = now;
    }
}
