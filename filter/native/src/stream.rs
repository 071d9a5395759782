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
use audit_filter_core::request::host::RequestHeaders;
use audit_filter_core::request::jwt_claim_headers::claim_header_names;
use audit_filter_core::request::untrusted_headers::{untrusted_identity_headers, ArrivingRequest};
use audit_filter_core::worker::failure_policy::{Admission, FailureMode};

use crate::abi::{ATTRIBUTE_RESPONSE_CODE, ATTRIBUTE_RESPONSE_CODE_DETAILS, ATTRIBUTE_SOURCE_ADDRESS};
use crate::delivery_host::{LocalReply, StreamHost};
use crate::envoy::{self, Stream};
use crate::envoy_exit;
use crate::held::HeldRequest;
use crate::module_config::ModuleConfig;
use crate::randomness::{now_ms, now_unix_nanos, random_event_id};
use crate::request_view::{headers_of, text, NativeRequest};
use crate::worker_slot::{InProgress, WorkerSlot};

/// The request at its headers, as the core's stripping decision asks about it. Every
/// question is answered from the header map, fetched from Envoy once at the first: one
/// `get_headers` is ~1.6k of Envoy's instructions, one lookup by name (`get_header`) ~1.2k
/// each, and the decision asks about every configured name (callgrind, the bench request).
struct Arriving<'s, 'hook> {
    stream: &'s Stream<'hook>,
    headers: Option<Vec<(&'s [u8], &'s [u8])>>,
}

impl<'s> Arriving<'s, '_> {
    fn headers(&mut self) -> &[(&'s [u8], &'s [u8])] {
        let stream = self.stream;
        self.headers.get_or_insert_with(|| stream.request_headers())
    }

    fn values<'a>(&'a mut self, name: &'a str) -> impl Iterator<Item = &'s [u8]> + 'a {
        self.headers().iter().filter(move |(key, _)| *key == name.as_bytes()).map(|&(_, value)| value)
    }
}

impl ArrivingRequest for Arriving<'_, '_> {
    fn has_header(&mut self, name: &str) -> bool {
        self.values(name).next().is_some()
    }

    fn peer_address(&mut self) -> Option<Vec<u8>> {
        self.stream.attribute_string(ATTRIBUTE_SOURCE_ADDRESS).map(<[u8]>::to_vec)
    }

    fn header_values(&mut self, name: &str) -> Option<Vec<String>> {
        Some(self.values(name).map(|value| text(value).into_owned()).collect())
    }

    fn headers(&mut self) -> Option<RequestHeaders> {
        Some(headers_of(Arriving::headers(self)))
    }
}

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
    /// Set while the request is held for the sender's announcement (its wake-up).
    held: Option<Arc<HeldRequest>>,
    /// Stopped at its headers and not resumed yet.
    paused: bool,
    /// Counted until its event is captured: Envoy's exit waits for it.
    in_progress: Option<InProgress>,
    /// Arrived after Envoy's exit began: never forwarded, never captured.
    after_exit: bool,
}

/// What becomes of a request at its headers.
pub enum AtHeaders {
    Forward,
    /// Refused (fail-closed): the reply to send once nothing of the stream is borrowed.
    Refuse(LocalReply),
    /// Held until the collector answered the sender's announcement ([`crate::held`]).
    Hold,
}

impl Drop for AuditStream {
    /// The stream ended (on its worker): a held request's scheduler is deleted now, under
    /// the lock the main thread wakes it under.
    fn drop(&mut self) {
        if let Some(held) = self.held.take() {
            held.end();
        }
    }
}

impl AuditStream {
    pub fn new(config: Arc<ModuleConfig>, stream: &Stream<'_>) -> AuditStream {
        let slot = config.slot(|| stream.worker_index());
        AuditStream {
            config,
            slot,
            stripped: Vec::new(),
            peer: None,
            started: None,
            held: None,
            paused: false,
            in_progress: None,
            after_exit: false,
        }
    }

    /// Whether the request goes on, is refused (fail-closed; the caller sends the reply
    /// once nothing of this stream is borrowed) or is held for the sender's announcement.
    pub fn on_request_headers(&mut self, stream: &mut Stream<'_>) -> AtHeaders {
        self.in_progress = Some(WorkerSlot::begin_request(&self.slot));
        if envoy_exit::begun() {
            // Envoy is exiting: the final reports count only the requests already in
            // progress, so this one is held (Envoy closes its connection as it exits).
            self.in_progress = None;
            self.after_exit = true;
            self.paused = true;
            return AtHeaders::Hold;
        }
        self.started = Some((now_unix_nanos(), Instant::now()));
        self.strip_untrusted_identity(stream);
        self.strip_claim_headers(stream);
        if self.config.filter.failure_policy.mode == FailureMode::Closed {
            let slot = Arc::clone(&self.slot);
            let mut host = StreamHost::new(stream, &slot);
            let admission = slot.delivery().refusal(&mut host);
            if let (Admission::Refuse(_), Some(reply)) = (admission, host.reply) {
                return AtHeaders::Refuse(reply);
            }
        }
        if self.hold(stream) {
            AtHeaders::Hold
        } else {
            AtHeaders::Forward
        }
    }

    /// Holds the request if the core says this worker's sender is not known to the collector
    /// yet; a stream Envoy gives no scheduler for is not held (it could not be woken).
    fn hold(&mut self, stream: &Stream<'_>) -> bool {
        if !self.slot.delivery().holds_for_announcement(now_ms) {
            return false;
        }
        let Some(scheduler) = stream.new_scheduler() else { return false };
        let held = HeldRequest::new(scheduler);
        self.slot.held.hold(&held);
        self.held = Some(held);
        self.paused = true;
        true
    }

    /// Stopped at its headers and not resumed yet: its body and trailers wait too.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// The main thread woke this stream: true if it was paused (the caller resumes it).
    pub fn take_paused(&mut self) -> bool {
        std::mem::take(&mut self.paused)
    }

    /// Removes the identity headers the core says to (those a peer not trusted to set
    /// them sent), keeping their values for the event.
    fn strip_untrusted_identity(&mut self, stream: &mut Stream<'_>) {
        let config = Arc::clone(&self.config);
        let stripping = untrusted_identity_headers(&config.filter.identity, &mut Arriving { stream, headers: None });
        if stripping.peer_address.is_some() {
            self.peer = stripping.peer_address;
        }
        self.stripped = stripping.stripped;
        for name in stripping.remove {
            if !stream.remove_request_header(name) {
                envoy::log(
                    Level::Error,
                    &format!("audit-filter: could not remove the untrusted identity header {name}"),
                );
            }
        }
    }

    /// Removes the headers `jwt_authn` writes verified claims to (`identity.jwt.claimHeaders`):
    /// this filter runs before `jwt_authn`, so whatever is there at the end of the stream
    /// was set by `jwt_authn`, never by the client.
    fn strip_claim_headers(&mut self, stream: &mut Stream<'_>) {
        let config = Arc::clone(&self.config);
        for name in claim_header_names(&config.filter.identity.jwt) {
            if stream.request_header(name).is_some() && !stream.remove_request_header(name) {
                envoy::log(Level::Error, &format!("audit-filter: could not remove the claim header {name}"));
            }
        }
    }

    /// Captures the finished request and hands the event to this worker's delivery.
    pub fn on_stream_complete(&mut self, stream: &Stream<'_>) {
        if self.arrived_after_exit() {
            return;
        }
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
            code_details: &|| stream.attribute_string(ATTRIBUTE_RESPONSE_CODE_DETAILS).map(<[u8]>::to_vec),
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
        self.in_progress = None;
    }

    /// Whether the request arrived after Envoy's exit began (then it is not captured). A
    /// request Envoy answered itself before its headers reached the filter (one it could not
    /// parse: `UnparsedRequest`) gets here without `on_request_headers`, so it is counted in
    /// progress here, as that hook counts the others: otherwise its event could be captured
    /// after the final report (a count it is not in), or lost after it with nothing saying so.
    fn arrived_after_exit(&mut self) -> bool {
        if self.in_progress.is_none() && !self.after_exit {
            self.in_progress = Some(WorkerSlot::begin_request(&self.slot));
            if envoy_exit::begun() {
                self.in_progress = None;
                self.after_exit = true;
            }
        }
        self.after_exit
    }

    /// The capture panicked (caught at the boundary): the event is lost, and counted as
    /// dropped so the trail's next gap record says so.
    pub fn count_lost(&mut self, stream: &Stream<'_>) {
        if self.arrived_after_exit() {
            return;
        }
        let slot = Arc::clone(&self.slot);
        let lost: Result<Vec<u8>, &str> = Err("the capture panicked");
        slot.delivery().on_captured(&mut StreamHost::new(stream, &slot), "(not captured)", lost, now_ms());
        self.in_progress = None;
    }
}
