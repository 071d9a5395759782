//! The root context, one per worker VM: reads the configuration, and delivers the
//! worker's events. On each tick, and right after each acknowledged batch (so throughput
//! is not one batch per tick), it asks the outbox for a due batch and POSTs it to the
//! collector cluster. Only calls made from the root context get their answer back; what
//! an answer means is [`Answer`]'s decision, what then happens to the batch the outbox's.

use std::rc::Rc;
use std::time::Duration;

use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MapType};

use audit_event::timestamp::format_rfc3339_millis;

use super::http::AuditHttp;
use super::metrics::{Metrics, Snapshot};
use super::now_ms;
use super::worker::{random_event_id, random_u64, Worker};
use crate::answer::Answer;
use crate::outbox::{Batch, Rejection};

/// Ticks drive flushes and retries; a flush interval shorter than this is honoured.
const MAX_TICK_MS: u64 = 100;
const MIN_TICK_MS: u64 = 10;
/// How much of a refusing collector's answer goes into the log.
const LOGGED_BODY_BYTES: usize = 256;

#[derive(Default)]
pub struct AuditRoot {
    worker: Option<Rc<Worker>>,
    /// The token of the batch on the wire; answers to any other token are ignored.
    in_flight: Option<u32>,
    metrics: Metrics,
    /// Whether the current run of drops was announced in the log.
    dropping_announced: bool,
}

impl Context for AuditRoot {
    fn on_http_call_response(&mut self, token_id: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        if self.in_flight != Some(token_id) {
            return;
        }
        self.in_flight = None;
        let Some(worker) = self.worker.clone() else { return };
        let status = response_status();
        match Answer::of_status(status) {
            Answer::Acknowledged => {
                let reported = worker.outbox.try_borrow_mut().ok().and_then(|mut outbox| outbox.on_success());
                if let Some(gap) = reported {
                    self.dropping_announced = false;
                    warn!(
                        "audit-filter: delivery resumed; a gap record in the trail says {} events were dropped \
                         between {} and {}",
                        gap.lost_events,
                        rfc3339(gap.first_lost_ms),
                        rfc3339(gap.last_lost_ms)
                    );
                }
                self.flush(&worker);
            }
            Answer::Transient => {
                let answer = match status {
                    Some(code) => format!("status {code}: {}", response_body(body_size)),
                    None => "no response (reset)".to_string(),
                };
                self.fail(&worker, &answer, false);
            }
            Answer::Misconfigured => {
                let answer = format!(
                    "status {}: {}; the collector refuses this filter's requests: check the ingest token \
                     (`collector.ingestTokenEnv`), `collector.path` and `collector.cluster`; events are kept and retried",
                    status.unwrap_or(0),
                    response_body(body_size)
                );
                self.fail(&worker, &answer, true);
            }
            Answer::Rejected => {
                self.reject(&worker, status.unwrap_or(0), &response_body(body_size));
                self.flush(&worker);
            }
        }
        self.publish(&worker);
    }
}

impl RootContext for AuditRoot {
    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let configuration = match plugin_configuration_size {
            0 => Vec::new(),
            _ => hostcalls::get_buffer(BufferType::PluginConfiguration, 0, plugin_configuration_size)
                .ok()
                .flatten()
                .unwrap_or_default(),
        };
        let worker = match Worker::configure(&configuration) {
            Ok(worker) => worker,
            Err(err) => {
                error!("audit-filter: invalid plugin configuration: {err}");
                return false;
            }
        };
        let tick_ms = worker.config.batch.flush_interval_ms.clamp(MIN_TICK_MS, MAX_TICK_MS);
        if let Err(status) = hostcalls::set_tick_period(Duration::from_millis(tick_ms)) {
            error!("audit-filter: could not set the tick period ({status:?}); events would never be sent");
            return false;
        }
        self.metrics = Metrics::define();
        self.worker = Some(Rc::new(worker));
        true
    }

    fn on_tick(&mut self) {
        let Some(worker) = self.worker.clone() else { return };
        if self.in_flight.is_none() {
            self.flush(&worker);
        }
        self.announce_drops(&worker);
        self.publish(&worker);
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(AuditHttp { worker: self.worker.clone(), stripped_headers: Vec::new() }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

impl AuditRoot {
    /// Sends the next due batch, if any and none is on the wire.
    fn flush(&mut self, worker: &Worker) {
        if self.in_flight.is_some() {
            return;
        }
        // The outbox borrow ends before the host call, in case an answer comes back inline.
        let batch: Option<Batch> =
            worker.outbox.try_borrow_mut().ok().and_then(|mut outbox| outbox.take_batch(now_ms(), random_event_id));
        let Some(batch) = batch else { return };
        let collector = &worker.config.collector;
        let headers = vec![
            (":method", "POST"),
            (":path", collector.path.as_str()),
            (":authority", collector.authority.as_str()),
            ("content-type", "application/json"),
            ("authorization", worker.authorization.as_str()),
        ];
        let timeout = Duration::from_millis(collector.timeout_ms);
        match hostcalls::dispatch_http_call(&collector.cluster, headers, Some(&batch.body), vec![], timeout) {
            Ok(token) => {
                self.in_flight = Some(token);
                match (batch.gap, batch.is_retry) {
                    (Some(gap), _) => info!("audit-filter: sending a gap record ({} events dropped)", gap.lost_events),
                    (None, true) => info!("audit-filter: retrying a batch of {} events", batch.events),
                    (None, false) => {}
                }
            }
            Err(status) => {
                let reason = format!("dispatch to cluster `{}` failed: {status:?}", collector.cluster);
                self.fail(worker, &reason, true);
            }
        }
    }

    /// A failed attempt: the batch is kept and retried after a backoff. A configuration
    /// problem is logged as an error on every attempt, since only an operator can fix it.
    fn fail(&mut self, worker: &Worker, reason: &str, is_configuration_problem: bool) {
        let Ok(mut outbox) = worker.outbox.try_borrow_mut() else { return };
        let delay_ms = outbox.on_failure(now_ms(), random_u64());
        let counters = outbox.counters();
        let message = format!(
            "audit-filter: batch not delivered ({reason}); retrying in {delay_ms} ms; \
             {} events ({} bytes) buffered, {} sent, {} dropped so far",
            counters.buffered_events, counters.buffered_bytes, counters.sent, counters.dropped
        );
        if is_configuration_problem {
            error!("{message}");
        } else {
            warn!("{message}");
        }
    }

    /// The collector will never accept the batch as it is: narrow it down, and drop (and
    /// count) only the events it refuses on their own.
    fn reject(&mut self, worker: &Worker, status: u16, body: &str) {
        let Ok(mut outbox) = worker.outbox.try_borrow_mut() else { return };
        match outbox.on_rejected(now_ms()) {
            Rejection::Narrowing { batch_events, next_batch_events } => error!(
                "audit-filter: the collector rejected a batch of {batch_events} events (status {status}: {body}); \
                 resending at most {next_batch_events} per batch to find the events it refuses"
            ),
            Rejection::EventDropped => error!(
                "audit-filter: the collector rejected an event (status {status}: {body}); it is dropped, \
                 counted in `dropped` and `rejected`, and reported in the next gap record"
            ),
            Rejection::GapRecordDropped(gap) => error!(
                "audit-filter: the collector rejected a gap record (status {status}: {body}); the trail will \
                 not show that {} events were dropped between {} and {} (still counted in `dropped`)",
                gap.lost_events,
                rfc3339(gap.first_lost_ms),
                rfc3339(gap.last_lost_ms)
            ),
            Rejection::Nothing => {}
        }
    }

    fn announce_drops(&mut self, worker: &Worker) {
        let Ok(outbox) = worker.outbox.try_borrow() else { return };
        let unreported = outbox.unreported_gap();
        if unreported > 0 && !self.dropping_announced {
            self.dropping_announced = true;
            warn!(
                "audit-filter: events are being dropped ({unreported} so far: buffer full or refused by the \
                 collector); a gap record is sent to the trail when delivery resumes"
            );
        }
    }

    fn publish(&mut self, worker: &Worker) {
        if let Ok(outbox) = worker.outbox.try_borrow() {
            self.metrics.publish(Snapshot {
                outbox: outbox.counters(),
                delivery_failing: outbox.is_delivery_failing(),
                refused: worker.refused.get(),
            });
        }
    }
}

/// The `:status` of the answer; None when the call was reset (no headers).
fn response_status() -> Option<u16> {
    let value = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status").ok()??;
    std::str::from_utf8(&value).ok()?.trim().parse().ok()
}

/// Milliseconds since the epoch, as the trail writes times.
fn rfc3339(ms: u64) -> String {
    format_rfc3339_millis(i64::try_from(ms).unwrap_or(0).saturating_mul(1_000_000))
}

fn response_body(body_size: usize) -> String {
    let bytes = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size.min(LOGGED_BODY_BYTES))
        .ok()
        .flatten()
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}
