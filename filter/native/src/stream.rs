//! One HTTP stream through the filter. At the request headers: remove identity headers a
//! peer not trusted to set them sent (`identity.stripUntrustedHeaders`; kept for the event,
//! so the attempt is recorded), then, in fail-closed mode, ask delivery whether to refuse
//! the request. At the end of the stream (after the response, also for requests Envoy
//! answered itself): capture the event and hand it to this worker's delivery.

use std::sync::Arc;
use std::time::Instant;

use log::Level;

use audit_filter_core::request::bounds::write_within_limit;
use audit_filter_core::request::capture::capture_event;
use audit_filter_core::request::identity::identity_header_names;
use audit_filter_core::request::trusted_proxies::peer_is_trusted;
use audit_filter_core::worker::failure_policy::{Admission, FailureMode};

use crate::abi::{ATTRIBUTE_RESPONSE_CODE, ATTRIBUTE_SOURCE_ADDRESS};
use crate::delivery_host::{LocalReply, StreamHost};
use crate::envoy::{self, Stream};
use crate::module_config::ModuleConfig;
use crate::randomness::{now_ms, now_unix_nanos, random_event_id};
use crate::request_view::NativeRequest;
use crate::worker_slot::WorkerSlot;

/// Bytes reserved for one serialized event; a larger one grows its buffer.
const EVENT_CAPACITY: usize = 1024;

pub struct AuditStream {
    config: Arc<ModuleConfig>,
    slot: Arc<WorkerSlot>,
    /// Identity headers removed before the request went on, as they arrived.
    stripped: Vec<(String, String)>,
    /// `source.address`, when read already at the request headers.
    peer: Option<Option<Vec<u8>>>,
    /// When the request headers reached the module: wall clock and monotonic.
    started: Option<(i64, Instant)>,
}

impl AuditStream {
    pub fn new(config: Arc<ModuleConfig>, stream: &Stream<'_>) -> AuditStream {
        let slot = config.slot(|| stream.worker_index());
        AuditStream { config, slot, stripped: Vec::new(), peer: None, started: None }
    }

    /// The reply refusing the request, if delivery refuses it (fail-closed); the caller
    /// sends it once nothing of this stream is borrowed, and stops the request there.
    pub fn on_request_headers(&mut self, stream: &mut Stream<'_>) -> Option<LocalReply> {
        self.started = Some((now_unix_nanos(), Instant::now()));
        self.strip_untrusted_identity(stream);
        if self.config.filter.failure_policy.mode == FailureMode::Open {
            return None;
        }
        let slot = Arc::clone(&self.slot);
        let mut host = StreamHost::new(stream, &slot);
        let admission = slot.delivery().refusal(&mut host);
        match admission {
            Admission::Forward => None,
            Admission::Refuse(_) => host.reply,
        }
    }

    /// Removes the identity headers when the peer is not a trusted proxy. Each configured
    /// name is looked up until one is there (usually none is); then the peer decides.
    fn strip_untrusted_identity(&mut self, stream: &mut Stream<'_>) {
        let config = Arc::clone(&self.config);
        let identity = &config.filter.identity;
        if !identity.strip_untrusted_headers {
            return;
        }
        let configured: Vec<&str> = identity_header_names(identity).collect();
        let Some(first) = configured.iter().position(|name| stream.request_header(name).is_some()) else { return };
        let peer = stream.attribute_string(ATTRIBUTE_SOURCE_ADDRESS).map(<[u8]>::to_vec);
        let trusted = peer_is_trusted(
            peer.as_deref().and_then(|bytes| std::str::from_utf8(bytes).ok()),
            &identity.trusted_proxies,
        );
        self.peer = Some(peer);
        if trusted {
            return;
        }
        let mut names: Vec<&str> = Vec::new();
        for (offset, name) in configured[first..].iter().enumerate() {
            if !names.contains(name) && (offset == 0 || stream.request_header(name).is_some()) {
                names.push(name);
            }
        }
        // Every value, as the client sent it (a lookup gives only the first).
        self.stripped = stream
            .request_headers()
            .into_iter()
            .filter(|(name, _)| names.iter().any(|wanted| wanted.as_bytes() == *name))
            .map(|(name, value)| {
                (String::from_utf8_lossy(name).into_owned(), String::from_utf8_lossy(value).into_owned())
            })
            .collect();
        for name in names {
            if !stream.remove_request_header(name) {
                envoy::log(
                    Level::Error,
                    &format!("audit-filter: could not remove the untrusted identity header {name}"),
                );
            }
        }
    }

    /// Captures the finished request and hands the event to this worker's delivery.
    pub fn on_stream_complete(&mut self, stream: &Stream<'_>) {
        let (request_time_ns, duration_ns) = match self.started {
            Some((wall, monotonic)) => (Some(wall), i64::try_from(monotonic.elapsed().as_nanos()).ok()),
            None => (None, None),
        };
        let peer = match &self.peer {
            Some(peer) => peer.clone(),
            None => stream.attribute_string(ATTRIBUTE_SOURCE_ADDRESS).map(<[u8]>::to_vec),
        };
        let view = NativeRequest {
            headers: stream.request_headers(),
            stripped: &self.stripped,
            peer: peer.as_deref(),
            status: stream.attribute_int(ATTRIBUTE_RESPONSE_CODE),
            request_time_ns,
            duration_ns,
        };
        let config = &self.config;
        let mut event = capture_event(&view, &config.filter, config.fingerprint_key.as_ref(), random_event_id());
        drop(view);
        event.sender = self.slot.delivery().sender_seq();
        let mut json = Vec::with_capacity(EVENT_CAPACITY);
        let serialized = write_within_limit(&mut json, &mut event).map(|()| json);
        let slot = Arc::clone(&self.slot);
        slot.delivery().on_captured(&mut StreamHost::new(stream, &slot), &event.uuid, serialized, now_ms());
    }

    /// The capture panicked (caught at the boundary): the event is lost, and counted as
    /// dropped so the trail's next gap record says so.
    pub fn count_lost(&self, stream: &Stream<'_>) {
        let slot = Arc::clone(&self.slot);
        let lost: Result<Vec<u8>, &str> = Err("the capture panicked");
        slot.delivery().on_captured(&mut StreamHost::new(stream, &slot), "(not captured)", lost, now_ms());
    }
}
