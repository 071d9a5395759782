//! Envoy stats for delivery, the same names as the proxy-wasm host's (Envoy prefixes a
//! dynamic module's stats with its own namespace): counters `audit_sidecar.captured`,
//! `.sent`, `.retried`, `.dropped`, `.rejected`, `.gap_records`, `.refused`, and this host's
//! `.hook_panics` (panics caught at the boundary); gauges `audit_sidecar.buffered_bytes`,
//! `.buffered_events` and `.delivery_failing` (workers whose last attempt failed). Published
//! on Envoy's main thread after each tick and answer, as totals over the configuration's
//! workers, never per request.

use std::sync::Mutex;

use audit_filter_core::worker::delivery::Snapshot;

use crate::envoy::ConfigHandle;

struct Ids {
    captured: usize,
    sent: usize,
    retried: usize,
    dropped: usize,
    rejected: usize,
    gap_records: usize,
    refused: usize,
    hook_panics: usize,
    buffered_bytes: usize,
    buffered_events: usize,
    delivery_failing: usize,
}

/// The totals last published, to add only what changed.
#[derive(Default, Clone, Copy)]
struct Published {
    captured: u64,
    sent: u64,
    retried: u64,
    dropped: u64,
    rejected: u64,
    gap_records: u64,
    refused: u64,
    hook_panics: u64,
}

pub struct Metrics {
    ids: Option<Ids>,
    published: Mutex<Published>,
}

impl Metrics {
    /// Defines the stats; Envoy allows it only in `config_new`. Without them the filter runs
    /// on (the caller logs it).
    pub fn define(config: &ConfigHandle) -> Metrics {
        let ids = (|| {
            Some(Ids {
                captured: config.define_counter("audit_sidecar.captured")?,
                sent: config.define_counter("audit_sidecar.sent")?,
                retried: config.define_counter("audit_sidecar.retried")?,
                dropped: config.define_counter("audit_sidecar.dropped")?,
                rejected: config.define_counter("audit_sidecar.rejected")?,
                gap_records: config.define_counter("audit_sidecar.gap_records")?,
                refused: config.define_counter("audit_sidecar.refused")?,
                hook_panics: config.define_counter("audit_sidecar.hook_panics")?,
                buffered_bytes: config.define_gauge("audit_sidecar.buffered_bytes")?,
                buffered_events: config.define_gauge("audit_sidecar.buffered_events")?,
                delivery_failing: config.define_gauge("audit_sidecar.delivery_failing")?,
            })
        })();
        Metrics { ids, published: Mutex::new(Published::default()) }
    }

    pub fn defined(&self) -> bool {
        self.ids.is_some()
    }

    /// Publishes the totals of `snapshots` (one per worker) and the panics caught so far.
    pub fn publish(&self, config: &ConfigHandle, snapshots: &[Snapshot], hook_panics: u64) {
        let Some(ids) = &self.ids else { return };
        let mut now = Published { hook_panics, ..Published::default() };
        let (mut buffered_bytes, mut buffered_events, mut failing) = (0u64, 0u64, 0u64);
        for snapshot in snapshots {
            let counters = snapshot.outbox;
            now.captured += counters.captured;
            now.sent += counters.sent;
            now.retried += counters.retried;
            now.dropped += counters.dropped;
            now.rejected += counters.rejected;
            now.gap_records += counters.gap_records;
            now.refused += snapshot.refused;
            buffered_bytes += u64::try_from(counters.buffered_bytes).unwrap_or(u64::MAX);
            buffered_events += u64::try_from(counters.buffered_events).unwrap_or(u64::MAX);
            failing += u64::from(snapshot.delivery_failing);
        }
        let mut published = self.published.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = *published;
        let add = |id: usize, now: u64, before: u64| {
            if now > before {
                config.increment_counter(id, now - before);
            }
        };
        add(ids.captured, now.captured, before.captured);
        add(ids.sent, now.sent, before.sent);
        add(ids.retried, now.retried, before.retried);
        add(ids.dropped, now.dropped, before.dropped);
        add(ids.rejected, now.rejected, before.rejected);
        add(ids.gap_records, now.gap_records, before.gap_records);
        add(ids.refused, now.refused, before.refused);
        add(ids.hook_panics, now.hook_panics, before.hook_panics);
        config.set_gauge(ids.buffered_bytes, buffered_bytes);
        config.set_gauge(ids.buffered_events, buffered_events);
        config.set_gauge(ids.delivery_failing, failing);
        *published = now;
    }
}
