//! The HTTP context: captures the request in `on_log` (after the response, so status and
//! duration are known, and also for requests Envoy answered itself) and hands the
//! serialized event to the worker's delivery. It never dispatches: a call made here never
//! sees its answer (the SDK drops the context after `on_log`), so delivery is the root's.
//!
//! In `on_http_request_headers` it removes the identity headers the core's
//! [`untrusted_identity_headers`] names (sent by a peer not trusted to set them), keeping
//! them for the event so the attempt is still recorded; and in fail-closed mode it asks delivery whether to refuse
//! the request: a refused request is answered 503 and never reaches the service.

use std::rc::Rc;

use log::error;
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};

use super::host_view::{request_header_map, HostRequest};
use super::proxy_host::ProxyHost;
use super::worker::{random_event_id, Worker};
use audit_filter_core::config::IdentityConfig;
use audit_filter_core::request::bounds::write_within_limit;
use audit_filter_core::request::capture::capture_event;
use audit_filter_core::request::header_map::parse_header_map;
use audit_filter_core::request::header_map::RequestHeaders;
use audit_filter_core::request::untrusted_headers::{untrusted_identity_headers, ArrivingRequest};
use audit_filter_core::worker::failure_policy::Admission;

/// Bytes reserved for one serialized event; a larger one grows its buffer.
const EVENT_CAPACITY: usize = 1024;

pub struct AuditHttp {
    /// None only if the plugin was never configured; then nothing is captured.
    pub worker: Option<Rc<Worker>>,
    /// Identity headers removed before the request went on, as they arrived: `on_log`
    /// records them as the claims they were.
    pub stripped_headers: Vec<(String, String)>,
    /// `source.address`, when `on_http_request_headers` has read it already (an identity
    /// header arrived): the peer of a stream never changes, so `on_log` does not ask again.
    pub peer_address: Option<Option<Vec<u8>>>,
    /// This stream's context id, to be resumed by the root when it was held.
    pub context_id: u32,
}

impl AuditHttp {
    /// What capture reads: the request as it arrived.
    pub fn view(&self) -> HostRequest<'_> {
        HostRequest { stripped_headers: &self.stripped_headers, peer_address: self.peer_address.as_ref() }
    }

    /// Removes the identity headers the core says to (`identity.stripUntrustedHeaders`),
    /// keeping their values for the event and the peer address for `on_log`.
    fn strip_untrusted_identity(&mut self, identity: &IdentityConfig) {
        let stripping = untrusted_identity_headers(identity, &mut ArrivingProxyRequest);
        self.peer_address = stripping.peer_address;
        self.stripped_headers = stripping.stripped;
        for name in stripping.remove {
            if let Err(status) = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name) {
                error!("audit-filter: could not remove the untrusted identity header {name} ({status:?})");
            }
        }
    }
}

/// The request headers of the HTTP context that is active, a host call per question.
struct ArrivingProxyRequest;

impl ArrivingRequest for ArrivingProxyRequest {
    fn has_header(&mut self, name: &str) -> bool {
        matches!(hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name), Ok(Some(_)))
    }

    fn peer_address(&mut self) -> Option<Vec<u8>> {
        hostcalls::get_property(vec!["source", "address"]).ok().flatten()
    }

    /// proxy-wasm's lookup by name answers with one value, not every one: the whole map
    /// (one host call) answers instead.
    fn header_values(&mut self, _name: &str) -> Option<Vec<String>> {
        None
    }

    fn headers(&mut self) -> Option<RequestHeaders> {
        parse_header_map(request_header_map())
    }
}

impl Context for AuditHttp {}

impl HttpContext for AuditHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(worker) = self.worker.clone() else { return Action::Continue };
        self.strip_untrusted_identity(&worker.config.identity);
        if let Admission::Refuse(_) = worker.delivery.refusal(&mut ProxyHost { worker: &worker, answer_body_size: 0 }) {
            return Action::Pause;
        }
        // A worker the collector does not know yet answers nothing: the root resumes the
        // stream once its announcement is acknowledged (or the hold has passed).
        if worker.delivery.holds_for_announcement(super::now_ms) {
            if let Ok(mut held) = worker.held.try_borrow_mut() {
                held.push(self.context_id);
                return Action::Pause;
            }
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let Some(worker) = &self.worker else { return };
        let view = self.view();
        let mut event = capture_event(&view, &worker.config, worker.fingerprint_key.as_ref(), random_event_id());
        event.sender = worker.delivery.sender_seq();
        // One allocation that fits a typical event (~800 bytes), kept by the outbox as is.
        let mut json = Vec::with_capacity(EVENT_CAPACITY);
        let serialized = write_within_limit(&mut json, &mut event).map(|()| json);
        worker.delivery.on_captured(
            &mut ProxyHost { worker, answer_body_size: 0 },
            &event.uuid,
            serialized,
            super::now_ms(),
        );
    }
}
