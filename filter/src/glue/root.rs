//! The root context, one per worker VM: reads the configuration, and delivers the
//! worker's events. On each tick, and right after each acknowledged batch (so throughput
//! is not one batch per tick), it asks the outbox for a due batch and POSTs it to the
//! collector cluster. Only calls made from the root context get their answer back.

use std::rc::Rc;
use std::time::Duration;

use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MapType};

use super::http::AuditHttp;
use super::metrics::Metrics;
use super::worker::{random_u64, Worker};
use super::now_ms;
use crate::outbox::Batch;

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
    /// Drops already reported in the log, and whether the current run of drops was.
    drops_logged: u64,
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
        let acknowledged = status.is_some_and(|code| (200..300).contains(&code));
        if acknowledged {
            if let Ok(mut outbox) = worker.outbox.try_borrow_mut() {
                outbox.on_success();
            }
            self.log_resumed_after_drops(&worker);
            self.flush(&worker);
        } else {
            let answer = match status {
                Some(code) => format!("status {code}: {}", response_body(body_size)),
                None => "no response (reset)".to_string(),
            };
            self.fail(&worker, &answer);
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
        Some(Box::new(AuditHttp { worker: self.worker.clone() }))
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
        let batch: Option<Batch> = worker.outbox.try_borrow_mut().ok().and_then(|mut outbox| outbox.take_batch(now_ms()));
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
                if batch.is_retry {
                    info!("audit-filter: retrying a batch of {} events", batch.events);
                }
            }
            Err(status) => {
                let reason = format!("dispatch to cluster `{}` failed: {status:?}", collector.cluster);
                self.fail(worker, &reason);
            }
        }
    }

    fn fail(&mut self, worker: &Worker, reason: &str) {
        let Ok(mut outbox) = worker.outbox.try_borrow_mut() else { return };
        let delay_ms = outbox.on_failure(now_ms(), random_u64());
        let counters = outbox.counters();
        warn!(
            "audit-filter: batch not delivered ({reason}); retrying in {delay_ms} ms; \
             {} events ({} bytes) buffered, {} sent, {} dropped so far",
            counters.buffered_events, counters.buffered_bytes, counters.sent, counters.dropped
        );
    }

    fn announce_drops(&mut self, worker: &Worker) {
        let Ok(outbox) = worker.outbox.try_borrow() else { return };
        let counters = outbox.counters();
        if counters.dropped > self.drops_logged && !self.dropping_announced {
            self.dropping_announced = true;
            warn!(
                "audit-filter: buffer full, dropping the oldest events ({} so far); \
                 the gap is reported when delivery resumes",
                counters.dropped - self.drops_logged
            );
        }
    }

    fn log_resumed_after_drops(&mut self, worker: &Worker) {
        let Ok(outbox) = worker.outbox.try_borrow() else { return };
        let counters = outbox.counters();
        if counters.dropped > self.drops_logged {
            warn!(
                "audit-filter: delivery resumed; gap: {} events dropped between {} and {} (ms since epoch)",
                counters.dropped - self.drops_logged,
                counters.first_drop_ms.unwrap_or(0),
                counters.last_drop_ms.unwrap_or(0)
            );
            self.drops_logged = counters.dropped;
            self.dropping_announced = false;
        }
    }

    fn publish(&mut self, worker: &Worker) {
        if let Ok(outbox) = worker.outbox.try_borrow() {
            self.metrics.publish(outbox.counters());
        }
    }
}

/// The `:status` of the answer; None when the call was reset (no headers).
fn response_status() -> Option<u16> {
    let value = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status").ok()??;
    std::str::from_utf8(&value).ok()?.trim().parse().ok()
}

fn response_body(body_size: usize) -> String {
    let bytes = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size.min(LOGGED_BODY_BYTES))
        .ok()
        .flatten()
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}
