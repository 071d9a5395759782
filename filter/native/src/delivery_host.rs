//! The core's [`DeliveryHost`] in this module, in two places:
//! - [`MainThreadHost`]: on Envoy's main thread, in the configuration's hooks (tick, answer,
//!   shutdown): each call to the collector is a configuration-level HTTP callout to the
//!   collector cluster, whose answer comes back in `config_http_callout_done`.
//! - [`StreamHost`]: on a worker, inside a stream's hook (fail-closed refusal, capture): it
//!   reads the request's method and answers locally; it never calls the collector.

use std::sync::atomic::{AtomicU32, Ordering};

use log::Level;

use audit_filter_core::worker::delivery::{CollectorCall, DeliveryHost, Snapshot};

use crate::envoy::{self, ConfigHandle, Stream};
use crate::randomness::{random_event_id, random_u64};
use crate::worker_slot::WorkerSlot;

/// Tokens for calls in flight, unique within the module (the core matches an answer to the
/// batch it carries by token).
static NEXT_TOKEN: AtomicU32 = AtomicU32::new(1);

/// A call Envoy accepted: its callout id and the token delivery knows it by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dispatched {
    pub callout_id: u64,
    pub token: u32,
}

pub struct MainThreadHost<'a> {
    pub config: ConfigHandle,
    pub slot: &'a WorkerSlot,
    /// The body start of the answer being handled ("" outside an answer).
    pub answer_body: &'a str,
    /// Calls sent while this host was in use, for the caller to route their answers.
    pub dispatched: Vec<Dispatched>,
    /// Whether the delivery said it is done (after `on_done`: drained, or out of time).
    pub finished: bool,
}

impl<'a> MainThreadHost<'a> {
    pub fn new(config: ConfigHandle, slot: &'a WorkerSlot, answer_body: &'a str) -> Self {
        MainThreadHost { config, slot, answer_body, dispatched: Vec::new(), finished: false }
    }
}

impl DeliveryHost for MainThreadHost<'_> {
    fn dispatch(&mut self, call: CollectorCall<'_>) -> Result<u32, String> {
        let timeout_ms = u64::try_from(call.timeout.as_millis()).unwrap_or(u64::MAX);
        let callout_id = self
            .config
            .http_callout(call.cluster, &call.headers, call.body, timeout_ms)
            .map_err(|refused| refused.to_string())?;
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        self.dispatched.push(Dispatched { callout_id, token });
        Ok(token)
    }

    fn answer_body(&mut self) -> String {
        self.answer_body.to_string()
    }

    fn request_method(&mut self) -> Option<String> {
        None
    }

    fn send_local_reply(&mut self, _status: u16, _headers: &[(&str, &str)], _body: &[u8]) -> Result<(), String> {
        Err("no request on Envoy's main thread".into())
    }

    fn log(&mut self, level: Level, message: &str) {
        envoy::log(level, message);
    }

    fn publish(&mut self, snapshot: Snapshot) {
        self.slot.set_snapshot(snapshot);
    }

    fn random_event_id(&mut self) -> [u8; 16] {
        random_event_id()
    }

    fn random_u64(&mut self) -> u64 {
        random_u64()
    }

    /// Envoy deletes the configuration when its hook returns; nothing to tell it.
    fn finish_shutdown(&mut self) -> Result<(), String> {
        Ok(())
    }
}

/// A local reply delivery decided on, sent by the stream once the delivery lock is released
/// (Envoy may end the stream, and run its hooks again, inside the reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl LocalReply {
    pub fn send(&self, stream: &mut Stream<'_>) {
        let headers: Vec<(&str, &str)> =
            self.headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
        stream.send_local_reply(self.status, &headers, &self.body);
    }
}

pub struct StreamHost<'s, 'hook> {
    pub stream: &'s Stream<'hook>,
    pub slot: &'s WorkerSlot,
    /// The reply decided on, if any.
    pub reply: Option<LocalReply>,
}

impl<'s, 'hook> StreamHost<'s, 'hook> {
    pub fn new(stream: &'s Stream<'hook>, slot: &'s WorkerSlot) -> Self {
        StreamHost { stream, slot, reply: None }
    }
}

impl DeliveryHost for StreamHost<'_, '_> {
    fn dispatch(&mut self, _call: CollectorCall<'_>) -> Result<u32, String> {
        Err("calls to the collector are made on Envoy's main thread".into())
    }

    fn answer_body(&mut self) -> String {
        String::new()
    }

    fn request_method(&mut self) -> Option<String> {
        let method = self.stream.request_header(":method")?;
        Some(String::from_utf8_lossy(method).into_owned())
    }

    fn send_local_reply(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> Result<(), String> {
        let headers = headers.iter().map(|(name, value)| (name.to_string(), value.to_string())).collect();
        self.reply = Some(LocalReply { status, headers, body: body.to_vec() });
        Ok(())
    }

    fn log(&mut self, level: Level, message: &str) {
        envoy::log(level, message);
    }

    fn publish(&mut self, snapshot: Snapshot) {
        self.slot.set_snapshot(snapshot);
    }

    fn random_event_id(&mut self) -> [u8; 16] {
        random_event_id()
    }

    fn random_u64(&mut self) -> u64 {
        random_u64()
    }

    fn finish_shutdown(&mut self) -> Result<(), String> {
        Ok(())
    }
}
