//! Per worker: how captured events reach the collector, driven by the proxy's events and
//! nothing else. The glue forwards `on_log` to [`Delivery::on_captured`], the root's tick
//! to [`Delivery::on_tick`] and each answer to [`Delivery::on_answer`]; in fail-closed mode
//! `on_http_request_headers` asks [`Delivery::refusal`] first. Every effect goes through
//! [`DeliveryHost`], so the whole sequence (answer → outbox → next flush) is tested natively.
//!
//! On each tick, and right after each acknowledged or rejected batch (so throughput is not
//! one batch per tick), the next due batch is POSTed to the collector cluster. Only calls
//! made from the root context get their answer back; what an answer means is [`Answer`]'s
//! decision, what then happens to the batch the [`Outbox`]'s. The outbox knows which call
//! carries its batch, so an answer to any other call is ignored.
//!
//! The worker is a *sender* with a random id: every captured event gets the next number
//! ([`Delivery::sender_seq`]), and every call (batch, gap record or heartbeat) carries the
//! sender's report (events captured so far). The sender announces itself when it starts
//! ([`Delivery::on_start`]: a heartbeat from `on_configure`, before the worker can have
//! answered a request), and the host holds the requests that reach it before the collector
//! answered that ([`Delivery::holds_for_announcement`], at most `collector.timeoutMs`), so the collector knows of every worker before it can hold an
//! answered request's event, and can record one that falls silent even if it never
//! delivered anything. From then on, when nothing was sent for a flush interval, the tick
//! sends a heartbeat: an empty batch with the report, answered like a batch (one call on the
//! wire at a time), idle or not. So the collector hears from every live sender at least
//! every `heartbeat_ms` and can tell when one stops.
//!
//! When Envoy shuts the worker down (`on_done`), [`Delivery::on_done`] sends everything it
//! holds at once, each call with the final report (`stopping`: its count is final), then
//! delivers until drained (for as long as Envoy keeps it) and tells the host when it is
//! done. A sender whose final count the collector has all of is recorded as finished, not
//! as fallen silent.

mod host;

#[cfg(test)]
mod fake_host;
#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::fmt::Display;
use std::time::Duration;

use log::Level;

use audit_event::timestamp::format_rfc3339_millis;

pub use host::{CollectorCall, DeliveryHost, Snapshot};

use crate::config::{CollectorConfig, FilterConfig};
use crate::worker::answer::Answer;
use crate::worker::failure_policy::{admit, refusal_body, Admission, FailureMode, FailurePolicyConfig, TrailHealth};
use crate::worker::outbox::{add_sender_report, Outbox, OutboxLimits, PushOutcome, Rejection};
use audit_event::{SenderReport, SenderSeq};

/// Ticks drive flushes and retries; a flush interval shorter than this is honoured.
const MAX_TICK_MS: u64 = 100;
const MIN_TICK_MS: u64 = 10;
/// How much of a refusing collector's answer goes into the log.
pub const LOGGED_BODY_BYTES: usize = 256;
/// How long a worker being shut down while Envoy runs on (its plugin removed or
/// reconfigured) goes on delivering what it holds before it lets Envoy delete it.
pub const SHUTDOWN_GRACE_MS: u64 = 30_000;

/// Where a worker being shut down stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Nothing left to deliver: the host may delete the worker now.
    Finished,
    /// Still delivering; [`DeliveryHost::finish_shutdown`] is called once it is done.
    Delivering,
}

/// The delivery state of one worker, shared by its root context (which sends) and its
/// HTTP contexts (which capture and refuse). A VM is single-threaded; the outbox is borrowed
/// only for the length of one decision, never across a host call.
pub struct Delivery {
    collector: CollectorConfig,
    /// `Bearer <ingest token>`, built once.
    authorization: String,
    failure_policy: FailurePolicyConfig,
    flush_interval_ms: u64,
    outbox: RefCell<Outbox>,
    /// Requests refused by the fail-closed policy.
    refused: Cell<u64>,
    /// Whether the current run of drops was announced in the log.
    dropping_announced: Cell<bool>,
    /// This worker's sender id (22 characters of base64url, random per VM start).
    sender_id: String,
    /// The report interval the sender promises: a flush interval plus one tick.
    heartbeat_ms: u64,
    /// When the last call carrying a report went out (ms); None before the announcement.
    last_report_ms: Cell<Option<u64>>,
    /// When the worker started ([`Delivery::on_start`]), if the host said so.
    started_ms: Cell<Option<u64>>,
    /// Whether the collector has acknowledged a call of this sender (its announcement or
    /// any later one): from then on it knows the sender.
    known: Cell<bool>,
    /// Whether any call of this sender was answered or failed: the announcement is settled,
    /// acknowledged or not.
    announcement_settled: Cell<bool>,
    /// When the host started shutting the worker down (`on_done`), if it did.
    stopping_since: Cell<Option<u64>>,
    /// Whether the host was told the worker is done.
    finished: Cell<bool>,
}

impl Delivery {
    /// `sender_id`: 16 random bytes as base64url, chosen when the worker starts.
    pub fn new(config: &FilterConfig, ingest_token: &str, sender_id: String) -> Delivery {
        let tick_ms = config.batch.flush_interval_ms.clamp(MIN_TICK_MS, MAX_TICK_MS);
        let mut outbox = Outbox::new(OutboxLimits::from_config(config));
        outbox.set_sender_id(sender_id.clone());
        Delivery {
            collector: config.collector.clone(),
            authorization: format!("Bearer {}", ingest_token.trim()),
            failure_policy: config.failure_policy.clone(),
            flush_interval_ms: config.batch.flush_interval_ms,
            outbox: RefCell::new(outbox),
            refused: Cell::new(0),
            dropping_announced: Cell::new(false),
            heartbeat_ms: config.batch.flush_interval_ms + tick_ms,
            sender_id,
            last_report_ms: Cell::new(None),
            started_ms: Cell::new(None),
            known: Cell::new(false),
            announcement_settled: Cell::new(false),
            stopping_since: Cell::new(None),
            finished: Cell::new(false),
        }
    }

    /// The sender and number of the event being captured: call it just before the event
    /// is handed to [`Delivery::on_captured`], which takes the number.
    pub fn sender_seq(&self) -> Option<SenderSeq> {
        let seq = self.outbox.try_borrow().ok()?.next_seq();
        Some(SenderSeq { id: self.sender_id.clone(), seq })
    }

    fn sender_report(&self, now_ms: u64) -> Option<SenderReport> {
        let captured = self.outbox.try_borrow().ok()?.counters().captured;
        Some(SenderReport {
            id: self.sender_id.clone(),
            captured,
            at: rfc3339(now_ms),
            heartbeat_ms: self.heartbeat_ms,
            stopping: self.stopping_since.get().is_some(),
        })
    }

    /// The worker has started (`on_configure`): announces the sender to the collector at
    /// once, before the worker can answer a request, with a heartbeat that counts nothing.
    /// Should the host refuse the call (no such cluster), that is a failed attempt like any
    /// other: logged as an error, no request held for it (availability first), and the
    /// announcement sent again by the first tick after its backoff (`retry.initialBackoffMs`,
    /// half to all of it, growing with each failure).
    pub fn on_start(&self, host: &mut impl DeliveryHost, now_ms: u64) {
        self.started_ms.set(Some(now_ms));
        self.heartbeat(host, now_ms);
    }

    /// Before a request goes on to the service: true while it should wait, because the
    /// collector has not yet answered this worker's announcement (at most
    /// `collector.timeoutMs` after the start, as long as any call may wait for its answer).
    /// So no request is answered by a worker the collector does not know, unless the
    /// collector could not be reached or refused the announcement: then the requests go on
    /// (availability first, as in fail-open; fail-closed refuses mutations by itself). The
    /// host pauses such a request and resumes it once [`Delivery::releases_held`] says so.
    /// The clock is read only while the announcement is unanswered: once it is, asking
    /// costs a request no host call (the wasm host's clock is one).
    pub fn holds_for_announcement(&self, now_ms: impl FnOnce() -> u64) -> bool {
        let waiting = !self.known.get() && !self.announcement_settled.get();
        waiting && self.started_ms.get().is_some_and(|started| now_ms() < started + self.collector.timeout_ms)
    }

    /// After an answer or a tick: true when the requests held for the announcement may go on.
    pub fn releases_held(&self, now_ms: u64) -> bool {
        !self.holds_for_announcement(|| now_ms)
    }

    /// How often the root should tick: often enough for the flush interval, but not busier
    /// than every 10 ms.
    pub fn tick_period(&self) -> Duration {
        Duration::from_millis(self.flush_interval_ms.clamp(MIN_TICK_MS, MAX_TICK_MS))
    }

    /// One captured event, serialized (or the reason it could not be): buffered, or dropped
    /// and counted so the next gap record reports it.
    pub fn on_captured(
        &self,
        host: &mut impl DeliveryHost,
        uuid: &str,
        serialized: Result<Vec<u8>, impl Display>,
        now_ms: u64,
    ) {
        let Ok(mut outbox) = self.outbox.try_borrow_mut() else {
            host.log(Level::Error, &format!("audit-filter: outbox busy, event {uuid} lost"));
            return;
        };
        match serialized {
            Err(err) => {
                host.log(
                    Level::Error,
                    &format!("audit-filter: could not serialize event {uuid}: {err}; counted as dropped"),
                );
                outbox.count_lost(now_ms);
            }
            Ok(json) => {
                if outbox.push(json, now_ms) == PushOutcome::TooLarge {
                    host.log(
                        Level::Warn,
                        &format!(
                            "audit-filter: event {uuid} is larger than the collector accepts; dropped and counted"
                        ),
                    );
                }
            }
        }
    }

    /// Fail-closed: refuses the request being handled (a local 503) when the policy does
    /// not let it through while the trail cannot be written. Returns what was done:
    /// `Refuse` only when the refusal was sent; a request that could not be refused is
    /// forwarded (and logged).
    pub fn refusal(&self, host: &mut impl DeliveryHost) -> Admission {
        if self.failure_policy.mode == FailureMode::Open {
            return Admission::Forward;
        }
        let Some(method) = host.request_method() else { return Admission::Forward };
        let health = match self.outbox.try_borrow() {
            Ok(outbox) => TrailHealth { delivery_failing: outbox.is_delivery_failing(), buffer_fill: outbox.fill() },
            Err(_) => return Admission::Forward,
        };
        let Admission::Refuse(refusal) = admit(&self.failure_policy, &method, health) else {
            return Admission::Forward;
        };
        let body = refusal_body(refusal, &method);
        let headers = [("content-type", "application/json"), ("x-audit-sidecar-refused", refusal.code())];
        if let Err(status) = host.send_local_reply(503, &headers, &body) {
            host.log(
                Level::Error,
                &format!("audit-filter: could not refuse a {method} request ({status}); it is forwarded"),
            );
            return Admission::Forward;
        }
        self.refused.set(self.refused.get() + 1);
        Admission::Refuse(refusal)
    }

    /// The root's tick: send a due batch (if none is on the wire), say once that events
    /// are being dropped, publish the metrics.
    pub fn on_tick(&self, host: &mut impl DeliveryHost, now_ms: u64) {
        self.flush(host, now_ms);
        self.heartbeat(host, now_ms);
        self.announce_drops(host);
        self.publish(host);
        self.finish_when_drained(host, now_ms);
    }

    /// The host is shutting the worker down (Envoy calls the root's `on_done`). On SIGTERM
    /// and on a hot restart's end Envoy exits a few milliseconds later and answers nothing,
    /// and a new `vm_config` destroys the VM at once; when a new plugin configuration
    /// replaces this one, Envoy runs on and keeps the worker while it reports
    /// [`Shutdown::Delivering`]. So: send copies of everything buffered at
    /// once (those on the wire too, in as many calls as it takes; each call carries the
    /// final report, an empty one when nothing is buffered), then go on delivering as
    /// usual until the outbox is drained or [`SHUTDOWN_GRACE_MS`] has passed. The
    /// collector stores each uuid once; what never arrives, it records as lost.
    pub fn on_done(&self, host: &mut impl DeliveryHost, now_ms: u64) -> Shutdown {
        self.stopping_since.set(Some(now_ms));
        let Ok(mut outbox) = self.outbox.try_borrow_mut() else { return Shutdown::Finished };
        outbox.start_draining();
        let (copies, buffered) = (outbox.copies_of_everything(), outbox.counters().buffered_events);
        drop(outbox);
        let report = self.sender_report(now_ms);
        let calls = copies.len();
        for mut body in copies {
            if let Some(report) = &report {
                add_sender_report(&mut body, report);
            }
            if let Err(status) = host.dispatch(self.collector_call(&body)) {
                host.log(Level::Error, &format!("audit-filter: shutting down: dispatch failed ({status})"));
            }
        }
        self.last_report_ms.set(Some(now_ms));
        self.publish(host);
        if self.outbox.try_borrow().is_ok_and(|outbox| outbox.is_drained()) {
            self.finished.set(true);
            return Shutdown::Finished;
        }
        host.log(
            Level::Info,
            &format!(
                "audit-filter: shutting down with {buffered} events buffered: sent in {calls} calls; delivering \
                 until acknowledged, for at most {SHUTDOWN_GRACE_MS} ms should Envoy run on"
            ),
        );
        Shutdown::Delivering
    }

    /// After [`Delivery::on_done`]: tells the host the worker is done once the outbox is
    /// drained, or when the grace has passed (saying what is left; the collector records
    /// it as lost when the sender falls silent).
    fn finish_when_drained(&self, host: &mut impl DeliveryHost, now_ms: u64) {
        let Some(since) = self.stopping_since.get() else { return };
        if self.finished.get() {
            return;
        }
        let Ok(outbox) = self.outbox.try_borrow() else { return };
        let (drained, left) = (outbox.is_drained(), outbox.counters().buffered_events);
        drop(outbox);
        if drained {
            host.log(Level::Info, "audit-filter: shut down with everything delivered");
        } else if now_ms.saturating_sub(since) >= SHUTDOWN_GRACE_MS {
            host.log(
                Level::Error,
                &format!(
                    "audit-filter: shut down after {SHUTDOWN_GRACE_MS} ms with {left} events not acknowledged; \
                     the collector records what it did not store when this sender falls silent"
                ),
            );
        } else {
            return;
        }
        self.finished.set(true);
        if let Err(status) = host.finish_shutdown() {
            host.log(Level::Error, &format!("audit-filter: could not tell Envoy the worker is done ({status})"));
        }
    }

    /// The answer to call `token`: `status` is None when the call was reset or timed out
    /// (no headers). An answer to a call that does not carry the batch in flight is ignored.
    pub fn on_answer(&self, host: &mut impl DeliveryHost, token: u32, status: Option<u16>, now_ms: u64) {
        if !self.outbox.try_borrow().is_ok_and(|outbox| outbox.awaits_answer(token)) {
            return;
        }
        self.announcement_settled.set(true);
        match Answer::of_status(status) {
            Answer::Acknowledged => {
                self.known.set(true);
                let reported = self.outbox.try_borrow_mut().ok().and_then(|mut outbox| outbox.on_success());
                if let Some(gap) = reported {
                    self.dropping_announced.set(false);
                    host.log(
                        Level::Warn,
                        &format!(
                            "audit-filter: delivery resumed; a gap record in the trail says {} events were dropped \
                             between {} and {}",
                            gap.lost_events,
                            rfc3339(gap.first_lost_ms),
                            rfc3339(gap.last_lost_ms)
                        ),
                    );
                }
                self.flush(host, now_ms);
            }
            Answer::Transient => {
                let answer = match status {
                    Some(code) => format!("status {code}: {}", host.answer_body()),
                    None => "no response (reset)".to_string(),
                };
                self.fail(host, &answer, false, now_ms);
            }
            Answer::Misconfigured => {
                let answer = format!(
                    "status {}: {}; the collector refuses this filter's requests: check the ingest token \
                     (`collector.ingestTokenEnv`), `collector.path` and `collector.cluster`; events are kept and retried",
                    status.unwrap_or(0),
                    host.answer_body()
                );
                self.fail(host, &answer, true, now_ms);
            }
            Answer::Rejected => {
                let body = host.answer_body();
                self.reject(host, status.unwrap_or(0), &body, now_ms);
                self.flush(host, now_ms);
            }
        }
        self.publish(host);
        self.finish_when_drained(host, now_ms);
    }

    /// Sends the next due batch, if any and none is on the wire.
    fn flush(&self, host: &mut impl DeliveryHost, now_ms: u64) {
        let batch = self
            .outbox
            .try_borrow_mut()
            .ok()
            .and_then(|mut outbox| outbox.take_batch(now_ms, || host.random_event_id()));
        let Some(mut batch) = batch else { return };
        if let Some(report) = self.sender_report(now_ms) {
            add_sender_report(&mut batch.body, &report);
        }
        let collector = &self.collector;
        match host.dispatch(self.collector_call(&batch.body)) {
            Ok(token) => {
                if let Ok(mut outbox) = self.outbox.try_borrow_mut() {
                    outbox.on_dispatched(token);
                }
                self.last_report_ms.set(Some(now_ms));
                match (batch.gap, batch.is_retry) {
                    (Some(gap), _) => host.log(
                        Level::Info,
                        &format!("audit-filter: sending a gap record ({} events dropped)", gap.lost_events),
                    ),
                    (None, true) => {
                        host.log(Level::Info, &format!("audit-filter: retrying a batch of {} events", batch.events))
                    }
                    (None, false) => {}
                }
            }
            Err(status) => {
                let reason = format!("dispatch to cluster `{}` failed: {status}", collector.cluster);
                self.fail(host, &reason, true, now_ms);
            }
        }
    }

    /// A POST of `body` to the collector's ingest path: batches and heartbeats alike.
    fn collector_call<'a>(&'a self, body: &'a [u8]) -> CollectorCall<'a> {
        let collector = &self.collector;
        CollectorCall {
            cluster: &collector.cluster,
            headers: vec![
                (":method", "POST"),
                (":path", collector.path.as_str()),
                (":authority", collector.authority.as_str()),
                ("content-type", "application/json"),
                ("authorization", self.authorization.as_str()),
            ],
            body,
            timeout: Duration::from_millis(collector.timeout_ms),
        }
    }

    /// Tells the collector this sender is alive and how many events it has captured: the
    /// announcement, then whenever nothing carried a report for a flush interval, idle or
    /// not (a sender the collector knows must keep reporting, or it is recorded as stopped).
    fn heartbeat(&self, host: &mut impl DeliveryHost, now_ms: u64) {
        let due = self.last_report_ms.get().is_none_or(|last| now_ms.saturating_sub(last) >= self.flush_interval_ms);
        if !due {
            return;
        }
        let Some(report) = self.sender_report(now_ms) else { return };
        let Some(mut body) = self.outbox.try_borrow_mut().ok().and_then(|mut outbox| outbox.take_heartbeat(now_ms))
        else {
            return;
        };
        add_sender_report(&mut body, &report);
        let collector = &self.collector;
        match host.dispatch(self.collector_call(&body)) {
            Ok(token) => {
                if let Ok(mut outbox) = self.outbox.try_borrow_mut() {
                    outbox.on_dispatched(token);
                }
                self.last_report_ms.set(Some(now_ms));
            }
            Err(status) => {
                let reason = format!("heartbeat to cluster `{}` failed: {status}", collector.cluster);
                self.fail(host, &reason, true, now_ms);
            }
        }
    }

    /// A failed attempt: the batch is kept and retried after a backoff. A configuration
    /// problem is logged as an error on every attempt, since only an operator can fix it.
    fn fail(&self, host: &mut impl DeliveryHost, reason: &str, is_configuration_problem: bool, now_ms: u64) {
        self.announcement_settled.set(true);
        let random = host.random_u64();
        let Ok(mut outbox) = self.outbox.try_borrow_mut() else { return };
        let delay_ms = outbox.on_failure(now_ms, random);
        let counters = outbox.counters();
        drop(outbox);
        let message = format!(
            "audit-filter: batch not delivered ({reason}); retrying in {delay_ms} ms; \
             {} events ({} bytes) buffered, {} sent, {} dropped so far",
            counters.buffered_events, counters.buffered_bytes, counters.sent, counters.dropped
        );
        host.log(if is_configuration_problem { Level::Error } else { Level::Warn }, &message);
    }

    /// The collector will never accept the batch as it is: narrow it down, and drop (and
    /// count) only the events it refuses on their own.
    fn reject(&self, host: &mut impl DeliveryHost, status: u16, body: &str, now_ms: u64) {
        let Some(rejection) = self.outbox.try_borrow_mut().ok().map(|mut outbox| outbox.on_rejected(now_ms)) else {
            return;
        };
        let message = match rejection {
            Rejection::Narrowing { batch_events, next_batch_events } => format!(
                "audit-filter: the collector rejected a batch of {batch_events} events (status {status}: {body}); \
                 resending at most {next_batch_events} per batch to find the events it refuses"
            ),
            Rejection::EventDropped => format!(
                "audit-filter: the collector rejected an event (status {status}: {body}); it is dropped, \
                 counted in `dropped` and `rejected`, and reported in the next gap record"
            ),
            Rejection::GapRecordDropped(gap) => format!(
                "audit-filter: the collector rejected a gap record (status {status}: {body}); the trail will \
                 not show that {} events were dropped between {} and {} (still counted in `dropped`)",
                gap.lost_events,
                rfc3339(gap.first_lost_ms),
                rfc3339(gap.last_lost_ms)
            ),
            Rejection::Nothing => return,
        };
        host.log(Level::Error, &message);
    }

    fn announce_drops(&self, host: &mut impl DeliveryHost) {
        let Some(unreported) = self.outbox.try_borrow().ok().map(|outbox| outbox.unreported_gap()) else { return };
        if unreported > 0 && !self.dropping_announced.get() {
            self.dropping_announced.set(true);
            host.log(
                Level::Warn,
                &format!(
                    "audit-filter: events are being dropped ({unreported} so far: buffer full or refused by the \
                     collector); a gap record is sent to the trail when delivery resumes"
                ),
            );
        }
    }

    /// Publishes the worker's totals. A worker being shut down no longer counts in the
    /// buffered and failing gauges: Envoy may destroy its VM right after `on_done` (a new
    /// `vm_config`) with no chance to take its share back, and a gauge left at its last
    /// value would hold `envoy-drain` until its deadline. What it never delivers, the
    /// collector records.
    fn publish(&self, host: &mut impl DeliveryHost) {
        let stopping = self.stopping_since.get().is_some();
        let Some(snapshot) = self.outbox.try_borrow().ok().map(|outbox| {
            let mut counters = outbox.counters();
            if stopping {
                (counters.buffered_events, counters.buffered_bytes) = (0, 0);
            }
            Snapshot {
                outbox: counters,
                delivery_failing: !stopping && outbox.is_delivery_failing(),
                refused: self.refused.get(),
            }
        }) else {
            return;
        };
        host.publish(snapshot);
    }
}

/// Milliseconds since the epoch, as the trail writes times.
fn rfc3339(ms: u64) -> String {
    format_rfc3339_millis(i64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000))
}
