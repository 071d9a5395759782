//! Back-pressure on PostgreSQL's queue of acknowledged events (`unsequenced`): past a bound
//! of events waiting for the one sealer (`--pg-max-unsealed-events`), ingest refuses a batch
//! that carries events ([`StoreError::SealingBehind`], answered 503 with Retry-After)
//! instead of acknowledging more than the sealer moves into the trail. The filter keeps a
//! refused batch and retries it, so above the sealer's rate acknowledged follows sealed and
//! the queue (and the wait for an event to become readable) stays bounded.
//!
//! The figure is `max(arrival) - min(arrival) + 1`: two probes of the queue's primary key,
//! an upper bound on the rows (a rolled-back insert leaves gaps in `arrival`, never extra
//! rows). Each replica keeps one reading for all of its requests, refreshed by the first
//! request that finds it older than [`READING_LIFETIME`], and adds what it acknowledges
//! itself meanwhile; so a batch costs an atomic load, and the bound can be passed by what
//! the other replicas acknowledge within one reading's lifetime. A refused batch of a
//! numbering sender also restarts that sender's clocks (`senders::note_refused`), so a
//! refusal is never recorded as the sender's loss or silence.
//!
//! Not refused, whatever the queue: a batch without events (a sender's heartbeat) or whose
//! only events are the filter's gap records, because that is how losses are reported and it
//! is tiny; the collector's own records (`insert_records`: the sender check's gaps and
//! stops), which are the trail's account of what went missing; and `migrate`, which writes
//! sealed rows into `events` directly, not through the queue.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use audit_event::DELIVERY_GAP_TYPE;
use deadpool_postgres::{GenericClient, Pool};

use super::super::new_event::NewEvent;
use super::super::StoreError;

/// The default bound (`--pg-max-unsealed-events`): about two seconds of what one sealer moves
/// on the bench machine (13-16k events/s), so an event acknowledged at the bound is readable
/// about two seconds later, while the queue at the rates the sealer sustains (under one
/// sealing round, a few thousand) never meets it (docs/configuration.md argues it).
pub const DEFAULT_MAX_UNSEALED_EVENTS: u64 = 30_000;

/// How long one reading of the queue serves every request of this replica.
pub const READING_LIFETIME: Duration = Duration::from_millis(100);

/// At most one log line per this long while batches are refused (each line counts them).
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Events waiting in `unsequenced`, at most (0 when none): two probes of its primary key.
pub async fn read_unsealed(client: &impl GenericClient) -> Result<u64, StoreError> {
    let row = client.query_one("SELECT max(arrival) - min(arrival) + 1 FROM unsequenced", &[]).await?;
    let unsealed: Option<i64> = row.try_get(0)?;
    Ok(unsealed.map_or(0, |count| u64::try_from(count).unwrap_or(0)))
}

/// One replica's view of the queue and its bound.
#[derive(Debug)]
pub struct UnsealedBound {
    max_unsealed: u64,
    started: Instant,
    /// The last reading, plus the events this replica acknowledged since.
    unsealed: AtomicU64,
    /// When it was read, in ms since `started` (negative: never).
    read_at_ms: AtomicI64,
    /// A request is reading the queue: the others use the reading they have.
    refreshing: AtomicBool,
    refused_since_log: AtomicU64,
    logged_at_ms: AtomicI64,
}

impl UnsealedBound {
    /// A bound of `max_unsealed` events waiting for the sealer.
    pub fn new(max_unsealed: u64) -> UnsealedBound {
        UnsealedBound {
            max_unsealed,
            started: Instant::now(),
            unsealed: AtomicU64::new(0),
            read_at_ms: AtomicI64::new(i64::MIN / 2),
            refreshing: AtomicBool::new(false),
            refused_since_log: AtomicU64::new(0),
            logged_at_ms: AtomicI64::new(i64::MIN / 2),
        }
    }

    /// The bound, in events.
    pub fn max_unsealed(&self) -> u64 {
        self.max_unsealed
    }

    /// Whether a batch of `events` may be stored now: refused with
    /// [`StoreError::SealingBehind`] when it carries events and the queue is past the bound.
    /// Reads the queue first (on a connection of `pool`) when this replica's reading is stale.
    pub async fn admit(&self, pool: &Pool, events: &[NewEvent]) -> Result<(), StoreError> {
        if !carries_events(events) {
            return Ok(());
        }
        if self.is_stale() {
            self.refresh(pool).await?;
        }
        let unsealed = self.unsealed.load(Ordering::Relaxed);
        if unsealed <= self.max_unsealed {
            return Ok(());
        }
        self.note_refusal(unsealed);
        Err(StoreError::SealingBehind { unsealed, bound: self.max_unsealed })
    }

    /// Counts `events` this replica just acknowledged into its reading, so its own load
    /// meets the bound before the next reading does.
    pub fn note_acknowledged(&self, events: usize) {
        self.unsealed.fetch_add(u64::try_from(events).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Takes a reading made elsewhere (the `/metrics` scrape reads the queue anyway).
    pub fn note_reading(&self, unsealed: u64) {
        self.unsealed.store(unsealed, Ordering::Relaxed);
        self.read_at_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    fn now_ms(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_millis()).unwrap_or(i64::MAX)
    }

    fn is_stale(&self) -> bool {
        let lifetime = i64::try_from(READING_LIFETIME.as_millis()).unwrap_or(i64::MAX);
        self.now_ms().saturating_sub(self.read_at_ms.load(Ordering::Relaxed)) >= lifetime
    }

    /// Reads the queue unless another request of this replica is reading it already.
    async fn refresh(&self, pool: &Pool) -> Result<(), StoreError> {
        if self.refreshing.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return Ok(());
        }
        // Cleared however the read ends, a request dropped mid-query (client gone) included.
        let _reading = ClearOnDrop(&self.refreshing);
        let unsealed = read_unsealed(&pool.get().await?).await?;
        self.note_reading(unsealed);
        Ok(())
    }

    /// One warning per [`LOG_EVERY`] while refusing, not one per refused batch.
    fn note_refusal(&self, unsealed: u64) {
        self.refused_since_log.fetch_add(1, Ordering::Relaxed);
        let now = self.now_ms();
        let last = self.logged_at_ms.load(Ordering::Relaxed);
        let every = i64::try_from(LOG_EVERY.as_millis()).unwrap_or(i64::MAX);
        if now.saturating_sub(last) >= every
            && self.logged_at_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            let refused = self.refused_since_log.swap(0, Ordering::Relaxed);
            tracing::warn!(
                unsealed,
                bound = self.max_unsealed,
                refused_batches = refused,
                "ingest refuses batches with 503: sealing is behind (events waiting for the sealer past \
                 --pg-max-unsealed-events); the filters keep them and retry"
            );
        }
    }
}

/// Whether a batch holds anything but the filter's own gap records.
fn carries_events(events: &[NewEvent]) -> bool {
    events.iter().any(|event| event.event_type != DELIVERY_GAP_TYPE)
}

struct ClearOnDrop<'a>(&'a AtomicBool);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::new_event;

    #[test]
    fn only_a_batch_with_events_other_than_gap_records_carries_events() {
        assert!(!carries_events(&[]));
        let mut gap = new_event(1, 0);
        gap.event_type = DELIVERY_GAP_TYPE.to_owned();
        assert!(!carries_events(std::slice::from_ref(&gap)));
        assert!(carries_events(&[gap, new_event(2, 0)]));
    }

    #[test]
    fn a_fresh_reading_with_this_replicas_acknowledgements_is_what_the_bound_meets() {
        let bound = UnsealedBound::new(100);
        assert!(bound.is_stale(), "never read: stale");
        bound.note_reading(60);
        assert!(!bound.is_stale(), "just read");
        bound.note_acknowledged(50);
        assert_eq!(bound.unsealed.load(Ordering::Relaxed), 110);
    }
}
