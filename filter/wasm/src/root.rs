//! The root context, one per worker VM: reads the configuration, sets the tick, and hands
//! each tick and each answer to the worker's [`audit_filter_core::worker::delivery::Delivery`]. Only calls made
//! from the root context get their answer back, so delivery runs here.

use std::rc::Rc;

use log::error;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MapType};

use super::http::AuditHttp;
use super::now_ms;
use super::proxy_host::ProxyHost;
use super::worker::Worker;
use audit_filter_core::worker::delivery::Shutdown;

#[derive(Default)]
pub struct AuditRoot {
    worker: Option<Rc<Worker>>,
}

impl AuditRoot {
    /// The HTTP context of a new stream on this worker.
    pub fn http_context(&self, context_id: u32) -> AuditHttp {
        AuditHttp { worker: self.worker.clone(), stripped_headers: Vec::new(), peer_address: None, context_id }
    }

    /// Resumes the streams held for the announcement, once delivery lets them go. Last in
    /// a callback: it switches the effective context to each stream.
    fn release_held(worker: &Worker) {
        if !worker.delivery.releases_held(now_ms()) {
            return;
        }
        let Ok(mut held) = worker.held.try_borrow_mut() else { return };
        for context_id in held.drain(..) {
            // A stream that ended meanwhile (its client went away) is no longer there.
            if hostcalls::set_effective_context(context_id).is_ok() {
                let _ = hostcalls::resume_http_request();
            }
        }
    }
}

impl Context for AuditRoot {
    fn on_http_call_response(&mut self, token_id: u32, _num_headers: usize, body_size: usize, _num_trailers: usize) {
        let Some(worker) = &self.worker else { return };
        let mut host = ProxyHost { worker, answer_body_size: body_size };
        worker.delivery.on_answer(&mut host, token_id, response_status(), now_ms());
        AuditRoot::release_held(worker);
    }

    /// Envoy 1.40 calls this on every worker VM when it exits (SIGTERM, the end of a hot
    /// restart: a few milliseconds before exiting, answering nothing), when a new plugin
    /// configuration replaces this one (then it keeps the context, ticks and answers
    /// included, until `proxy_done`), and when a new `vm_config` replaces the VM (then it
    /// destroys the VM at once). Returns false while still delivering.
    fn on_done(&mut self) -> bool {
        let Some(worker) = &self.worker else { return true };
        let progress = worker.delivery.on_done(&mut ProxyHost { worker, answer_body_size: 0 }, now_ms());
        progress == Shutdown::Finished
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
        if let Err(status) = hostcalls::set_tick_period(worker.delivery.tick_period()) {
            error!("audit-filter: could not set the tick period ({status:?}); events would never be sent");
            return false;
        }
        // Before the worker can answer a request: the collector knows of it from now on.
        worker.delivery.on_start(&mut ProxyHost { worker: &worker, answer_body_size: 0 }, now_ms());
        self.worker = Some(Rc::new(worker));
        true
    }

    fn on_tick(&mut self) {
        let Some(worker) = &self.worker else { return };
        worker.delivery.on_tick(&mut ProxyHost { worker, answer_body_size: 0 }, now_ms());
        AuditRoot::release_held(worker);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(self.http_context(context_id)))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The `:status` of the answer; None when the call was reset (no headers).
fn response_status() -> Option<u16> {
    let value = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status").ok()??;
    std::str::from_utf8(&value).ok()?.trim().parse().ok()
}
