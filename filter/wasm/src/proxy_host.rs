//! [`DeliveryHost`] over the proxy: each method is one host call (or the worker's metrics
//! and randomness), with the host's status as the error text.

use log::Level;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};

use super::worker::{random_event_id, random_u64, Worker};
use audit_filter_core::worker::delivery::{CollectorCall, DeliveryHost, Snapshot, LOGGED_BODY_BYTES};

/// The proxy, for the context that is currently active.
pub struct ProxyHost<'a> {
    pub worker: &'a Worker,
    /// The body size of the call answer being handled (0 outside `on_http_call_response`).
    pub answer_body_size: usize,
}

impl DeliveryHost for ProxyHost<'_> {
    fn dispatch(&mut self, call: CollectorCall<'_>) -> Result<u32, String> {
        hostcalls::dispatch_http_call(call.cluster, call.headers, Some(call.body), vec![], call.timeout)
            .map_err(|status| format!("{status:?}"))
    }

    fn answer_body(&mut self) -> String {
        let size = self.answer_body_size.min(LOGGED_BODY_BYTES);
        let bytes = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, size).ok().flatten().unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn request_method(&mut self) -> Option<String> {
        let method = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, ":method").ok()??;
        Some(String::from_utf8_lossy(&method).into_owned())
    }

    fn send_local_reply(&mut self, status: u16, headers: &[(&str, &str)], body: &[u8]) -> Result<(), String> {
        hostcalls::send_http_response(u32::from(status), headers.to_vec(), Some(body))
            .map_err(|status| format!("{status:?}"))
    }

    fn log(&mut self, level: Level, message: &str) {
        log::log!(level, "{message}");
    }

    fn publish(&mut self, snapshot: Snapshot) {
        if let Ok(mut metrics) = self.worker.metrics.try_borrow_mut() {
            metrics.publish(snapshot);
        }
    }

    fn random_event_id(&mut self) -> [u8; 16] {
        random_event_id()
    }

    fn random_u64(&mut self) -> u64 {
        random_u64()
    }

    fn finish_shutdown(&mut self) -> Result<(), String> {
        hostcalls::done().map_err(|status| format!("{status:?}"))
    }
}
