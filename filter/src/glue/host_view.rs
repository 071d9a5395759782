//! [`RequestView`] over the proxy: one host call for the whole request header map, one per
//! property. Header values are read as bytes and decoded lossily, because a client may send
//! non-UTF-8 bytes and the SDK's string map would panic on them. Identity headers the filter
//! removed before the request went on are added back: the event describes the request as
//! it arrived.

use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

use crate::host::{RequestHeaders, RequestView};

/// The request of the HTTP context that is currently active.
pub struct HostRequest<'a> {
    /// Headers removed in `on_http_request_headers`, as they arrived.
    pub stripped_headers: &'a [(String, String)],
    /// `source.address` as read earlier in this stream, if it was (saves a host call).
    pub peer_address: Option<&'a Option<Vec<u8>>>,
}

impl RequestView for HostRequest<'_> {
    fn request_headers(&self) -> RequestHeaders {
        let pairs = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default();
        // Valid UTF-8 (nearly always) keeps its buffer; only invalid bytes are copied, lossily.
        let text = |value: Vec<u8>| {
            String::from_utf8(value).unwrap_or_else(|invalid| String::from_utf8_lossy(invalid.as_bytes()).into_owned())
        };
        let arrived = pairs.into_iter().map(|(name, value)| (name, text(value)));
        RequestHeaders::new(arrived.chain(self.stripped_headers.iter().cloned()).collect())
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        if let (Some(peer_address), ["source", "address"]) = (self.peer_address, path) {
            return peer_address.clone();
        }
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }

    fn now_unix_nanos(&self) -> i64 {
        super::now_unix_nanos()
    }
}
