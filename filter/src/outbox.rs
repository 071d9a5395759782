//! The per-worker delivery buffer: serialized events go in, `{"events":[...]}` batch
//! bodies come out, one batch in flight at a time so the trail keeps its order.
//!
//! Pure policy: time is passed in (milliseconds), and so is the randomness (backoff
//! jitter, the uuid of a gap record), so every decision is tested natively.
//! [`crate::delivery`] calls [`Outbox::push`] for each captured event,
//! [`Outbox::take_batch`] on tick and after each answer, names the call that carries the
//! batch with [`Outbox::on_dispatched`], and reports its answer with
//! [`Outbox::on_success`], [`Outbox::on_failure`] or [`Outbox::on_rejected`].
//!
//! Bounded in events and bytes: overflow drops the oldest events that are not on the wire,
//! and counts them. Nothing is lost silently: the drops not yet reported form a
//! [`GapWindow`], and once delivery works again (the last attempt succeeded) the outbox
//! sends a [`DELIVERY_GAP_TYPE`] event saying how many events are missing and when they
//! were dropped. That record is frozen when first sent (same uuid, same count on every
//! retry), so it is stored once; drops after it go into the next record. The window is
//! cleared only when the collector acknowledges the record.

use std::collections::VecDeque;

use audit_event::event::MAX_EVENT_BYTES;
use audit_event::event_uuid::encode_event_uuid;
use audit_event::timestamp::format_rfc3339_millis;
use audit_event::{AuditEvent, DeliveryGap, RequestPayload, DELIVERY_GAP_TYPE};

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
/// Always `captured = sent + dropped + buffered_events`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounters {
    /// Events pushed.
    pub captured: u64,
    /// Events the collector acknowledged (gap records not included).
    pub sent: u64,
    /// Events put on the wire again after a failed attempt.
    pub retried: u64,
    /// Events dropped: buffer overflow, an event larger than the collector accepts, or an
    /// event the collector rejected.
    pub dropped: u64,
    /// The part of `dropped` that the collector rejected (400, 413, 422).
    pub rejected: u64,
    /// Gap records the collector acknowledged.
    pub gap_records: u64,
    /// Bytes of serialized events held (queued and in flight).
    pub buffered_bytes: usize,
    /// Events held (queued and in flight).
    pub buffered_events: usize,
}

/// Dropped events the trail does not know about yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GapWindow {
    pub lost_events: u64,
    /// When the first and the last of them were dropped (ms since the epoch).
    pub first_lost_ms: u64,
    pub last_lost_ms: u64,
}

/// A batch ready to be sent: the request body and how many events it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub body: Vec<u8>,
    /// Captured events in the body (0 for a gap record).
    pub events: usize,
    /// True when this body, or some of its events, was on the wire before and failed.
    pub is_retry: bool,
    /// Set when the body is a gap record (and nothing else).
    pub gap: Option<GapWindow>,
}

/// How a push went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Queued,
    /// Queued, and older events were dropped (and counted) to make room.
    QueuedDroppingOldest,
    /// Refused: one event larger than the collector accepts would block the queue forever.
    TooLarge,
}

/// What the outbox did about a batch the collector rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// The batch held several events: the next attempts carry at most `next_batch_events`
    /// of them, to find the ones the collector refuses without dropping the others.
    Narrowing { batch_events: usize, next_batch_events: usize },
    /// A single event was refused: it is dropped, counted, and part of the next gap record.
    EventDropped,
    /// The gap record itself was refused; it cannot be delivered, so it is given up
    /// (the events stay counted in `dropped`).
    GapRecordDropped(GapWindow),
    /// There was no batch in flight.
    Nothing,
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

/// The batch handed out and not answered yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InFlight {
    carries: Carried,
    /// The host's token for the call that carries it; None until it is dispatched.
    token: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carried {
    /// The first this many events of the queue.
    Events(usize),
    /// The frozen gap record.
    GapRecord,
}

/// A gap record as it goes on the wire, built once so every retry sends the same bytes.
#[derive(Debug)]
struct GapRecord {
    window: GapWindow,
    json: Vec<u8>,
}

impl GapRecord {
    fn build(window: GapWindow, now_ms: u64, uuid: [u8; 16]) -> Option<GapRecord> {
        let millis_as_nanos = |ms: u64| i64::try_from(ms).unwrap_or(i64::MAX / 1_000_000).saturating_mul(1_000_000);
        let event = AuditEvent {
            uuid: encode_event_uuid(uuid),
            timestamp: format_rfc3339_millis(millis_as_nanos(now_ms)),
            event_type: DELIVERY_GAP_TYPE.to_string(),
            db_user_id: None,
            user_email: None,
            payload: RequestPayload::default(),
            user_id: None,
            user_name: None,
            identity_source: None,
            token_fingerprint: None,
            response: None,
            gap: Some(DeliveryGap {
                lost_events: window.lost_events,
                first_lost_at: format_rfc3339_millis(millis_as_nanos(window.first_lost_ms)),
                last_lost_at: format_rfc3339_millis(millis_as_nanos(window.last_lost_ms)),
            }),
            untrusted_identity: Vec::new(),
            truncated_fields: Vec::new(),
            alerts: Vec::new(),
        };
        let json = serde_json::to_vec(&event).ok()?;
        Some(GapRecord { window, json })
    }
}

/// The buffer and batching policy of one worker.
#[derive(Debug)]
pub struct Outbox {
    limits: OutboxLimits,
    /// Oldest first; with `Carried::Events(n)` in flight the first `n` events are on the wire.
    queue: VecDeque<QueuedEvent>,
    in_flight: Option<InFlight>,
    backoff: Option<Backoff>,
    /// After a rejection: at most this many events per batch until one is acknowledged.
    narrowed_batch_events: Option<usize>,
    /// Drops not yet in any gap record.
    open_gap: Option<GapWindow>,
    /// The gap record being delivered (sent before any further event batch).
    frozen_gap: Option<GapRecord>,
    counters: OutboxCounters,
}

impl Outbox {
    pub fn new(limits: OutboxLimits) -> Self {
        Self {
            limits,
            queue: VecDeque::new(),
            in_flight: None,
            backoff: None,
            narrowed_batch_events: None,
            open_gap: None,
            frozen_gap: None,
            counters: OutboxCounters::default(),
        }
    }

    pub fn counters(&self) -> OutboxCounters {
        self.counters
    }

    /// The batch just taken went on the wire as the host call `token`: its answer will
    /// carry that token.
    pub fn on_dispatched(&mut self, token: u32) {
        if let Some(in_flight) = &mut self.in_flight {
            in_flight.token = Some(token);
        }
    }

    /// True when `token` is the call carrying the batch in flight; an answer to any other
    /// call (stale, or never ours) must not touch the outbox.
    pub fn awaits_answer(&self, token: u32) -> bool {
        self.in_flight.is_some_and(|in_flight| in_flight.token == Some(token))
    }

    /// True when the last delivery attempt failed and none has succeeded since: the trail
    /// cannot be written right now.
    pub fn is_delivery_failing(&self) -> bool {
        self.backoff.is_some()
    }

    /// How full the buffer is, from 0 to 1: the larger of the event and byte fractions.
    pub fn fill(&self) -> f64 {
        let fraction = |held: usize, max: usize| if max == 0 { 1.0 } else { held as f64 / max as f64 };
        fraction(self.counters.buffered_events, self.limits.buffer_max_events)
            .max(fraction(self.counters.buffered_bytes, self.limits.buffer_max_bytes))
    }

    /// Drops not yet reported to the collector (open and frozen gap records together).
    pub fn unreported_gap(&self) -> u64 {
        self.open_gap.map_or(0, |gap| gap.lost_events)
            + self.frozen_gap.as_ref().map_or(0, |gap| gap.window.lost_events)
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

        let protected = self.events_in_flight();
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
        PushOutcome::QueuedDroppingOldest
    }

    /// Counts a captured event that could not be buffered at all (it could not be
    /// serialized), so it is reported in the next gap record like any other drop.
    pub fn count_lost(&mut self, now_ms: u64) {
        self.counters.captured += 1;
        self.record_drops(1, now_ms);
    }

    /// The next batch, if one is due and none is in flight. A pending gap record goes
    /// first, as soon as delivery works (no backoff running); events go when the queue
    /// holds a full batch (events or bytes), when the oldest event has waited a flush
    /// interval, when a failed batch's backoff has passed, or while narrowing down a
    /// rejection. `new_uuid` is called only when a gap record is built.
    pub fn take_batch(&mut self, now_ms: u64, new_uuid: impl FnOnce() -> [u8; 16]) -> Option<Batch> {
        if self.in_flight.is_some() {
            return None;
        }
        let is_retry = match self.backoff {
            Some(backoff) if now_ms < backoff.retry_at_ms => return None,
            Some(_) => true,
            None => false,
        };
        // While the collector fails, retries of the oldest events come first; the record
        // of what was lost follows the first success.
        if self.frozen_gap.is_none() && (!is_retry || self.queue.is_empty()) {
            if let Some(window) = self.open_gap {
                self.frozen_gap = GapRecord::build(window, now_ms, new_uuid());
                if self.frozen_gap.is_some() {
                    self.open_gap = None;
                }
            }
        }
        if let Some(record) = &self.frozen_gap {
            let mut body = Vec::with_capacity(BATCH_PREFIX.len() + record.json.len() + BATCH_SUFFIX.len());
            body.extend_from_slice(BATCH_PREFIX);
            body.extend_from_slice(&record.json);
            body.extend_from_slice(BATCH_SUFFIX);
            self.in_flight = Some(InFlight { carries: Carried::GapRecord, token: None });
            return Some(Batch { body, events: 0, is_retry, gap: Some(record.window) });
        }
        if self.queue.is_empty() {
            return None;
        }
        let narrowing = self.narrowed_batch_events.is_some();
        if !is_retry && !narrowing && !self.is_batch_due(now_ms) {
            return None;
        }
        let batch = self.assemble_batch(is_retry);
        self.in_flight = Some(InFlight { carries: Carried::Events(batch.events), token: None });
        if is_retry {
            self.counters.retried += batch.events as u64;
        }
        Some(batch)
    }

    /// The collector committed the batch in flight: forget it. Returns the gap the
    /// acknowledged batch reported, if it was a gap record.
    pub fn on_success(&mut self) -> Option<GapWindow> {
        let acknowledged = self.in_flight.take()?;
        self.backoff = None;
        match acknowledged.carries {
            Carried::Events(count) => {
                self.release_front(count);
                self.counters.sent += count as u64;
                self.narrowed_batch_events = None;
                None
            }
            Carried::GapRecord => {
                let record = self.frozen_gap.take()?;
                self.counters.gap_records += 1;
                Some(record.window)
            }
        }
    }

    /// The batch in flight failed: keep its events and retry after an exponential backoff
    /// (doubling from `initialBackoffMs`, capped at `maxBackoffMs`) with "equal jitter":
    /// half the delay is fixed, half is random, so workers that failed together spread out.
    /// Returns the delay chosen, in ms.
    pub fn on_failure(&mut self, now_ms: u64, random: u64) -> u64 {
        self.in_flight = None;
        let failures = self.backoff.map_or(0, |backoff| backoff.failures).saturating_add(1);
        let exponential =
            self.limits.initial_backoff_ms.saturating_mul(1u64.checked_shl(failures - 1).unwrap_or(u64::MAX));
        let ceiling = exponential.min(self.limits.max_backoff_ms);
        let fixed = ceiling / 2;
        let delay = fixed + random % (ceiling - fixed + 1);
        self.backoff = Some(Backoff { failures, retry_at_ms: now_ms.saturating_add(delay) });
        delay
    }

    /// The collector will never accept the batch in flight as it is (400, 413, 422). The
    /// collector is reachable, so there is no backoff. A batch of several events is split
    /// (halved per rejection) until the refused events are alone in their batch; a lone
    /// refused event is dropped and counted, so it shows in the next gap record.
    pub fn on_rejected(&mut self, now_ms: u64) -> Rejection {
        let Some(rejected) = self.in_flight.take() else { return Rejection::Nothing };
        self.backoff = None;
        match rejected.carries {
            Carried::GapRecord => match self.frozen_gap.take() {
                Some(record) => Rejection::GapRecordDropped(record.window),
                None => Rejection::Nothing,
            },
            Carried::Events(count) if count > 1 => {
                let next = count.div_ceil(2);
                self.narrowed_batch_events = Some(next);
                Rejection::Narrowing { batch_events: count, next_batch_events: next }
            }
            Carried::Events(count) => {
                self.release_front(count);
                self.counters.rejected += count as u64;
                self.record_drops(count, now_ms);
                self.narrowed_batch_events = None;
                Rejection::EventDropped
            }
        }
    }

    fn events_in_flight(&self) -> usize {
        match self.in_flight.map(|in_flight| in_flight.carries) {
            Some(Carried::Events(count)) => count,
            _ => 0,
        }
    }

    fn release_front(&mut self, count: usize) {
        for event in self.queue.drain(..count.min(self.queue.len())) {
            self.counters.buffered_bytes -= event.json.len();
            self.counters.buffered_events -= 1;
        }
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
        let max_events = self
            .narrowed_batch_events
            .map_or(self.limits.batch_max_events, |narrowed| narrowed.min(self.limits.batch_max_events));
        let mut body = Vec::with_capacity(self.limits.batch_max_bytes.min(self.counters.buffered_bytes + 16));
        body.extend_from_slice(BATCH_PREFIX);
        let mut events = 0;
        for event in self.queue.iter().take(max_events) {
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
        Batch { body, events, is_retry, gap: None }
    }

    fn record_drops(&mut self, count: usize, now_ms: u64) {
        self.counters.dropped += count as u64;
        let gap =
            self.open_gap.get_or_insert(GapWindow { lost_events: 0, first_lost_ms: now_ms, last_lost_ms: now_ms });
        gap.lost_events += count as u64;
        gap.last_lost_ms = now_ms;
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

    /// The uuid source for gap records in tests: always the same bytes.
    fn uuid() -> [u8; 16] {
        [7; 16]
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
        assert_eq!(outbox.take_batch(99, uuid), None, "2 events, 99 ms old: not due");
        let batch = outbox.take_batch(100, uuid).expect("due once the oldest event is 100 ms old");
        assert_eq!(numbers(&batch), [1, 2]);
    }

    #[test]
    fn a_full_batch_is_due_at_once_and_carries_at_most_max_events() {
        let mut outbox = outbox_with(5, 0);
        let batch = outbox.take_batch(0, uuid).expect("5 events ≥ batch.maxEvents 3");
        assert_eq!(numbers(&batch), [1, 2, 3]);
        assert_eq!(batch.events, 3);
        assert!(!batch.is_retry);
    }

    #[test]
    fn a_batch_is_due_when_its_bytes_reach_max_bytes_and_never_exceeds_them() {
        let mut outbox = Outbox::new(OutboxLimits { batch_max_bytes: 30, batch_max_events: 100, ..limits() });
        outbox.push(event(1), 0); // 7 bytes
        outbox.push(event(22), 0); // 8 bytes
        assert_eq!(outbox.take_batch(0, uuid), None, "15 bytes < 30");
        outbox.push(event(333), 0); // 9 bytes
        outbox.push(event(4444), 0); // 10 bytes: 34 buffered
        let batch = outbox.take_batch(0, uuid).expect("34 bytes ≥ 30");
        assert!(batch.body.len() <= 30, "body of {} bytes exceeds batch.maxBytes", batch.body.len());
        assert_eq!(numbers(&batch), [1, 22]);
    }

    #[test]
    fn an_event_larger_than_max_bytes_still_goes_out_alone() {
        let mut outbox = Outbox::new(OutboxLimits { batch_max_bytes: 5, buffer_max_bytes: 10_000, ..limits() });
        outbox.push(event(123_456), 0);
        let batch = outbox.take_batch(0, uuid).expect("due: bytes ≥ maxBytes");
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
        let batch = outbox.take_batch(1000, uuid).expect("due");
        let parsed: IngestBatch = serde_json::from_slice(&batch.body).expect("the body is an IngestBatch");
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.events[0].uuid, "16WlpdLpDMzfMYxLTZYXYw");
    }

    #[test]
    fn only_one_batch_is_in_flight_and_success_releases_the_next_in_order() {
        let mut outbox = outbox_with(5, 0);
        let first = outbox.take_batch(0, uuid).expect("first batch");
        outbox.on_dispatched(7);
        assert!(outbox.awaits_answer(7), "the batch is on the wire as call 7");
        assert!(!outbox.awaits_answer(6), "an answer to another call is not for this batch");
        assert_eq!(outbox.take_batch(1000, uuid), None, "no second batch while the first is in flight");
        outbox.on_success();
        let second = outbox.take_batch(1000, uuid).expect("the rest, once the first is acknowledged");
        assert_eq!((numbers(&first), numbers(&second)), (vec![1, 2, 3], vec![4, 5]));
        outbox.on_success();
        let counters = outbox.counters();
        assert_eq!((counters.captured, counters.sent, counters.buffered_events, counters.buffered_bytes), (5, 5, 0, 0));
        assert_eq!(outbox.take_batch(10_000, uuid), None, "empty");
    }

    #[test]
    fn a_failed_batch_is_kept_and_resent_after_the_backoff() {
        let mut outbox = outbox_with(3, 0);
        let first = outbox.take_batch(0, uuid).expect("full batch");
        let delay = outbox.on_failure(0, 0);
        assert_eq!(delay, 100, "first failure: 200 ms ceiling, jitter 0 → half of it");
        assert_eq!(outbox.take_batch(99, uuid), None, "still backing off");
        let retry = outbox.take_batch(100, uuid).expect("retried after the backoff");
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
        outbox.take_batch(100, uuid).expect("due by age");
        outbox.on_failure(100, 0);
        assert!(outbox.take_batch(200, uuid).is_some(), "a single event is retried as soon as the backoff ends");
    }

    #[test]
    fn backoff_doubles_is_capped_and_resets_after_success() {
        let mut outbox = outbox_with(3, 0);
        let mut fixed_halves = Vec::new();
        let mut now = 0;
        for _ in 0..5 {
            outbox.take_batch(now, uuid).expect("due");
            // With zero jitter the delay is the fixed half of the ceiling.
            fixed_halves.push(outbox.on_failure(now, 0));
            now += 10_000;
        }
        assert_eq!(fixed_halves, [100, 200, 400, 500, 500], "ceilings doubling from 200 ms, capped at 1000 ms");
        outbox.take_batch(now, uuid).expect("due");
        outbox.on_success();
        outbox.push(event(9), now);
        outbox.take_batch(now + 100, uuid).expect("due by age");
        assert_eq!(outbox.on_failure(now, 0), 100, "a success resets the backoff");
    }

    #[test]
    fn jitter_stays_between_half_and_all_of_the_ceiling() {
        let mut seen = std::collections::BTreeSet::new();
        for random in [0, 1, 57, 100, 101, 12_345, u64::MAX] {
            let mut outbox = outbox_with(3, 0);
            outbox.take_batch(0, uuid).expect("due");
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
            outbox.take_batch(attempt * 10_000, uuid).expect("due");
            let delay = outbox.on_failure(attempt * 10_000, attempt);
            assert!(delay <= 1000, "attempt {attempt}: delay {delay}");
        }
    }

    #[test]
    fn overflow_drops_the_oldest_events_and_counts_them() {
        let mut outbox = outbox_with(6, 10);
        assert_eq!(outbox.push(event(7), 20), PushOutcome::QueuedDroppingOldest);
        assert_eq!(outbox.counters().dropped, 1);
        assert_eq!(outbox.push(event(8), 30), PushOutcome::QueuedDroppingOldest);
        let counters = outbox.counters();
        assert_eq!(counters.dropped, 2);
        assert_eq!(counters.buffered_events, 6, "bounded by buffer.maxEvents");
        let gap = outbox.take_batch(1000, uuid).expect("the gap record goes first");
        assert_eq!(gap.gap, Some(GapWindow { lost_events: 2, first_lost_ms: 20, last_lost_ms: 30 }));
        outbox.on_success();
        assert_eq!(numbers(&outbox.take_batch(1000, uuid).expect("due")), [3, 4, 5], "events 1 and 2 were dropped");
    }

    #[test]
    fn overflow_by_bytes_drops_as_many_old_events_as_needed() {
        let mut outbox = Outbox::new(OutboxLimits { buffer_max_bytes: 20, batch_max_bytes: 20, ..limits() });
        outbox.push(event(1), 0); // 7
        outbox.push(event(2), 0); // 14
        assert_eq!(outbox.push(event(12_345_678), 0), PushOutcome::QueuedDroppingOldest);
        assert_eq!(outbox.counters().dropped, 2, "14 bytes over → both go");
        assert_eq!(outbox.counters().buffered_bytes, 14);
    }

    #[test]
    fn overflow_never_drops_the_batch_on_the_wire() {
        let mut outbox = outbox_with(6, 0);
        let in_flight = outbox.take_batch(0, uuid).expect("due");
        outbox.push(event(7), 0);
        outbox.on_success();
        assert_eq!(outbox.counters().sent, 3, "the in-flight events were sent, not dropped");
        assert_eq!(numbers(&in_flight), [1, 2, 3]);
        assert!(outbox.take_batch(1000, uuid).expect("gap record").gap.is_some());
        outbox.on_success();
        assert_eq!(
            numbers(&outbox.take_batch(1000, uuid).expect("due")),
            [5, 6, 7],
            "event 4 was the oldest not in flight"
        );
    }

    #[test]
    fn overflow_while_backing_off_drops_the_failed_batch_first() {
        let mut outbox = outbox_with(6, 0);
        outbox.take_batch(0, uuid).expect("due");
        outbox.on_failure(0, 0);
        outbox.push(event(7), 1);
        outbox.push(event(8), 1);
        let retry = outbox.take_batch(10_000, uuid).expect("retry due");
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
        let gap = outbox.take_batch(5, uuid).expect("the drop is reported");
        assert_eq!(gap.gap, Some(GapWindow { lost_events: 1, first_lost_ms: 5, last_lost_ms: 5 }));
    }

    #[test]
    fn an_event_that_could_not_be_serialized_is_counted_and_reported_as_a_gap() {
        let mut outbox = Outbox::new(limits());
        outbox.count_lost(9);
        let counters = outbox.counters();
        assert_eq!((counters.captured, counters.dropped, counters.buffered_events), (1, 1, 0));
        let gap = outbox.take_batch(9, uuid).expect("the loss is reported");
        assert_eq!(gap.gap, Some(GapWindow { lost_events: 1, first_lost_ms: 9, last_lost_ms: 9 }));
    }

    #[test]
    fn answers_without_a_batch_in_flight_change_nothing() {
        let mut outbox = outbox_with(1, 0);
        outbox.on_success();
        assert_eq!(outbox.counters().sent, 0, "a stray success sends nothing");
        assert_eq!(outbox.counters().buffered_events, 1);
    }

    /// The gap record a batch body carries, if it is one.
    fn gap_record(batch: &Batch) -> audit_event::AuditEvent {
        let parsed: IngestBatch = serde_json::from_slice(&batch.body).expect("the body is an IngestBatch");
        assert_eq!(parsed.events.len(), 1, "a gap record travels alone");
        parsed.events.into_iter().next().expect("one event")
    }

    /// An outbox whose buffer overflowed by `lost` events (at 1000 + n ms) while its first
    /// batch kept failing: the collector is down.
    fn outbox_after_outage(lost: u32) -> Outbox {
        let mut outbox = outbox_with(6, 0);
        outbox.take_batch(0, uuid).expect("due");
        outbox.on_failure(0, 0);
        for n in 0..lost {
            outbox.push(event(100 + n), 1000 + u64::from(n));
        }
        outbox
    }

    #[test]
    fn after_drops_the_first_success_is_followed_by_a_gap_record() {
        let mut outbox = outbox_after_outage(4);
        let retry = outbox.take_batch(10_000, uuid).expect("retry due");
        assert!(retry.gap.is_none(), "while delivery fails, the oldest events are retried first");
        assert_eq!(outbox.unreported_gap(), 4);
        outbox.on_success();
        let batch = outbox.take_batch(10_000, uuid).expect("the gap record is due at once");
        let record = gap_record(&batch);
        assert_eq!(record.event_type, DELIVERY_GAP_TYPE);
        assert_eq!(record.validate(), Ok(()), "the collector accepts it");
        assert_eq!(record.uuid, encode_event_uuid(uuid()), "a fresh uuid from the source passed in");
        assert_eq!(record.timestamp, "1970-01-01T00:00:10.000+00:00", "timestamp = now");
        let gap = record.gap.expect("the gap");
        assert_eq!(
            (gap.lost_events, gap.first_lost_at.as_str(), gap.last_lost_at.as_str()),
            (4, "1970-01-01T00:00:01.000+00:00", "1970-01-01T00:00:01.003+00:00")
        );
        assert_eq!(outbox.on_success(), Some(GapWindow { lost_events: 4, first_lost_ms: 1000, last_lost_ms: 1003 }));
        assert_eq!((outbox.unreported_gap(), outbox.counters().gap_records), (0, 1));
        let next = outbox.take_batch(10_000, uuid).expect("then the events");
        assert!(next.gap.is_none());
        outbox.on_success();
        assert!(outbox.take_batch(10_000, uuid).is_none_or(|batch| batch.gap.is_none()), "reported once");
    }

    #[test]
    fn a_failed_gap_record_is_resent_unchanged_and_later_drops_go_into_the_next_one() {
        let mut outbox = outbox_after_outage(2);
        outbox.take_batch(10_000, uuid).expect("retry");
        outbox.on_success();
        let first = outbox.take_batch(10_000, uuid).expect("gap record");
        outbox.on_failure(10_000, 0);
        for n in 0..6 {
            outbox.push(event(200 + n), 20_000); // 3 queued + 6 into a buffer of 6: 3 dropped
        }
        let mut other_uuid_called = false;
        let resent = outbox
            .take_batch(30_000, || {
                other_uuid_called = true;
                [9; 16]
            })
            .expect("gap record retry");
        assert_eq!(resent.body, first.body, "same uuid, same count: stored once even if the first try was committed");
        assert!(!other_uuid_called, "no new record while one is on its way");
        assert_eq!(outbox.unreported_gap(), 5, "2 in the frozen record + 3 since");
        assert_eq!(outbox.on_success().map(|gap| gap.lost_events), Some(2));
        let second = outbox.take_batch(30_000, || [9; 16]).expect("the later drops get their own record");
        let record = gap_record(&second);
        assert_eq!(record.gap.map(|gap| gap.lost_events), Some(3));
        assert_eq!(record.uuid, encode_event_uuid([9; 16]));
        outbox.on_success();
        let counters = outbox.counters();
        assert_eq!(
            (counters.dropped, counters.gap_records, outbox.unreported_gap()),
            (5, 2, 0),
            "every dropped event is in exactly one acknowledged gap record"
        );
    }

    #[test]
    fn drops_without_any_failure_are_reported_at_the_next_send() {
        let mut outbox = outbox_with(6, 0);
        outbox.take_batch(0, uuid).expect("a full batch goes on the wire");
        assert_eq!(outbox.push(event(7), 2), PushOutcome::QueuedDroppingOldest);
        assert_eq!(outbox.counters().dropped, 1, "a slow collector: event 4 goes");
        outbox.on_success();
        assert_eq!(outbox.take_batch(2, uuid).and_then(|batch| batch.gap).map(|gap| gap.lost_events), Some(1));
    }

    #[test]
    fn counters_always_add_up() {
        let mut outbox = outbox_after_outage(9);
        let mut now = 10_000;
        while let Some(batch) = outbox.take_batch(now, uuid) {
            if batch.events == 2 {
                outbox.on_rejected(now);
            } else {
                outbox.on_success();
            }
            now += 1;
            let c = outbox.counters();
            assert_eq!(c.captured, c.sent + c.dropped + c.buffered_events as u64, "{c:?}");
        }
        assert_eq!(outbox.unreported_gap(), 0);
    }

    #[test]
    fn a_rejected_batch_is_narrowed_down_to_the_events_the_collector_refuses() {
        let mut outbox = Outbox::new(OutboxLimits { batch_max_events: 8, buffer_max_events: 100, ..limits() });
        for n in 1..=8 {
            outbox.push(event(n), 0);
        }
        let refuses = |batch: &Batch| numbers(batch).contains(&5);
        let mut sent = Vec::new();
        let mut now = 0;
        while let Some(batch) = outbox.take_batch(now, uuid) {
            if batch.gap.is_some() {
                outbox.on_success();
            } else if refuses(&batch) {
                outbox.on_rejected(now);
            } else {
                sent.extend(numbers(&batch));
                outbox.on_success();
            }
            now += 1000;
            assert!(now < 100_000, "narrowing must end");
        }
        assert_eq!(sent, [1, 2, 3, 4, 6, 7, 8], "only the refused event is missing, the order is kept");
        let counters = outbox.counters();
        assert_eq!((counters.dropped, counters.rejected, counters.gap_records), (1, 1, 1), "and it is in a gap record");
        assert!(!outbox.is_delivery_failing(), "a rejection is an answer, not an outage");
    }

    #[test]
    fn the_halving_goes_to_a_single_event_and_drops_only_it() {
        let mut outbox = outbox_with(3, 0);
        outbox.take_batch(0, uuid).expect("due");
        assert_eq!(outbox.on_rejected(0), Rejection::Narrowing { batch_events: 3, next_batch_events: 2 });
        assert_eq!(numbers(&outbox.take_batch(0, uuid).expect("at once, no backoff")), [1, 2]);
        assert_eq!(outbox.on_rejected(0), Rejection::Narrowing { batch_events: 2, next_batch_events: 1 });
        assert_eq!(numbers(&outbox.take_batch(0, uuid).expect("at once")), [1]);
        assert_eq!(outbox.on_rejected(7), Rejection::EventDropped);
        assert_eq!(outbox.counters().buffered_events, 2);
        let gap = outbox.take_batch(7, uuid).expect("the gap record first");
        assert_eq!(gap.gap, Some(GapWindow { lost_events: 1, first_lost_ms: 7, last_lost_ms: 7 }));
    }

    #[test]
    fn a_rejected_gap_record_is_given_up_but_stays_counted() {
        let mut outbox = outbox_with(1, 0);
        outbox.push(vec![b'x'; MAX_EVENT_BYTES + 1], 3);
        outbox.take_batch(3, uuid).expect("gap record");
        assert_eq!(
            outbox.on_rejected(4),
            Rejection::GapRecordDropped(GapWindow { lost_events: 1, first_lost_ms: 3, last_lost_ms: 3 })
        );
        assert_eq!(outbox.counters().dropped, 1);
        assert_eq!(outbox.unreported_gap(), 0, "not resent forever");
        assert!(outbox.take_batch(1000, uuid).is_some_and(|batch| batch.gap.is_none()), "the events go on");
    }

    #[test]
    fn delivery_failing_and_fill_describe_the_trail() {
        let mut outbox = outbox_with(3, 0);
        assert!((outbox.fill() - 0.5).abs() < 1e-9, "3 of 6 events");
        assert!(!outbox.is_delivery_failing());
        outbox.take_batch(0, uuid).expect("due");
        outbox.on_failure(0, 0);
        assert!(outbox.is_delivery_failing(), "the last attempt failed");
        outbox.take_batch(10_000, uuid).expect("retry");
        assert!(outbox.is_delivery_failing(), "still, while the retry is on the wire");
        outbox.on_success();
        assert!(!outbox.is_delivery_failing());
        let bytes_bound = Outbox::new(OutboxLimits { buffer_max_bytes: 14, batch_max_bytes: 14, ..limits() });
        let mut bytes_bound = bytes_bound;
        bytes_bound.push(event(1), 0);
        assert!((bytes_bound.fill() - 0.5).abs() < 1e-9, "7 of 14 bytes is fuller than 1 of 6 events");
    }
}
