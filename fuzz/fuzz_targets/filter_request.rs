//! The filter's per-request path on arbitrary requests: method, path and query, headers
//! (identity headers, basic auth, x-forwarded-for among them), peer address, verified JWT
//! claims or raw metadata bytes, response properties, and a few configurations (trusted
//! proxies, bounds, routes), through the host fake into capture, typing, identity,
//! redaction, bounds and the JSON writer. Besides "no panic", every run checks what a
//! client must never be able to do to the trail.
#![no_main]

use arbitrary::Arbitrary;
use audit_event::event::MAX_EVENT_BYTES;
use audit_event::AuditEvent;
use audit_filter_core::fuzzing::{
    capture_event, metadata, write_within_limit, Claim, FakeRequest, FilterConfig, MAX_UNTRUSTED_CLAIMS,
};
use base64::Engine;
use libfuzzer_sys::fuzz_target;

/// Header names the filter reads; the fuzzer picks from these or makes its own.
const KNOWN_HEADERS: &[&str] = &[
    ":authority",
    "user-agent",
    "referer",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-email",
    "x-auth-request-email",
    "x-user-id",
    "x-auth-request-user",
    "authorization",
    "x-api-key",
    "accept",
];

/// Configurations the request is captured with: defaults, a trusted proxy network with
/// the smallest field bound and more hops, and fingerprinted API keys.
const CONFIGS: &[&str] = &[
    "{}",
    r#"{"identity": {"trustedProxies": ["10.0.0.0/8", "::1"], "xffTrustedHops": 2}, "limits": {"maxFieldBytes": 64}}"#,
    r#"{"identity": {"sources": ["headers", "basic-auth", "jwt"], "trustedProxies": ["0.0.0.0/0"]},
        "redaction": {"tokenFingerprint": {"apiKeyHeaders": ["x-api-key"]}}}"#,
];

#[derive(Debug, Arbitrary)]
enum HeaderName {
    Known(u8),
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Metadata {
    None,
    Claims(Vec<(String, String)>),
    NumericSub(f64),
    Raw(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
struct Request {
    config: u8,
    method: Option<String>,
    path: Option<String>,
    headers: Vec<(HeaderName, String)>,
    basic_auth: Option<(String, String)>,
    peer: Option<String>,
    metadata: Metadata,
    response_code: Option<i64>,
    duration: Option<i64>,
    time: Option<i64>,
    now: i64,
    random: [u8; 16],
}

/// A stream's duration, in nanoseconds, folded into one day. Longer ones have more
/// significant digits in milliseconds than serde_json's default float parser reads back
/// exactly: the collector would store the last digit rounded (the first crash this target
/// found, 1080863910568.9056 ms stored as ...9055; pinned in capture's unit tests).
fn within_a_day(nanos: i64) -> i64 {
    nanos.rem_euclid(86_400_000_000_000)
}

thread_local! {
    /// Parsed once: compiling the route table on every input made the target ~40x slower.
    static PARSED_CONFIGS: Vec<FilterConfig> = CONFIGS
        .iter()
        .map(|json| FilterConfig::from_json(json.as_bytes()).unwrap_or_else(|error| panic!("{json}: {error}")))
        .collect();
}

fuzz_target!(|input: Request| {
    PARSED_CONFIGS.with(|configs| capture_and_check(&configs[usize::from(input.config) % configs.len()], &input));
});

/// The fake host's view of `input`, with `password` as the basic-auth password when the
/// input has basic auth.
fn fake_request(input: &Request, password: &str) -> FakeRequest {
    let mut request = FakeRequest { now_unix_nanos: input.now, ..FakeRequest::default() };
    if let Some(method) = &input.method {
        request = request.header(":method", method);
    }
    if let Some(path) = &input.path {
        request = request.header(":path", path);
    }
    if let Some((user, _)) = &input.basic_auth {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        request = request.header("authorization", &format!("Basic {encoded}"));
    }
    for (name, value) in &input.headers {
        let name = match name {
            HeaderName::Known(index) => KNOWN_HEADERS[usize::from(*index) % KNOWN_HEADERS.len()].to_string(),
            HeaderName::Other(name) => name.to_ascii_lowercase(),
        };
        request = request.header(&name, value);
    }
    if let Some(peer) = &input.peer {
        request = request.property("source.address", peer.as_bytes());
    }
    match &input.metadata {
        Metadata::None => {}
        Metadata::Claims(claims) => {
            let claims: Vec<(&str, Claim<'_>)> =
                claims.iter().map(|(name, value)| (name.as_str(), Claim::Text(value))).collect();
            request = request.property("metadata", &metadata("envoy.filters.http.jwt_authn", "jwt_payload", &claims));
        }
        Metadata::NumericSub(sub) => {
            let claims = [("sub", Claim::Number(*sub))];
            request = request.property("metadata", &metadata("envoy.filters.http.jwt_authn", "jwt_payload", &claims));
        }
        Metadata::Raw(bytes) => request = request.property("metadata", bytes),
    }
    for (name, value) in [
        ("response.code", input.response_code),
        ("request.duration", input.duration.map(within_a_day)),
        ("request.time", input.time),
    ] {
        if let Some(value) = value {
            request = request.int_property(name, value);
        }
    }
    request
}

fn capture_and_check(config: &FilterConfig, input: &Request) {
    let password = input.basic_auth.as_ref().map_or("", |(_, password)| password.as_str());
    let request = fake_request(input, password);
    let mut event = capture_event(&request, config, None, input.random);
    let max = config.limits.max_field_bytes;
    let payload = &event.payload;
    for (field, value) in [
        ("path", Some(&payload.path)),
        ("queryString", Some(&payload.query_string)),
        ("method", Some(&payload.method)),
        ("userAgent", payload.user_agent.as_ref()),
        ("referer", payload.referer.as_ref()),
        ("host", payload.host.as_ref()),
        ("requestId", payload.request_id.as_ref()),
        ("user_email", event.user_email.as_ref()),
        ("user_id", event.user_id.as_ref()),
        ("user_name", event.user_name.as_ref()),
    ] {
        assert!(value.is_none_or(|value| value.len() <= max), "{field} is over the bound of {max}");
    }
    assert!(event.untrusted_identity.len() <= MAX_UNTRUSTED_CLAIMS);
    assert_eq!(event.alerts.is_empty(), event.untrusted_identity.is_empty(), "an untrusted claim always alerts");

    let mut json = Vec::new();
    write_within_limit(&mut json, &mut event)
        .unwrap_or_else(|error| panic!("an event that cannot be written: {error}"));
    assert!(json.len() <= MAX_EVENT_BYTES, "{} bytes: over the collector's limit", json.len());
    let parsed: AuditEvent = serde_json::from_slice(&json).unwrap_or_else(|error| panic!("unreadable JSON: {error}"));
    // NaN never comes out of capture (a duration is an integer of nanoseconds), and a duration
    // within a day has few enough digits to survive serde_json's float parsing exactly.
    assert_eq!(parsed, event, "the JSON is not the event");
    assert_eq!(json, serde_json::to_vec(&event).unwrap_or_default(), "the JSON is not serde_json's");
    // The password cannot be in the event if the event does not depend on it.
    if input.basic_auth.is_some() {
        let other = fake_request(input, &format!("{password}-other"));
        let mut other_event = capture_event(&other, config, None, input.random);
        let mut other_json = Vec::new();
        write_within_limit(&mut other_json, &mut other_event).unwrap_or_else(|error| panic!("{error}"));
        assert!(other_json == json, "the event depends on the basic-auth password");
    }
}
