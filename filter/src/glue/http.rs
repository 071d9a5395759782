//! The HTTP context: captures the request in `on_log` (after the response, so status and
//! duration are known, and also for requests Envoy answered itself) and hands the
//! serialized event to the worker's delivery. It never dispatches: a call made here never
//! sees its answer (the SDK drops the context after `on_log`), so delivery is the root's.
//!
//! In fail-closed mode it also asks delivery in `on_http_request_headers` whether to
//! refuse the request: a refused request is answered 503 and never reaches the service.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::host_view::HostRequest;
use super::proxy_host::ProxyHost;
use super::worker::{random_event_id, Worker};
use crate::capture::capture_event;
use crate::event_json::write_event;
use crate::failure_policy::Admission;

/// Bytes reserved for one serialized event; a larger one grows its buffer.
const EVENT_CAPACITY: usize = 1024;

pub struct AuditHttp {
    /// None only if the plugin was never configured; then nothing is captured.
    pub worker: Option<Rc<Worker>>,
}

impl Context for AuditHttp {}

impl HttpContext for AuditHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(worker) = &self.worker else { return Action::Continue };
        match worker.delivery.refusal(&mut ProxyHost { worker, answer_body_size: 0 }) {
            Admission::Forward => Action::Continue,
            Admission::Refuse(_) => Action::Pause,
        }
    }

    fn on_log(&mut self) {
        let Some(worker) = &self.worker else { return };
        let event = capture_event(
            &HostRequest,
            &worker.config,
            &worker.config.route_table,
            worker.fingerprint_key.as_ref(),
            random_event_id(),
        );
        // One allocation that fits a typical event (~800 bytes), kept by the outbox as is.
        let mut json = Vec::with_capacity(EVENT_CAPACITY);
        let serialized = write_event(&mut json, &event).map(|()| json);
        worker.delivery.on_captured(
            &mut ProxyHost { worker, answer_body_size: 0 },
            &event.uuid,
            serialized,
            super::now_ms(),
        );
    }
}
