//! The per-worker delivery buffer: serialized events go in, `{"events":[...]}` batch
//! bodies come out, one batch in flight at a time so the trail keeps its order.
//!
//! Pure policy: time is passed in (milliseconds), and so is the randomness (backoff
//! jitter, the uuid of a gap record), so every decision is tested natively.
//! [`crate::worker::delivery`] calls [`Outbox::push`] for each captured event,
//! [`Outbox::take_batch`] on tick and after each answer, names the call that carries the
//! batch with [`Outbox::on_dispatched`], and reports its answer with
//! [`Outbox::on_success`], [`Outbox::on_failure`] or [`Outbox::on_rejected`].
//!
//! Files: this one is the buffer and batching; [`envelope`] writes the batch body,
//! [`gap_record`] the record of dropped events, [`backoff`] the retry delays.
//!
//! Bounded in events and bytes: overflow drops the oldest events that are not on the wire,
//! and counts them. Nothing is lost silently: the drops not yet reported form a
//! [`GapWindow`], and once delivery works again (the last attempt succeeded) the outbox
//! sends a [`audit_event::DELIVERY_GAP_TYPE`] event saying how many events are missing and when they
//! were dropped. That record is frozen when first sent (same uuid, same count on every
//! retry), so it is stored once; drops after it go into the next record. The window is
//! cleared only when the collector acknowledges the record.

mod backoff;
mod envelope;
mod gap_record;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;

use audit_event::event::{MAX_EVENT_BYTES, MAX_GAP_RANGES};
use audit_event::SeqRange;

pub use envelope::add_sender_report;
pub use gap_record::GapWindow;

use crate::config::FilterConfig;
use backoff::Backoff;
use envelope::Envelope;
use gap_record::GapRecord;

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
    /// The sender's number of the event (its position in `captured`).
    seq: u64,
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
    /// A heartbeat: no events, only the sender's report.
    Heartbeat,
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
    /// The sender's numbers of those drops (at most `MAX_GAP_RANGES` ranges; the count
    /// covers the rest, and the collector records any number not named).
    open_gap_seqs: Vec<SeqRange>,
    /// The sender id the gap records name with their numbers; empty: none named.
    sender_id: String,
    /// The gap record being delivered (sent before any further event batch).
    frozen_gap: Option<GapRecord>,
    counters: OutboxCounters,
    /// Set when the worker is shutting down: every buffered event is due at once.
    draining: bool,
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
            open_gap_seqs: Vec::new(),
            sender_id: String::new(),
            frozen_gap: None,
            counters: OutboxCounters::default(),
            draining: false,
        }
    }

    /// Names this worker's sender id in its gap records, with the numbers they lost.
    pub fn set_sender_id(&mut self, sender_id: String) {
        self.sender_id = sender_id;
    }

    /// The number the next captured event gets: 1, 2, 3, ... as events are captured.
    pub fn next_seq(&self) -> u64 {
        self.counters.captured + 1
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
        let seq = self.counters.captured;
        if json.len() > MAX_EVENT_BYTES {
            self.record_drops(&[seq], now_ms);
            return PushOutcome::TooLarge;
        }
        self.counters.buffered_bytes += json.len();
        self.counters.buffered_events += 1;
        self.queue.push_back(QueuedEvent { json, pushed_at_ms: now_ms, seq });

        let protected = self.events_in_flight();
        let mut dropped = Vec::new();
        while self.over_bounds() && self.queue.len() > protected {
            if let Some(oldest) = self.queue.remove(protected) {
                self.counters.buffered_bytes -= oldest.json.len();
                self.counters.buffered_events -= 1;
                dropped.push(oldest.seq);
            }
        }
        if dropped.is_empty() {
            return PushOutcome::Queued;
        }
        self.record_drops(&dropped, now_ms);
        PushOutcome::QueuedDroppingOldest
    }

    /// Counts a captured event that could not be buffered at all (it could not be
    /// serialized), so it is reported in the next gap record like any other drop.
    pub fn count_lost(&mut self, now_ms: u64) {
        self.counters.captured += 1;
        self.record_drops(&[self.counters.captured], now_ms);
    }

    /// A heartbeat to send, when nothing is in flight and no backoff is running: the
    /// caller sends `{"events":[]}` with the sender's report and answers it like a batch.
    pub fn take_heartbeat(&mut self, now_ms: u64) -> Option<Vec<u8>> {
        if self.in_flight.is_some() || self.backoff.is_some_and(|backoff| !backoff.has_passed(now_ms)) {
            return None;
        }
        self.in_flight = Some(InFlight { carries: Carried::Heartbeat, token: None });
        Some(Envelope::with_capacity(0).finish())
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
            Some(backoff) if !backoff.has_passed(now_ms) => return None,
            Some(_) => true,
            None => false,
        };
        // While the collector fails, retries of the oldest events come first; the record
        // of what was lost follows the first success.
        if self.frozen_gap.is_none() && (!is_retry || self.queue.is_empty()) {
            if let Some(window) = self.open_gap {
                let seqs =
                    (!self.sender_id.is_empty()).then_some((self.sender_id.as_str(), self.open_gap_seqs.as_slice()));
                self.frozen_gap = GapRecord::build(window, seqs, now_ms, new_uuid());
                if self.frozen_gap.is_some() {
                    self.open_gap = None;
                    self.open_gap_seqs.clear();
                }
            }
        }
        if let Some(record) = &self.frozen_gap {
            let body = Envelope::of_one(&record.json);
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
            Carried::Heartbeat => None,
        }
    }

    /// The worker is shutting down: from now on every buffered event is due, whatever
    /// its age, so the outbox drains as fast as the collector acknowledges.
    pub fn start_draining(&mut self) {
        self.draining = true;
    }

    /// True when the outbox holds nothing to deliver: no event, no gap record (sent or
    /// not), no call on the wire.
    pub fn is_drained(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_none() && self.frozen_gap.is_none() && self.open_gap.is_none()
    }

    /// Bodies carrying everything the outbox holds: the gap record being delivered, then
    /// every buffered event (those on the wire too) in batches within `batch.maxEvents`
    /// and `batch.maxBytes`; one empty body when it holds no event. For a worker being shut
    /// down, sent at once without waiting for answers: Envoy may exit before any answer.
    /// The outbox is not changed: the tracked batches are still delivered and released as
    /// usual should the worker live on, and the collector stores each uuid once.
    pub fn copies_of_everything(&self) -> Vec<Vec<u8>> {
        let mut bodies: Vec<Vec<u8>> = self.frozen_gap.iter().map(|record| Envelope::of_one(&record.json)).collect();
        let mut envelope = Envelope::with_capacity(self.limits.batch_max_bytes.min(self.counters.buffered_bytes));
        for event in &self.queue {
            let full = envelope.events() >= self.limits.batch_max_events
                || envelope.size_with(&event.json) > self.limits.batch_max_bytes;
            if envelope.events() > 0 && full {
                bodies.push(std::mem::replace(&mut envelope, Envelope::with_capacity(0)).finish());
            }
            envelope.push(&event.json);
        }
        if envelope.events() > 0 || bodies.is_empty() {
            bodies.push(envelope.finish());
        }
        bodies
    }

    /// The batch in flight failed: keep its events and retry after an exponential backoff
    /// (doubling from `initialBackoffMs`, capped at `maxBackoffMs`) with "equal jitter":
    /// half the delay is fixed, half is random, so workers that failed together spread out.
    /// Returns the delay chosen, in ms.
    pub fn on_failure(&mut self, now_ms: u64, random: u64) -> u64 {
        self.in_flight = None;
        let delays = (self.limits.initial_backoff_ms, self.limits.max_backoff_ms);
        let backoff = Backoff::after_failure(self.backoff, delays, now_ms, random);
        self.backoff = Some(backoff);
        backoff.delay_ms
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
            Carried::Heartbeat => Rejection::Nothing,
            Carried::Events(count) if count > 1 => {
                let next = count.div_ceil(2);
                self.narrowed_batch_events = Some(next);
                Rejection::Narrowing { batch_events: count, next_batch_events: next }
            }
            Carried::Events(count) => {
                let refused: Vec<u64> = self.queue.iter().take(count).map(|event| event.seq).collect();
                self.release_front(count);
                self.counters.rejected += count as u64;
                self.record_drops(&refused, now_ms);
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
        self.draining
            || self.queue.len() >= self.limits.batch_max_events
            || self.counters.buffered_bytes >= self.limits.batch_max_bytes
            || oldest_waited
    }

    /// `{"events":[e1,e2,...]}` from the bytes serialized at capture: no re-parsing. At
    /// least one event, then as many as fit in `batch.maxEvents` and `batch.maxBytes`.
    fn assemble_batch(&self, is_retry: bool) -> Batch {
        let max_events = self
            .narrowed_batch_events
            .map_or(self.limits.batch_max_events, |narrowed| narrowed.min(self.limits.batch_max_events));
        let mut envelope = Envelope::with_capacity(self.limits.batch_max_bytes.min(self.counters.buffered_bytes));
        for event in self.queue.iter().take(max_events) {
            if envelope.events() > 0 && envelope.size_with(&event.json) > self.limits.batch_max_bytes {
                break;
            }
            envelope.push(&event.json);
        }
        let events = envelope.events();
        Batch { body: envelope.finish(), events, is_retry, gap: None }
    }

    fn record_drops(&mut self, seqs: &[u64], now_ms: u64) {
        let count = seqs.len() as u64;
        self.counters.dropped += count;
        let gap =
            self.open_gap.get_or_insert(GapWindow { lost_events: 0, first_lost_ms: now_ms, last_lost_ms: now_ms });
        gap.lost_events += count;
        gap.last_lost_ms = now_ms;
        for &seq in seqs {
            let named = self.open_gap_seqs.len();
            match self.open_gap_seqs.last_mut() {
                Some(range) if range.last + 1 == seq => range.last = seq,
                _ if named < MAX_GAP_RANGES => self.open_gap_seqs.push(SeqRange { first: seq, last: seq }),
                _ => {}
            }
        }
    }
}
