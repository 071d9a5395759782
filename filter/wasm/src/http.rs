//! The HTTP context: captures the request in `on_log` (after the response, so status and
//! duration are known, and also for requests Envoy answered itself) and hands the
//! serialized event to the worker's delivery. It never dispatches: a call made here never
//! sees its answer (the SDK drops the context after `on_log`), so delivery is the root's.
//!
//! In `on_http_request_headers` it removes identity headers that came from a peer not
//! trusted to set them (`identity.stripUntrustedHeaders`), keeping them for the event so the
//! attempt is still recorded; and in fail-closed mode it asks delivery whether to refuse
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
use audit_filter_core::request::identity::identity_header_names;
use audit_filter_core::request::trusted_proxies::peer_is_trusted;
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
}

impl AuditHttp {
    /// Removes the identity headers when the peer is not a trusted proxy. Each configured name
    /// is looked up (a host call each) until one is there, which in the common case is none;
    /// once one is and the peer is not trusted, the whole header map, needed anyway to record
    /// every value, answers for the names left instead of a lookup each. A header is there
    /// when Envoy has an entry of that name, as its lookup says (an empty value included).
    fn strip_untrusted_identity(&mut self, identity: &IdentityConfig) {
        if !identity.strip_untrusted_headers {
            return;
        }
        let looked_up =
            |name: &str| matches!(hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name), Ok(Some(_)));
        let configured: Vec<&str> = identity_header_names(identity).collect();
        let Some(first) = configured.iter().position(|name| looked_up(name)) else { return };
        let peer_address = self.peer_address.insert(hostcalls::get_property(vec!["source", "address"]).ok().flatten());
        let peer = peer_address.as_deref().and_then(|bytes| std::str::from_utf8(bytes).ok());
        if peer_is_trusted(peer, &identity.trusted_proxies) {
            return;
        }
        let all = parse_header_map(request_header_map());
        let in_map = |name: &str| match &all {
            Some(headers) => headers.get(name).is_some(),
            // A map that is not well formed (never seen): ask Envoy name by name rather than
            // strip less.
            None => looked_up(name),
        };
        let mut names: Vec<&str> = configured[first..]
            .iter()
            .enumerate()
            .filter(|&(index, name)| index == 0 || in_map(name))
            .map(|(_, name)| *name)
            .collect();
        names.dedup();
        // Every value, as the client sent it (a lookup gives only the first).
        self.stripped_headers = all
            .unwrap_or_default()
            .pairs()
            .filter(|(name, _)| names.contains(name))
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect();
        for name in names {
            if let Err(status) = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name) {
                error!("audit-filter: could not remove the untrusted identity header {name} ({status:?})");
            }
        }
    }
}

impl Context for AuditHttp {}

impl HttpContext for AuditHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(worker) = self.worker.clone() else { return Action::Continue };
        #[cfg(feature = "cost-stages")]
        if worker.stage == audit_filter_core::request::cost_stage::CostStage::Callbacks {
            return Action::Continue;
        }
        self.strip_untrusted_identity(&worker.config.identity);
        match worker.delivery.refusal(&mut ProxyHost { worker: &worker, answer_body_size: 0 }) {
            Admission::Forward => Action::Continue,
            Admission::Refuse(_) => Action::Pause,
        }
    }

    fn on_log(&mut self) {
        let Some(worker) = &self.worker else { return };
        let view = HostRequest { stripped_headers: &self.stripped_headers, peer_address: self.peer_address.as_ref() };
        #[cfg(feature = "cost-stages")]
        if worker.stage != audit_filter_core::request::cost_stage::CostStage::Full {
            return super::cost_stage::log_until(worker, &view);
        }
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
