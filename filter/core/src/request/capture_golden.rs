//! Capture's output pinned over thousands of generated requests, so that work on the
//! per-request path (making it cheaper) provably changes no event. Each case is a request
//! made from a seeded generator (methods, broker paths with encoded and long parameters,
//! sensitive queries, identity headers, credentials, forwarded-for chains, peers, verified
//! JWT claims, response properties present or not) captured under one of several
//! configurations; `golden/capture_events.txt` holds a digest of each case's event JSON,
//! as the filter wrote it before the work began.
//!
//! A deliberate change of the event regenerates the file: `GOLDEN_WRITE=1 cargo test -p
//! audit-filter-core capture_golden`, and the diff shows how many cases changed.
//!
//! The digests are the single truth for every host: a host's tests (feature `golden`) run
//! the same cases through [`golden_mismatches`], presenting each fake request the way that
//! host's view of Envoy presents a request, and must find the same events.

// Test support only (tests, and the hosts' tests through feature `golden`), never in a
// shipped build: a generator that cannot make its cases is a failed test.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use audit_event::AuditEvent;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::config::FilterConfig;
use crate::request::bounds::write_within_limit;
use crate::request::capture::capture_event;
use crate::request::fingerprint::FingerprintKey;
use crate::request::host::{FakeRequest, RequestView};
use crate::request::metadata::encode::{metadata, Claim};

const CASES: u64 = 3000;
const GOLDEN: &str = "golden/capture_events.txt";

/// Defaults; trusted proxies with the smallest bound; headers first and fingerprinted API
/// keys; basic auth only; JWT with custom claim names and a sensitive query parameter.
const CONFIGS: &[&str] = &[
    "{}",
    r#"{"identity": {"trustedProxies": ["10.0.0.0/8", "::1"], "xffTrustedHops": 2}, "limits": {"maxFieldBytes": 64}}"#,
    r#"{"identity": {"sources": ["headers", "basic-auth", "jwt"], "trustedProxies": ["0.0.0.0/0"]},
        "redaction": {"tokenFingerprint": {"apiKeyHeaders": ["x-api-key"]}}}"#,
    r#"{"identity": {"sources": ["basic-auth"], "xffTrustedHops": 1}}"#,
    r#"{"identity": {"jwt": {"emailClaim": "mail", "userIdClaim": "uid"}},
        "redaction": {"sensitiveQueryParams": ["q", "state"]}, "limits": {"maxFieldBytes": 128}}"#,
];

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get", "PURGE"];

/// Path templates; `{}` becomes a generated segment.
const PATHS: &[&str] = &[
    "/",
    "/pacticipants",
    "/pacticipants/{}",
    "/pacticipants/{}/versions/{}",
    "/pacticipants/{}/versions/{}/tags/{}",
    "/pacts/provider/{}/consumer/{}/version/{}",
    "/pacts/provider/{}/consumer/{}/latest",
    "/pacts/provider/{}/consumer/{}/latest/{}",
    "/pacts/provider/{}/for-verification",
    "/matrix",
    "/can-i-deploy",
    "/environments/{}",
    "/webhooks/{}/execute",
    "/settings/tokens/{}/regenerate",
    "/audit",
    "/audit/ui/",
    "/audit/ui/{}",
    "/healthz",
    "/unknown/{}/{}",
    "//double//slash/",
];

const SEGMENTS: &[&str] = &[
    "Foo",
    "Foo%20Bar",
    "caf%C3%A9",
    "1.0.0",
    "a%2Fb",
    "%ZZbad",
    "日本",
    "with\"quote",
    "back\\slash",
    "tab\there",
    "",
];

const HEADERS: &[&str] = &[
    ":authority",
    "user-agent",
    "referer",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-email",
    "x-auth-request-email",
    "x-user-id",
    "x-auth-request-user",
    "x-api-key",
    "accept",
    "content-type",
    "cookie",
    "x-other",
];

const VALUES: &[&str] = &[
    "alice@example.com",
    "  ",
    "42",
    "curl/8.5",
    "text/html",
    "application/hal+json",
    "application/json",
    "203.0.113.9, 10.0.0.5",
    "http://ui.example/cb?code=oauth-code&x=1",
    "2f7c1c9e-5b0e-4a53-9a43-7b8f2d1e6a10",
    "ctl\u{1}char",
    "é",
];

const PEERS: &[&str] = &["10.0.0.7:51234", "127.0.0.1:1", "[::1]:443", "203.0.113.50:9", "not-an-address", ""];

/// splitmix64: a small, fixed generator, so the cases never change under the golden file.
struct Cases(u64);

impl Cases {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    /// A value from `items`, sometimes repeated past every bound.
    fn text(&mut self, items: &[&str]) -> String {
        let value = self.pick(items);
        if self.chance(10) {
            value.repeat(1 + self.below(400))
        } else {
            value.to_string()
        }
    }
}

fn path(cases: &mut Cases) -> String {
    let mut path = String::new();
    for (index, part) in cases.pick(PATHS).split("{}").enumerate() {
        if index > 0 {
            path.push_str(&cases.text(SEGMENTS));
        }
        path.push_str(part);
    }
    if cases.chance(40) {
        let names = ["page", "token", "password", "q", "state", "api_key", "x", ""];
        let count = 1 + cases.below(4);
        let pairs: Vec<String> =
            (0..count).map(|_| format!("{}={}", cases.pick(&names), cases.text(VALUES).replace(' ', "%20"))).collect();
        path = format!("{path}?{}", pairs.join("&"));
    }
    path
}

fn request(cases: &mut Cases) -> FakeRequest {
    let mut request = FakeRequest { now_unix_nanos: 1_575_929_724_864_123_456, ..FakeRequest::default() };
    if cases.chance(95) {
        request = request.header(":method", cases.pick(METHODS));
    }
    if cases.chance(95) {
        request = request.header(":path", &path(cases));
    }
    match cases.below(5) {
        0 => {
            let credentials = format!("{}:{}", cases.text(VALUES), "hunter2");
            request = request.header("authorization", &format!("Basic {}", STANDARD.encode(credentials)));
        }
        1 => request = request.header("authorization", "Bearer tok-abc-123"),
        2 => request = request.header("authorization", "Basic !!not-base64"),
        _ => {}
    }
    for _ in 0..cases.below(8) {
        let name = cases.pick(HEADERS);
        request = request.header(name, &cases.text(VALUES));
    }
    if cases.chance(85) {
        request = request.property("source.address", cases.pick(PEERS).as_bytes());
    }
    if cases.chance(30) {
        let email = cases.text(VALUES);
        let claims = match cases.below(3) {
            0 => vec![("email", Claim::Text(&email)), ("sub", Claim::Text("7"))],
            1 => vec![("mail", Claim::Text(&email)), ("uid", Claim::Number(12.0)), ("admin", Claim::Bool(true))],
            _ => vec![("sub", Claim::Number(1.5))],
        };
        request = request.property("metadata", &metadata("envoy.filters.http.jwt_authn", "jwt_payload", &claims));
    }
    for (name, value) in [
        ("request.time", 1_575_929_724_000_000_000 + (cases.next() % 10_000_000_000) as i64),
        ("request.duration", (cases.next() % 86_400_000_000_000) as i64),
        ("response.code", [200, 201, 204, 401, 404, 503, 0, 70_000][cases.below(8)]),
    ] {
        if cases.chance(85) {
            request = request.int_property(name, value);
        }
    }
    request
}

/// How a host captures a case: the generated request (as Envoy would give it), the
/// configuration, the fingerprint key and the uuid's random bytes, to the event.
pub type Capture<'a> = dyn FnMut(&FakeRequest, &FilterConfig, Option<&FingerprintKey>, [u8; 16]) -> AuditEvent + 'a;

/// Capture as the core does it, reading the fake request directly.
pub fn core_capture(
    request: &FakeRequest,
    config: &FilterConfig,
    key: Option<&FingerprintKey>,
    random: [u8; 16],
) -> AuditEvent {
    capture_event(request as &dyn RequestView, config, key, random)
}

/// The digest of each case's event JSON, one line per case: `<case> <sha-256 prefix>`.
fn digests(capture: &mut Capture<'_>) -> (Vec<String>, Vec<String>) {
    let configs: Vec<FilterConfig> = CONFIGS
        .iter()
        .map(|json| FilterConfig::from_json(json.as_bytes()).unwrap_or_else(|err| panic!("{json}: {err}")))
        .collect();
    let key = FingerprintKey::new(b"golden-key");
    let mut cases = Cases(18);
    let (mut lines, mut events) = (Vec::new(), Vec::new());
    for case in 0..CASES {
        let request = request(&mut cases);
        let config = &configs[cases.below(configs.len())];
        let fingerprint = cases.chance(50).then_some(&key);
        let mut random = [0u8; 16];
        random[..8].copy_from_slice(&cases.next().to_le_bytes());
        random[8..].copy_from_slice(&cases.next().to_le_bytes());
        let mut event = capture(&request, config, fingerprint, random);
        let mut json = Vec::new();
        write_within_limit(&mut json, &mut event).unwrap_or_else(|err| panic!("case {case}: {err}"));
        let digest: String = Sha256::digest(&json)[..12].iter().map(|byte| format!("{byte:02x}")).collect();
        lines.push(format!("{case} {digest}"));
        events.push(String::from_utf8_lossy(&json).into_owned());
    }
    (lines, events)
}

/// The cases whose event, captured by `capture`, is not the one in the golden file: each
/// case number with the event it gave now (empty: every event is the same byte for byte).
pub fn golden_mismatches(capture: &mut Capture<'_>) -> Vec<(usize, String)> {
    let golden = include_str!("../../golden/capture_events.txt");
    let golden: Vec<&str> = golden.lines().collect();
    let (lines, events) = digests(capture);
    let mut mismatches: Vec<(usize, String)> = Vec::new();
    for (case, line) in lines.iter().enumerate() {
        if golden.get(case) != Some(&line.as_str()) {
            mismatches.push((case, events[case].clone()));
        }
    }
    if golden.len() != lines.len() {
        mismatches.push((lines.len(), format!("{GOLDEN} has {} cases, the generator {}", golden.len(), lines.len())));
    }
    mismatches
}

#[test]
fn the_core_capture_of_the_fake_request_gives_no_mismatch() {
    assert_eq!(golden_mismatches(&mut core_capture).first(), None);
}

#[test]
fn capture_golden_every_generated_request_gives_the_event_it_gave_before() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(GOLDEN);
    let (lines, events) = digests(&mut core_capture);
    for marker in [
        "\"truncated_fields\"",
        "\"untrusted_identity\"",
        "\"token_fingerprint\":\"",
        "\"identity_source\":\"jwt\"",
        "\"identity_source\":\"header:",
        "basic-auth",
        "\"response\":null",
        "PactBroker::Api::Resources::Pact\"",
        "PactBroker::UI::",
        "=***",
        "\"invisible_characters\"",
    ] {
        let count = events.iter().filter(|event| event.contains(marker)).count();
        assert!(count >= 10, "only {count} generated events contain {marker}: the cases no longer cover it");
    }
    if std::env::var_os("GOLDEN_WRITE").is_some() {
        std::fs::write(&path, lines.join("\n") + "\n").unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        return;
    }
    let golden = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let golden: Vec<&str> = golden.lines().collect();
    assert_eq!(golden.len(), lines.len(), "{GOLDEN} has another number of cases");
    let changed: Vec<usize> = (0..lines.len()).filter(|&case| golden[case] != lines[case]).collect();
    assert!(
        changed.is_empty(),
        "{} of {CASES} events changed (cases {:?}...); the first, now: {}",
        changed.len(),
        &changed[..changed.len().min(10)],
        events[changed[0]]
    );
}
