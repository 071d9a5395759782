//! What capture reads about a finished request in this host: the core's [`RequestView`]
//! over what the stream hook read from Envoy (headers borrowed for the hook, the client
//! address and status as attributes) and the times this module took itself. Identity
//! headers the module removed before the request went on are added back: the event
//! describes the request as it arrived.

use std::borrow::Cow;

use audit_filter_core::config::JwtClaimsConfig;
use audit_filter_core::request::host::{RequestHeaders, RequestView};
use audit_filter_core::request::jwt_claim_headers::claims_from_headers;
use audit_filter_core::request::metadata::ClaimValue;

use crate::randomness::now_unix_nanos;

pub struct NativeRequest<'a> {
    /// The request headers as Envoy holds them at the end of the stream.
    pub headers: Vec<(&'a [u8], &'a [u8])>,
    /// Headers removed at the request headers, as they arrived.
    pub stripped: &'a [(String, String)],
    /// `source.address` (`ip:port`).
    pub peer: Option<&'a [u8]>,
    /// `response.code`.
    pub status: Option<u64>,
    /// Reads `response.code_details` when asked: the core asks only for a request Envoy
    /// answered itself without parsing it, so other requests pay no call for it.
    pub code_details: &'a dyn Fn() -> Option<Vec<u8>>,
    /// When the request's headers reached the module (ns since the epoch).
    pub request_time_ns: Option<i64>,
    /// From the request's headers to the end of the stream, as the module timed it.
    pub duration_ns: Option<i64>,
}

/// Envoy's header pairs as the core's headers (bytes that are not UTF-8 replaced, as a
/// client may send them).
pub fn headers_of(pairs: &[(&[u8], &[u8])]) -> RequestHeaders {
    RequestHeaders::from_byte_pairs(pairs)
}

/// `bytes` as text: checked as UTF-8 first (fast, and nearly always so), replaced only when
/// not (`from_utf8_lossy` walks every character even of valid text: 7k instructions a
/// request, measured under callgrind).
pub fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

impl RequestView for NativeRequest<'_> {
    fn request_headers(&self) -> RequestHeaders {
        let mut headers = headers_of(&self.headers);
        for (name, value) in self.stripped {
            headers.push(name, value);
        }
        headers
    }

    /// From the headers `jwt_authn`'s `claim_to_headers` wrote (`identity.jwt.claimHeaders`):
    /// the nested payload in the metadata is not readable here. The stream removed those
    /// headers from the request as it arrived, so only `jwt_authn` set what is there now.
    fn verified_jwt_claims(&self, jwt: &JwtClaimsConfig) -> Option<Vec<(String, ClaimValue)>> {
        if jwt.claim_headers.is_empty() {
            return None;
        }
        claims_from_headers(&headers_of(&self.headers), jwt)
    }

    /// The integers this host has, without the bytes [`RequestView::property`] would
    /// allocate for each (three a request).
    fn property_i64(&self, path: &[&str]) -> Option<i64> {
        match path {
            ["response", "code"] => i64::try_from(self.status?).ok(),
            ["request", "time"] => self.request_time_ns,
            ["request", "duration"] => self.duration_ns,
            _ => Some(i64::from_le_bytes(self.property(path)?.try_into().ok()?)),
        }
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let integer = |value: i64| Some(value.to_le_bytes().to_vec());
        match path {
            ["source", "address"] => self.peer.map(<[u8]>::to_vec),
            ["response", "code"] => integer(i64::try_from(self.status?).ok()?),
            ["response", "code_details"] => (self.code_details)(),
            ["request", "time"] => integer(self.request_time_ns?),
            ["request", "duration"] => integer(self.duration_ns?),
            // Dynamic metadata is readable only at the top level of a namespace, so
            // `jwt_authn`'s nested payload is not here (docs/configuration.md).
            _ => None,
        }
    }

    fn now_unix_nanos(&self) -> i64 {
        now_unix_nanos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'a>(headers: Vec<(&'a [u8], &'a [u8])>, stripped: &'a [(String, String)]) -> NativeRequest<'a> {
        NativeRequest {
            headers,
            stripped,
            peer: Some(b"10.0.0.7:51234"),
            status: Some(201),
            code_details: &|| Some(b"http1.codec_error".to_vec()),
            request_time_ns: Some(1_575_929_724_864_000_000),
            duration_ns: None,
        }
    }

    #[test]
    fn headers_keep_their_order_and_the_stripped_ones_come_after() {
        let stripped = [("x-email".to_string(), "forged@example.com".to_string())];
        let view = request(vec![(b":method", b"GET"), (b"x-bad", b"caf\xe9")], &stripped);
        let headers = view.request_headers();
        let pairs: Vec<_> = headers.pairs().collect();
        assert_eq!(pairs, [(":method", "GET"), ("x-bad", "caf\u{fffd}"), ("x-email", "forged@example.com")]);
    }

    #[test]
    fn properties_are_the_ones_the_wasm_host_gives_in_its_encoding() {
        let view = request(Vec::new(), &[]);
        assert_eq!(view.property_string(&["source", "address"]).as_deref(), Some("10.0.0.7:51234"));
        assert_eq!(view.property_i64(&["response", "code"]), Some(201));
        assert_eq!(view.property_string(&["response", "code_details"]).as_deref(), Some("http1.codec_error"));
        assert_eq!(view.property_i64(&["request", "time"]), Some(1_575_929_724_864_000_000));
        assert_eq!(view.property_i64(&["request", "duration"]), None);
        assert_eq!(view.property(&["metadata"]), None);
        for path in [["response", "code"], ["request", "time"], ["request", "duration"]] {
            let decoded = view.property(&path).map(|bytes| i64::from_le_bytes(bytes.try_into().unwrap_or_default()));
            assert_eq!(view.property_i64(&path), decoded, "{path:?}: as the bytes decode");
        }
    }
}
