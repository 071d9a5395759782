//! The HTTP context: captures the request in `on_log` (after the response, so status and
//! duration are known, and also for requests Envoy answered itself) and hands the
//! serialized event to the worker's outbox. It never dispatches: a call made here never
//! sees its answer (the SDK drops the context after `on_log`), so delivery is the root's.

use std::rc::Rc;

use log::{error, warn};
use proxy_wasm::traits::{Context, HttpContext};

use super::host_view::HostRequest;
use super::worker::{random_event_id, Worker};
use crate::capture::capture_event;
use crate::outbox::PushOutcome;

pub struct AuditHttp {
    /// None only if the plugin was never configured; then nothing is captured.
    pub worker: Option<Rc<Worker>>,
}

impl Context for AuditHttp {}

impl HttpContext for AuditHttp {
    fn on_log(&mut self) {
        let Some(worker) = &self.worker else { return };
        let event = capture_event(&HostRequest, &worker.config, &worker.config.route_table, random_event_id());
        let json = match serde_json::to_vec(&event) {
            Ok(json) => json,
            Err(err) => {
                error!("audit-filter: could not serialize event {}: {err}", event.uuid);
                return;
            }
        };
        let Ok(mut outbox) = worker.outbox.try_borrow_mut() else {
            error!("audit-filter: outbox busy, event {} lost", event.uuid);
            return;
        };
        if outbox.push(json, super::now_ms()) == PushOutcome::TooLarge {
            warn!("audit-filter: event {} is larger than the collector accepts; dropped and counted", event.uuid);
        }
    }
}
