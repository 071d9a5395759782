//! Which identity headers to remove before the request goes on (`identity.stripUntrustedHeaders`):
//! those a peer not trusted to set them sent. Decided here, for every host; a host only
//! answers the questions of [`ArrivingRequest`] and removes what [`Stripping::remove`] names.
//! The values are kept ([`Stripping::stripped`]) so the event still records the attempt.
//!
//! Cheap in the common case: each configured name is looked up (one host call each) until
//! one is there, which usually none is, and only then is the peer read. Once a header is
//! there and the peer is not trusted, every value of each name left is looked up by name
//! where the host can ([`ArrivingRequest::header_values`]: a few lookups, where reading and
//! copying the whole map was ~17k instructions natively); a host that cannot has the whole
//! header map answer instead.

use crate::config::IdentityConfig;
use crate::request::header_map::RequestHeaders;
use crate::request::identity::identity_header_names;
use crate::request::trusted_proxies::peer_is_trusted;

/// The request at its headers, as the host answers for it.
pub trait ArrivingRequest {
    /// Whether the request has a header `name` (lowercase) as the host's lookup says: an
    /// entry with an empty value is there.
    fn has_header(&mut self, name: &str) -> bool;

    /// `source.address` (`ip:port`), as the host gives it.
    fn peer_address(&mut self) -> Option<Vec<u8>>;

    /// Every value of the request header `name` (lowercase), in the order they arrived (empty:
    /// none); None when the host cannot look up every value of a name (then the whole map
    /// answers, [`ArrivingRequest::headers`]).
    fn header_values(&mut self, name: &str) -> Option<Vec<String>>;

    /// Every request header, in order; None when the host could not give them in one piece
    /// (then each name left is looked up with [`ArrivingRequest::has_header`], rather than
    /// strip less).
    fn headers(&mut self) -> Option<RequestHeaders>;
}

/// What the host does with the request before it goes on.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Stripping<'c> {
    /// `source.address`, when it was read (an identity header arrived): the peer of a
    /// stream never changes, so the host hands it to capture instead of asking again.
    pub peer_address: Option<Option<Vec<u8>>>,
    /// The headers to remove, each name once, in configuration order.
    pub remove: Vec<&'c str>,
    /// Every value of those headers, as the client sent them: name by name in `remove`'s
    /// order, each name's values in the order they arrived (capture reads them name by name,
    /// so this is all of the arrival order the event can show). The host adds them back to
    /// what capture reads, so the event records the claims.
    pub stripped: Vec<(String, String)>,
}

/// The identity headers of `request` to remove under `identity`.
pub fn untrusted_identity_headers<'c>(
    identity: &'c IdentityConfig,
    request: &mut impl ArrivingRequest,
) -> Stripping<'c> {
    if !identity.strip_untrusted_headers {
        return Stripping::default();
    }
    // Not collected first: this runs on every request, nearly always finding nothing.
    let Some(first) = identity_header_names(identity).position(|name| request.has_header(name)) else {
        return Stripping::default();
    };
    let peer_address = request.peer_address();
    let peer = peer_address.as_deref().and_then(|bytes| std::str::from_utf8(bytes).ok());
    if peer_is_trusted(peer, &identity.trusted_proxies) {
        return Stripping { peer_address: Some(peer_address), ..Stripping::default() };
    }
    // Each name once, in configuration order, from the first one there.
    let mut names: Vec<&'c str> = Vec::new();
    for name in identity_header_names(identity).skip(first) {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    let (remove, stripped) = match request.header_values(names[0]) {
        Some(values) => looked_up_by_name(request, &names, values),
        None => read_from_the_whole_map(request, &names),
    };
    Stripping { peer_address: Some(peer_address), remove, stripped }
}

/// The headers among `names` that are there, and their values, a lookup per name; `names[0]`
/// is there (its lookup found it) with `first_values`.
fn looked_up_by_name<'c>(
    request: &mut impl ArrivingRequest,
    names: &[&'c str],
    first_values: Vec<String>,
) -> (Vec<&'c str>, Vec<(String, String)>) {
    let mut remove = Vec::with_capacity(names.len());
    let mut stripped = Vec::with_capacity(first_values.len());
    let mut values = Some(first_values);
    for (offset, &name) in names.iter().enumerate() {
        if offset > 0 {
            values = request.header_values(name);
        }
        // A host that could not give a name's values still removes it if it is there.
        let present = offset == 0
            || match &values {
                Some(values) => !values.is_empty(),
                None => request.has_header(name),
            };
        if present {
            remove.push(name);
        }
        stripped.extend(values.take().unwrap_or_default().into_iter().map(|value| (name.to_string(), value)));
    }
    (remove, stripped)
}

/// The headers among `names` that are there, and their values, from the whole header map
/// (or, without it, a lookup per name and no values); `names[0]` is there.
fn read_from_the_whole_map<'c>(
    request: &mut impl ArrivingRequest,
    names: &[&'c str],
) -> (Vec<&'c str>, Vec<(String, String)>) {
    let all = request.headers();
    let mut remove = Vec::with_capacity(names.len());
    for (offset, &name) in names.iter().enumerate() {
        let present = offset == 0
            || match &all {
                Some(headers) => headers.get(name).is_some(),
                None => request.has_header(name),
            };
        if present {
            remove.push(name);
        }
    }
    let mut stripped = Vec::new();
    if let Some(all) = all {
        for &name in &remove {
            stripped.extend(all.get_all(name).map(|value| (name.to_string(), value.to_string())));
        }
    }
    (remove, stripped)
}

/// The request headers as they arrived: what the host gives at the end of the stream, plus
/// the identity headers removed before it went on (every host's capture reads these, so the
/// event records the attempt).
pub fn as_arrived(mut headers: RequestHeaders, stripped: &[(String, String)]) -> RequestHeaders {
    for (name, value) in stripped {
        headers.push(name, value);
    }
    headers
}

/// The fake request, answering as Envoy would: tests and fuzz targets decide with it.
#[cfg(any(test, feature = "fuzzing"))]
impl ArrivingRequest for crate::request::host::FakeRequest {
    fn has_header(&mut self, name: &str) -> bool {
        self.headers.iter().any(|(key, _)| key == name)
    }

    fn peer_address(&mut self) -> Option<Vec<u8>> {
        crate::request::host::RequestView::property(self, &["source", "address"])
    }

    fn header_values(&mut self, name: &str) -> Option<Vec<String>> {
        Some(self.headers.iter().filter(|(key, _)| key == name).map(|(_, value)| value.clone()).collect())
    }

    fn headers(&mut self) -> Option<RequestHeaders> {
        Some(crate::request::host::RequestView::request_headers(self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FilterConfig;
    use crate::request::capture::capture_event;
    use crate::request::host::{FakeRequest, RequestView};

    fn config(identity: serde_json::Value) -> FilterConfig {
        FilterConfig::from_json(serde_json::json!({ "identity": identity }).to_string().as_bytes()).unwrap()
    }

    fn default_identity() -> FilterConfig {
        config(serde_json::json!({ "stripUntrustedHeaders": true }))
    }

    /// Counts the host calls a decision makes; `by_name` false: the host cannot look up every
    /// value of a name (the wasm host); `map_whole` false: nor give the header map in one piece.
    struct Counting {
        request: FakeRequest,
        lookups: Vec<String>,
        value_lookups: Vec<String>,
        peer_reads: usize,
        map_reads: usize,
        by_name: bool,
        map_whole: bool,
    }

    impl Counting {
        fn new(request: FakeRequest) -> Self {
            Counting {
                request,
                lookups: Vec::new(),
                value_lookups: Vec::new(),
                peer_reads: 0,
                map_reads: 0,
                by_name: true,
                map_whole: true,
            }
        }

        /// As the wasm host answers: the whole map, no lookup of every value of a name.
        fn without_lookups_by_name(request: FakeRequest) -> Self {
            Counting { by_name: false, ..Counting::new(request) }
        }
    }

    impl ArrivingRequest for Counting {
        fn has_header(&mut self, name: &str) -> bool {
            self.lookups.push(name.to_string());
            self.request.has_header(name)
        }

        fn peer_address(&mut self) -> Option<Vec<u8>> {
            self.peer_reads += 1;
            self.request.peer_address()
        }

        fn header_values(&mut self, name: &str) -> Option<Vec<String>> {
            self.value_lookups.push(name.to_string());
            if self.by_name {
                self.request.header_values(name)
            } else {
                None
            }
        }

        fn headers(&mut self) -> Option<RequestHeaders> {
            self.map_reads += 1;
            self.map_whole.then(|| self.request.request_headers())
        }
    }

    fn request() -> FakeRequest {
        FakeRequest::default()
            .header(":method", "GET")
            .header(":path", "/pacts")
            .property("source.address", b"203.0.113.9:4711")
    }

    #[test]
    fn a_request_without_identity_headers_costs_one_lookup_per_name_and_nothing_else() {
        let config = default_identity();
        let mut host = Counting::new(request().header("authorization", "Bearer x"));
        assert_eq!(untrusted_identity_headers(&config.identity, &mut host), Stripping::default());
        let names: Vec<&str> = identity_header_names(&config.identity).collect();
        assert_eq!(host.lookups, names, "each configured name once");
        assert_eq!((host.peer_reads, host.map_reads), (0, 0), "neither the peer nor the map is read");
    }

    fn forged() -> FakeRequest {
        request()
            .header("x-user-id", "42")
            .header("x-forwarded-email", "mallory@example.com")
            .header("x-forwarded-email", "")
            .header("x-other", "kept")
    }

    /// Name by name in configuration order, each name's values in the order they arrived.
    fn forged_stripped() -> Vec<(String, String)> {
        [("x-forwarded-email", "mallory@example.com"), ("x-forwarded-email", ""), ("x-user-id", "42")]
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .to_vec()
    }

    #[test]
    fn headers_from_an_untrusted_peer_are_removed_and_every_value_kept_looked_up_by_name() {
        let config = default_identity();
        let mut host = Counting::new(forged());
        let stripping = untrusted_identity_headers(&config.identity, &mut host);
        assert_eq!(stripping.remove, ["x-forwarded-email", "x-user-id"], "configuration order, each once");
        assert_eq!(stripping.stripped, forged_stripped());
        assert_eq!(stripping.peer_address, Some(Some(b"203.0.113.9:4711".to_vec())), "read once, handed on");
        assert_eq!((host.peer_reads, host.map_reads), (1, 0), "the whole map is not read");
        assert_eq!(host.lookups, ["x-forwarded-email"], "found at the first name");
        let names: Vec<&str> = identity_header_names(&config.identity).collect();
        assert_eq!(host.value_lookups, names, "every name's values looked up once");
    }

    #[test]
    fn a_host_without_lookups_by_name_reads_the_whole_map_once_and_strips_the_same() {
        let config = default_identity();
        let mut host = Counting::without_lookups_by_name(forged());
        let stripping = untrusted_identity_headers(&config.identity, &mut host);
        assert_eq!(stripping.remove, ["x-forwarded-email", "x-user-id"]);
        assert_eq!(stripping.stripped, forged_stripped(), "the same values in the same order as by name");
        assert_eq!((host.peer_reads, host.map_reads), (1, 1));
        assert_eq!(host.lookups, ["x-forwarded-email"], "the map answers for the names after the first found");
        assert_eq!(host.value_lookups, ["x-forwarded-email"], "asked once, then the map");
    }

    #[test]
    fn a_name_whose_values_the_host_cannot_give_is_still_removed_if_there() {
        struct FirstOnly(Counting);
        impl ArrivingRequest for FirstOnly {
            fn has_header(&mut self, name: &str) -> bool {
                self.0.has_header(name)
            }
            fn peer_address(&mut self) -> Option<Vec<u8>> {
                self.0.peer_address()
            }
            fn header_values(&mut self, name: &str) -> Option<Vec<String>> {
                (name == "x-forwarded-email").then(|| self.0.header_values(name)).flatten()
            }
            fn headers(&mut self) -> Option<RequestHeaders> {
                self.0.headers()
            }
        }
        let config = default_identity();
        let mut host = FirstOnly(Counting::new(forged()));
        let stripping = untrusted_identity_headers(&config.identity, &mut host);
        assert_eq!(stripping.remove, ["x-forwarded-email", "x-user-id"], "nothing less is removed");
        assert_eq!(stripping.stripped.len(), 2, "only the values the host gave: {:?}", stripping.stripped);
    }

    #[test]
    fn an_empty_header_is_there_and_is_removed() {
        let config = default_identity();
        let stripping = untrusted_identity_headers(&config.identity, &mut request().header("x-auth-request-user", ""));
        assert_eq!(stripping.remove, ["x-auth-request-user"]);
        assert_eq!(stripping.stripped, [("x-auth-request-user".to_string(), String::new())]);
    }

    #[test]
    fn a_trusted_proxy_keeps_its_headers_and_the_peer_is_handed_on() {
        let config = config(serde_json::json!({ "stripUntrustedHeaders": true, "trustedProxies": ["203.0.113.0/24"] }));
        let mut host = Counting::new(request().header("x-forwarded-email", "alice@example.com"));
        let stripping = untrusted_identity_headers(&config.identity, &mut host);
        assert!(stripping.remove.is_empty() && stripping.stripped.is_empty(), "{stripping:?}");
        assert_eq!(stripping.peer_address, Some(Some(b"203.0.113.9:4711".to_vec())));
        assert_eq!(host.map_reads, 0, "nothing to record, so the map is not read");
    }

    #[test]
    fn a_peer_that_is_not_an_address_is_not_trusted() {
        let config = config(serde_json::json!({ "stripUntrustedHeaders": true, "trustedProxies": ["0.0.0.0/0"] }));
        let mut arriving = FakeRequest::default().header("x-forwarded-email", "alice@example.com");
        let stripping = untrusted_identity_headers(&config.identity, &mut arriving);
        assert_eq!(stripping.remove, ["x-forwarded-email"]);
        assert_eq!(stripping.peer_address, Some(None), "read, and absent");
    }

    #[test]
    fn nothing_is_removed_when_stripping_is_off() {
        let config = config(serde_json::json!({ "stripUntrustedHeaders": false }));
        let mut host = Counting::new(request().header("x-forwarded-email", "mallory@example.com"));
        assert_eq!(untrusted_identity_headers(&config.identity, &mut host), Stripping::default());
        assert!(host.lookups.is_empty(), "no host call at all");
    }

    #[test]
    fn a_name_configured_twice_is_removed_once() {
        let config = config(serde_json::json!({
            "stripUntrustedHeaders": true,
            "emailHeaders": ["x-a", "x-b"],
            "userIdHeaders": ["x-a", "x-c"]
        }));
        let stripping =
            untrusted_identity_headers(&config.identity, &mut request().header("x-c", "1").header("x-a", "a"));
        assert_eq!(stripping.remove, ["x-a", "x-c"]);
        assert_eq!(stripping.stripped.len(), 2, "each value once: {:?}", stripping.stripped);
    }

    #[test]
    fn without_the_whole_map_each_name_left_is_looked_up_and_nothing_less_is_removed() {
        let config = default_identity();
        let mut host = Counting::without_lookups_by_name(
            request().header("x-forwarded-email", "m@example.com").header("x-auth-request-user", "m"),
        );
        host.map_whole = false;
        let stripping = untrusted_identity_headers(&config.identity, &mut host);
        assert_eq!(stripping.remove, ["x-forwarded-email", "x-auth-request-user"]);
        assert!(stripping.stripped.is_empty(), "no map, no values to record");
        let names: Vec<&str> = identity_header_names(&config.identity).collect();
        assert_eq!(host.lookups.len(), names.len(), "the first name found once, every later name once");
    }

    /// The event of a stripped request records the attempt, as the hosts add the values
    /// back to what capture reads.
    #[test]
    fn the_stripped_values_become_untrusted_claims_in_the_event() {
        let config = default_identity();
        let mut arriving = request().header("x-forwarded-email", "mallory@example.com");
        let stripping = untrusted_identity_headers(&config.identity, &mut arriving);
        let mut seen = FakeRequest { headers: Vec::new(), ..arriving.clone() };
        seen.headers =
            arriving.headers.iter().filter(|(name, _)| !stripping.remove.contains(&name.as_str())).cloned().collect();
        seen.headers.extend(stripping.stripped.iter().cloned());
        let event = capture_event(&seen, &config, None, [1; 16]);
        assert_eq!(event.user_email, None, "an untrusted header is never the identity");
        let claims: Vec<(&str, &str)> =
            event.untrusted_identity.iter().map(|claim| (claim.header.as_str(), claim.value.as_str())).collect();
        assert_eq!(claims, [("x-forwarded-email", "mallory@example.com")]);
    }
}
