//! What delivery needs from the proxy, as one small trait: send a call to the collector,
//! read the answer's body, answer a request locally, read the request's method, log,
//! publish metrics, and randomness. The real ones are the hosts' (`filter/wasm`'s `proxy_host`); tests
//! use `delivery::fake_host`.

use std::time::Duration;

use log::Level;

use crate::worker::outbox::OutboxCounters;

/// One HTTP call to the collector cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorCall<'a> {
    pub cluster: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
    pub timeout: Duration,
}

/// What one worker publishes as metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub outbox: OutboxCounters,
    pub delivery_failing: bool,
    pub refused: u64,
}

/// The proxy, as delivery sees it. Errors are the host's status, as text for the log.
pub trait DeliveryHost {
    /// Sends `call`; its answer later arrives with the returned token.
    fn dispatch(&mut self, call: CollectorCall<'_>) -> Result<u32, String>;

    /// The start (at most [`LOGGED_BODY_BYTES`](super::LOGGED_BODY_BYTES)) of the body of the answer being handled.
    fn answer_body(&mut self) -> String;

    /// The `:method` of the request being handled, if the host has it.
    fn request_method(&mut self) -> Option<String>;

    /// Answers the request being handled from the filter; it never reaches the service.
    fn send_local_reply(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> Result<(), String>;

    fn log(&mut self, level: Level, message: &str);

    /// Publishes the worker's totals (the host adds what changed since the last call).
    fn publish(&mut self, snapshot: Snapshot);

    /// 16 random bytes for the uuid of a gap record.
    fn random_event_id(&mut self) -> [u8; 16];

    /// Randomness for backoff jitter.
    fn random_u64(&mut self) -> u64;

    /// Tells the host that the worker it is shutting down has nothing left to deliver.
    fn finish_shutdown(&mut self) -> Result<(), String>;
}
