//! The one seam between capture and the proxy: what a finished request looks like from
//! inside the filter. The real implementation (`filter/wasm`'s `host_view`) makes one host call for
//! the whole header map and one per property; tests build a [`FakeRequest`].

pub use crate::request::header_map::RequestHeaders;

use crate::config::JwtClaimsConfig;
use crate::request::metadata::{verified_claims, ClaimValue};

/// What capture reads from the host about the request being logged.
pub trait RequestView {
    /// All request headers, including the pseudo-headers `:method`, `:path`, `:authority`.
    fn request_headers(&self) -> RequestHeaders;

    /// A property by path (`["source", "address"]`), as the raw bytes Envoy returns.
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;

    /// Now, in nanoseconds since the Unix epoch: the fallback when `request.time` is missing.
    fn now_unix_nanos(&self) -> i64;

    /// The claims `jwt_authn` verified, by claim name; None when it verified no token. By
    /// default from the dynamic metadata (`payload_in_metadata`, one property read); a host
    /// that cannot read it there gives them from `identity.jwt.claimHeaders`
    /// ([`crate::request::jwt_claim_headers`]).
    fn verified_jwt_claims(&self, jwt: &JwtClaimsConfig) -> Option<Vec<(String, ClaimValue)>> {
        let metadata = self.property(&["metadata"])?;
        verified_claims(&metadata, &jwt.metadata_namespace, &jwt.payload_key)
    }

    /// A string property (`source.address`).
    fn property_string(&self, path: &[&str]) -> Option<String> {
        self.property(path).and_then(|bytes| String::from_utf8(bytes).ok()).filter(|text| !text.is_empty())
    }

    /// An integer, timestamp or duration property: Envoy encodes them as 8 bytes,
    /// little-endian (`request.time` in ns since the epoch, `request.duration` in ns,
    /// `response.code`).
    fn property_i64(&self, path: &[&str]) -> Option<i64> {
        let bytes: [u8; 8] = self.property(path)?.try_into().ok()?;
        Some(i64::from_le_bytes(bytes))
    }
}

/// A request made up by a test or a fuzz target (feature `fuzzing`): headers and
/// properties as the host would return them.
#[cfg(any(test, feature = "fuzzing"))]
#[derive(Debug, Default, Clone)]
pub struct FakeRequest {
    pub headers: Vec<(String, String)>,
    pub properties: Vec<(String, Vec<u8>)>,
    pub now_unix_nanos: i64,
}

#[cfg(any(test, feature = "fuzzing"))]
impl FakeRequest {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// `path` is dotted (`"source.address"`).
    pub fn property(mut self, path: &str, value: &[u8]) -> Self {
        self.properties.push((path.into(), value.to_vec()));
        self
    }

    pub fn int_property(self, path: &str, value: i64) -> Self {
        self.property(path, &value.to_le_bytes())
    }
}

#[cfg(any(test, feature = "fuzzing"))]
impl RequestView for FakeRequest {
    /// Through the host's serialized map and its parser, as in Envoy.
    fn request_headers(&self) -> RequestHeaders {
        let pairs = self.headers.iter().map(|(name, value)| (name.as_bytes(), value.as_bytes()));
        crate::request::header_map::parse_header_map(crate::request::header_map::serialize_header_map(pairs))
            .unwrap_or_default()
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let dotted = path.join(".");
        self.properties.iter().find(|(key, _)| *key == dotted).map(|(_, value)| value.clone())
    }

    fn now_unix_nanos(&self) -> i64 {
        self.now_unix_nanos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_properties_are_eight_little_endian_bytes() {
        let request = FakeRequest::default().int_property("response.code", 404).property("request.duration", &[1, 2]);
        assert_eq!(request.property_i64(&["response", "code"]), Some(404));
        assert_eq!(request.property_i64(&["request", "duration"]), None, "a short value is not an integer");
        assert_eq!(request.property_i64(&["request", "time"]), None, "a missing property");
    }

    #[test]
    fn header_lookup_skips_blank_values_only_when_asked() {
        let headers = RequestHeaders::new(vec![("x-email".into(), " ".into()), ("x-email".into(), "a@b.c".into())]);
        assert_eq!(headers.get("x-email"), Some(" "));
        assert_eq!(headers.get_non_empty("x-email"), Some("a@b.c"));
        assert_eq!(headers.get_non_empty("x-other"), None);
    }
}
