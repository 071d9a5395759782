//! [`RequestView`] over the proxy: one host call for the whole request header map, read in
//! place ([`audit_filter_core::request::header_map`]) rather than through the SDK's `get_map_bytes`, which copies
//! every name and value (and panics on a name that is not UTF-8); one host call per
//! property. Identity headers the filter removed before the request went on are added back:
//! the event describes the request as it arrived.

use std::ptr::null_mut;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{MapType, Status};

use audit_filter_core::request::header_map::parse_header_map;
use audit_filter_core::request::host::{RequestHeaders, RequestView};
use audit_filter_core::request::untrusted_headers::as_arrived;

/// The request of the HTTP context that is currently active.
pub struct HostRequest<'a> {
    /// Headers removed in `on_http_request_headers`, as they arrived.
    pub stripped_headers: &'a [(String, String)],
    /// `source.address` as read earlier in this stream, if it was (saves a host call).
    pub peer_address: Option<&'a Option<Vec<u8>>>,
}

impl RequestView for HostRequest<'_> {
    fn request_headers(&self) -> RequestHeaders {
        // A map Envoy could not give, or one that is not well formed (never seen), is read
        // as no headers: the event is still captured, with the defaults of a bare request.
        as_arrived(parse_header_map(request_header_map()).unwrap_or_default(), self.stripped_headers)
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

// The import the SDK's `get_map_bytes` calls, declared as the SDK declares it.
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(
        map_type: MapType,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> Status;
}

/// The request headers as the host serializes them; empty if the host gives none.
pub fn request_header_map() -> Vec<u8> {
    let mut data: *mut u8 = null_mut();
    let mut size: usize = 0;
    // SAFETY: the host writes a pointer and a size; the memory was allocated through the
    // SDK's `proxy_on_memory_allocate` (a boxed slice of exactly `size` bytes, the layout
    // of a `Vec<u8>` with that capacity), and ownership passes to the filter, as in the
    // SDK's own `get_map_bytes`.
    unsafe {
        match proxy_get_header_map_pairs(MapType::HttpRequestHeaders, &mut data, &mut size) {
            Status::Ok if !data.is_null() => Vec::from_raw_parts(data, size, size),
            _ => Vec::new(),
        }
    }
}
