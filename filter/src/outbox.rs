//! The per-worker delivery buffer: serialized events go in, `{"events":[...]}` batch
//! bodies come out, one batch in flight at a time so the trail keeps its order.
//!
//! Pure policy: time is passed in (milliseconds), and so is the randomness for backoff
//! jitter, so every decision is tested natively. The glue calls [`Outbox::push`] from
//! `on_log`, [`Outbox::take_batch`] on tick and after each answer, and reports each answer
//! with [`Outbox::on_success`] or [`Outbox::on_failure`].
//!
//! Bounded in events and bytes: overflow drops the oldest events that are not on the wire,
//! and counts them (with first and last drop times) so a gap can be reported.

use std::collections::VecDeque;

use audit_event::event::MAX_EVENT_BYTES;

use crate::config::FilterConfig;

const BATCH_PREFIX: &[u8] = b"{\"events\":[";
const BATCH_SUFFIX: &[u8] = b"]}";

/// The limits the outbox enforces, taken from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxLimits {
    pub batch_max_events: usize,
    pub batch_max_bytes: usize,
    pub flush_interval_ms: u64,
    pub buffer_max_events: usize,
    pub buffer_max_bytes: usize,
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

impl OutboxLimits {
    pub fn from_config(config: &FilterConfig) -> Self {
        Self {
            batch_max_events: config.batch.max_events,
            batch_max_bytes: config.batch.max_bytes,
            flush_interval_ms: config.batch.flush_interval_ms,
            buffer_max_events: config.buffer.max_events,
            buffer_max_bytes: config.buffer.max_bytes,
            initial_backoff_ms: config.retry.initial_backoff_ms,
            max_backoff_ms: config.retry.max_backoff_ms,
        }
    }
}

/// Running totals since the worker started (events, not batches), plus what is buffered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounters {
    /// Events pushed.
    pub captured: u64,
    /// Events the collector acknowledged.
    pub sent: u64,
    /// Events put on the wire again after a failed attempt.
    pub retried: u64,
    /// Events dropped: buffer overflow, or a single event larger than the collector accepts.
    pub dropped: u64,
    /// When the first and the latest drop happened (ms), for a gap record.
    pub first_drop_ms: Option<u64>,
    pub last_drop_ms: Option<u64>,
    /// Bytes of serialized events held (queued and in flight).
    pub buffered_bytes: usize,
    /// Events held (queued and in flight).
    pub buffered_events: usize,
}

/// A batch ready to be sent: the request body and how many events it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub body: Vec<u8>,
    pub events: usize,
    /// True when some of these events were on the wire before and failed.
    pub is_retry: bool,
}

/// How a rejected push went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Queued,
    /// Queued, and this many older events were dropped to make room.
    QueuedDroppingOldest(usize),
    /// Refused: one event larger than the collector accepts would block the queue forever.
    TooLarge,
}

#[derive(Debug)]
struct QueuedEvent {
    json: Vec<u8>,
    pushed_at_ms: u64,
}

#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    retry_at_ms: u64,
}

/// The buffer and batching policy of one worker.
#[derive(Debug)]
pub struct Outbox {
    limits: OutboxLimits,
    /// Oldest first; the first `in_flight` events are the batch on the wire.
    queue: VecDeque<QueuedEvent>,
    in_flight: Option<usize>,
    backoff: Option<Backoff>,
    counters: OutboxCounters,
}

impl Outbox {
    pub fn new(limits: OutboxLimits) -> Self {
        Self { limits, queue: VecDeque::new(), in_flight: None, backoff: None, counters: OutboxCounters::default() }
    }

    pub fn counters(&self) -> OutboxCounters {
        self.counters
    }

    /// True while a batch is on the wire (no other batch is handed out until it is answered).
    pub fn is_in_flight(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Adds one serialized event. Makes room by dropping the oldest events not in flight.
    pub fn push(&mut self, json: Vec<u8>, now_ms: u64) -> PushOutcome {
        self.counters.captured += 1;
        if json.len() > MAX_EVENT_BYTES {
            self.record_drops(1, now_ms);
            return PushOutcome::TooLarge;
        }
        self.counters.buffered_bytes += json.len();
        self.counters.buffered_events += 1;
        self.queue.push_back(QueuedEvent { json, pushed_at_ms: now_ms });

        let protected = self.in_flight.unwrap_or(0);
        let mut dropped = 0;
        while self.over_bounds() && self.queue.len() > protected {
            if let Some(oldest) = self.queue.remove(protected) {
                self.counters.buffered_bytes -= oldest.json.len();
                self.counters.buffered_events -= 1;
                dropped += 1;
            }
        }
        if dropped == 0 {
            return PushOutcome::Queued;
        }
        self.record_drops(dropped, now_ms);
        PushOutcome::QueuedDroppingOldest(dropped)
    }

    /// The next batch, if one is due and none is in flight: when the queue holds a full
    /// batch (events or bytes), when its oldest event has waited a flush interval, or when
    /// a failed batch's backoff has passed.
    pub fn take_batch(&mut self, now_ms: u64) -> Option<Batch> {
        if self.in_flight.is_some() || self.queue.is_empty() {
            return None;
        }
        let is_retry = match self.backoff {
            Some(backoff) if now_ms < backoff.retry_at_ms => return None,
            Some(_) => true,
            None => false,
        };
        if !is_retry && !self.is_batch_due(now_ms) {
            return None;
        }
        let batch = self.assemble_batch(is_retry);
        self.in_flight = Some(batch.events);
        if is_retry {
            self.counters.retried += batch.events as u64;
        }
        Some(batch)
    }

    /// The collector committed the batch in flight: forget it.
    pub fn on_success(&mut self) {
        let Some(count) = self.in_flight.take() else { return };
        for event in self.queue.drain(..count.min(self.queue.len())) {
            self.counters.buffered_bytes -= event.json.len();
            self.counters.buffered_events -= 1;
        }
        self.counters.sent += count as u64;
        self.backoff = None;
    }

    /// The batch in flight failed: keep its events and retry after an exponential backoff
    /// (doubling from `initialBackoffMs`, capped at `maxBackoffMs`) with "equal jitter":
    /// half the delay is fixed, half is random, so workers that failed together spread out.
    /// Returns the delay chosen, in ms.
    pub fn on_failure(&mut self, now_ms: u64, random: u64) -> u64 {
        self.in_flight = None;
        let failures = self.backoff.map_or(0, |backoff| backoff.failures).saturating_add(1);
        let exponential = self
            .limits
            .initial_backoff_ms
            .saturating_mul(1u64.checked_shl(failures - 1).unwrap_or(u64::MAX));
        let ceiling = exponential.min(self.limits.max_backoff_ms);
        let fixed = ceiling / 2;
        let delay = fixed + random % (ceiling - fixed + 1);
        self.backoff = Some(Backoff { failures, retry_at_ms: now_ms.saturating_add(delay) });
        delay
    }

    fn over_bounds(&self) -> bool {
        self.counters.buffered_events > self.limits.buffer_max_events
            || self.counters.buffered_bytes > self.limits.buffer_max_bytes
    }

    fn is_batch_due(&self, now_ms: u64) -> bool {
        let oldest_waited = self
            .queue
            .front()
            .is_some_and(|oldest| now_ms.saturating_sub(oldest.pushed_at_ms) >= self.limits.flush_interval_ms);
        self.queue.len() >= self.limits.batch_max_events
            || self.counters.buffered_bytes >= self.limits.batch_max_bytes
            || oldest_waited
    }

    /// `{"events":[e1,e2,...]}` from the bytes serialized at capture: no re-parsing. At
    /// least one event, then as many as fit in `batch.maxEvents` and `batch.maxBytes`.
    fn assemble_batch(&self, is_retry: bool) -> Batch {
        let mut body = Vec::with_capacity(self.limits.batch_max_bytes.min(self.counters.buffered_bytes + 16));
        body.extend_from_slice(BATCH_PREFIX);
        let mut events = 0;
        for event in self.queue.iter().take(self.limits.batch_max_events) {
            let separator = usize::from(events > 0);
            let size_after = body.len() + separator + event.json.len() + BATCH_SUFFIX.len();
            if events > 0 && size_after > self.limits.batch_max_bytes {
                break;
            }
            if separator == 1 {
                body.push(b',');
            }
            body.extend_from_slice(&event.json);
            events += 1;
        }
        body.extend_from_slice(BATCH_SUFFIX);
        Batch { body, events, is_retry }
    }

    fn record_drops(&mut self, count: usize, now_ms: u64) {
        self.counters.dropped += count as u64;
        self.counters.first_drop_ms.get_or_insert(now_ms);
        self.counters.last_drop_ms = Some(now_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit_event::IngestBatch;

    fn limits() -> OutboxLimits {
        OutboxLimits {
            batch_max_events: 3,
            batch_max_bytes: 1000,
            flush_interval_ms: 100,
            buffer_max_events: 6,
            buffer_max_bytes: 10_000,
            initial_backoff_ms: 200,
            max_backoff_ms: 1000,
        }
    }

    /// A small JSON value standing in for a serialized event, recognisable by `n`.
    fn event(n: u32) -> Vec<u8> {
        format!("{{\"n\":{n}}}").into_bytes()
    }

    fn numbers(batch: &Batch) -> Vec<u64> {
        let value: serde_json::Value = serde_json::from_slice(&batch.body).expect("the batch body is JSON");
        value["events"]
            .as_array()
            .expect("`events` is an array")
            .iter()
            .map(|e| e["n"].as_u64().expect("each event has n"))
            .collect()
    }

    fn outbox_with(count: u32, now_ms: u64) -> Outbox {
        let mut outbox = Outbox::new(limits());
        for n in 1..=count {
            outbox.push(event(n), now_ms);
        }
        outbox
    }

    #[test]
    fn nothing_is_due_before_a_full_batch_or_the_flush_interval() {
        let mut outbox = outbox_with(2, 0);
        assert_eq!(outbox.take_batch(99), None, "2 events, 99 ms old: not due");
        let batch = outbox.take_batch(100).expect("due once the oldest event is 100 ms old");
        assert_eq!(numbers(&batch), [1, 2]);
    }

    #[test]
    fn a_full_batch_is_due_at_once_and_carries_at_most_max_events() {
        let mut outbox = outbox_with(5, 0);
        let batch = outbox.take_batch(0).expect("5 events ≥ batch.maxEvents 3");
        assert_eq!(numbers(&batch), [1, 2, 3]);
        assert_eq!(batch.events, 3);
        assert!(!batch.is_retry);
    }

    #[test]
    fn a_batch_is_due_when_its_bytes_reach_max_bytes_and_never_exceeds_them() {
        let mut outbox = Outbox::new(OutboxLimits { batch_max_bytes: 30, batch_max_events: 100, ..limits() });
        outbox.push(event(1), 0); // 7 bytes
        outbox.push(event(22), 0); // 8 bytes
        assert_eq!(outbox.take_batch(0), None, "15 bytes < 30");
        outbox.push(event(333), 0); // 9 bytes
        outbox.push(event(4444), 0); // 10 bytes: 34 buffered
        let batch = outbox.take_batch(0).expect("34 bytes ≥ 30");
        assert!(batch.body.len() <= 30, "body of {} bytes exceeds batch.maxBytes", batch.body.len());
        assert_eq!(numbers(&batch), [1, 22]);
    }

    #[test]
    fn an_event_larger_than_max_bytes_still_goes_out_alone() {
        let mut outbox = Outbox::new(OutboxLimits { batch_max_bytes: 5, buffer_max_bytes: 10_000, ..limits() });
        outbox.push(event(123_456), 0);
        let batch = outbox.take_batch(0).expect("due: bytes ≥ maxBytes");
        assert_eq!(numbers(&batch), [123_456]);
    }

    #[test]
    fn the_body_is_an_ingest_batch_built_from_the_serialized_bytes() {
        let captured = serde_json::json!({
            "uuid": "16WlpdLpDMzfMYxLTZYXYw", "timestamp": "2019-12-10T09:15:24.864+11:00",
            "type": "Http::Request", "db_user_id": null, "user_email": null,
            "payload": {"path": "/", "queryString": "", "method": "GET", "userAgent": null, "referer": null,
                        "params": {"resource_name": "request"}}
        });
        let mut outbox = Outbox::new(limits());
        outbox.push(serde_json::to_vec(&captured).expect("serializes"), 0);
        let batch = outbox.take_batch(1000).expect("due");
        let parsed: IngestBatch = serde_json::from_slice(&batch.body).expect("the body is an IngestBatch");
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.events[0].uuid, "16WlpdLpDMzfMYxLTZYXYw");
    }

    #[test]
    fn only_one_batch_is_in_flight_and_success_releases_the_next_in_order() {
        let mut outbox = outbox_with(5, 0);
        let first = outbox.take_batch(0).expect("first batch");
        assert!(outbox.is_in_flight());
        assert_eq!(outbox.take_batch(1000), None, "no second batch while the first is in flight");
        outbox.on_success();
        let second = outbox.take_batch(1000).expect("the rest, once the first is acknowledged");
        assert_eq!((numbers(&first), numbers(&second)), (vec![1, 2, 3], vec![4, 5]));
        outbox.on_success();
        let counters = outbox.counters();
        assert_eq!((counters.captured, counters.sent, counters.buffered_events, counters.buffered_bytes), (5, 5, 0, 0));
        assert_eq!(outbox.take_batch(10_000), None, "empty");
    }

    #[test]
    fn a_failed_batch_is_kept_and_resent_after_the_backoff() {
        let mut outbox = outbox_with(3, 0);
        let first = outbox.take_batch(0).expect("full batch");
        let delay = outbox.on_failure(0, 0);
        assert_eq!(delay, 100, "first failure: 200 ms ceiling, jitter 0 → half of it");
        assert_eq!(outbox.take_batch(99), None, "still backing off");
        let retry = outbox.take_batch(100).expect("retried after the backoff");
        assert_eq!(retry.body, first.body, "the same events, in the same order");
        assert!(retry.is_retry);
        assert_eq!(outbox.counters().retried, 3);
        outbox.on_success();
        assert_eq!(outbox.counters().sent, 3);
        assert_eq!(outbox.counters().buffered_events, 0);
    }

    #[test]
    fn a_retry_does_not_wait_for_a_full_batch() {
        let mut outbox = outbox_with(1, 0);
        outbox.take_batch(100).expect("due by age");
        outbox.on_failure(100, 0);
        assert!(outbox.take_batch(200).is_some(), "a single event is retried as soon as the backoff ends");
    }

    #[test]
    fn backoff_doubles_is_capped_and_resets_after_success() {
        let mut outbox = outbox_with(3, 0);
        let mut fixed_halves = Vec::new();
        let mut now = 0;
        for _ in 0..5 {
            outbox.take_batch(now).expect("due");
            // With zero jitter the delay is the fixed half of the ceiling.
            fixed_halves.push(outbox.on_failure(now, 0));
            now += 10_000;
        }
        assert_eq!(fixed_halves, [100, 200, 400, 500, 500], "ceilings doubling from 200 ms, capped at 1000 ms");
        outbox.take_batch(now).expect("due");
        outbox.on_success();
        outbox.push(event(9), now);
        outbox.take_batch(now + 100).expect("due by age");
        assert_eq!(outbox.on_failure(now, 0), 100, "a success resets the backoff");
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_ceiling() {
        let mut seen = std::collections::BTreeSet::new();
        for random in [0, 1, 57, 100, 101, 12_345, u64::MAX] {
            let mut outbox = outbox_with(3, 0);
            outbox.take_batch(0).expect("due");
            let delay = outbox.on_failure(0, random);
            assert!((100..=200).contains(&delay), "delay {delay} for random {random}");
            seen.insert(delay);
        }
        assert!(seen.contains(&100) && seen.contains(&200), "both ends are reachable: {seen:?}");
    }

    #[test]
    fn backoff_survives_very_many_failures() {
        let mut outbox = outbox_with(3, 0);
        for attempt in 0..200u64 {
            outbox.take_batch(attempt * 10_000).expect("due");
            let delay = outbox.on_failure(attempt * 10_000, attempt);
            assert!(delay <= 1000, "attempt {attempt}: delay {delay}");
        }
    }

    #[test]
    fn overflow_drops_the_oldest_events_and_counts_them() {
        let mut outbox = outbox_with(6, 10);
        assert_eq!(outbox.push(event(7), 20), PushOutcome::QueuedDroppingOldest(1));
        assert_eq!(outbox.push(event(8), 30), PushOutcome::QueuedDroppingOldest(1));
        let counters = outbox.counters();
        assert_eq!((counters.dropped, counters.first_drop_ms, counters.last_drop_ms), (2, Some(20), Some(30)));
        assert_eq!(counters.buffered_events, 6, "bounded by buffer.maxEvents");
        assert_eq!(numbers(&outbox.take_batch(1000).expect("due")), [3, 4, 5], "events 1 and 2 were dropped");
    }

    #[test]
    fn overflow_by_bytes_drops_as_many_old_events_as_needed() {
        let mut outbox = Outbox::new(OutboxLimits { buffer_max_bytes: 20, batch_max_bytes: 20, ..limits() });
        outbox.push(event(1), 0); // 7
        outbox.push(event(2), 0); // 14
        assert_eq!(outbox.push(event(12_345_678), 0), PushOutcome::QueuedDroppingOldest(2), "14 bytes over → both go");
        assert_eq!(outbox.counters().buffered_bytes, 14);
    }

    #[test]
    fn overflow_never_drops_the_batch_on_the_wire() {
        let mut outbox = outbox_with(6, 0);
        let in_flight = outbox.take_batch(0).expect("due");
        outbox.push(event(7), 0);
        outbox.on_success();
        assert_eq!(outbox.counters().sent, 3, "the in-flight events were sent, not dropped");
        assert_eq!(numbers(&in_flight), [1, 2, 3]);
        assert_eq!(numbers(&outbox.take_batch(1000).expect("due")), [5, 6, 7], "event 4 was the oldest not in flight");
    }

    #[test]
    fn overflow_while_backing_off_drops_the_failed_batch_first() {
        let mut outbox = outbox_with(6, 0);
        outbox.take_batch(0).expect("due");
        outbox.on_failure(0, 0);
        outbox.push(event(7), 1);
        outbox.push(event(8), 1);
        let retry = outbox.take_batch(10_000).expect("retry due");
        assert_eq!(numbers(&retry), [3, 4, 5], "the oldest (1, 2) were dropped while waiting");
        assert_eq!(outbox.counters().dropped, 2);
    }

    #[test]
    fn an_event_the_collector_would_refuse_is_dropped_not_queued() {
        let mut outbox = Outbox::new(limits());
        let huge = vec![b'x'; MAX_EVENT_BYTES + 1];
        assert_eq!(outbox.push(huge, 5), PushOutcome::TooLarge);
        let counters = outbox.counters();
        assert_eq!((counters.captured, counters.dropped, counters.buffered_events), (1, 1, 0));
        assert_eq!(counters.first_drop_ms, Some(5));
    }

    #[test]
    fn answers_without_a_batch_in_flight_change_nothing() {
        let mut outbox = outbox_with(1, 0);
        outbox.on_success();
        assert_eq!(outbox.counters().sent, 0, "a stray success sends nothing");
        assert_eq!(outbox.counters().buffered_events, 1);
    }
}
