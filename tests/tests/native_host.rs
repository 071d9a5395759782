//! The native Envoy dynamic module (`filter/native`) in the pinned Envoy: it loads with the
//! ABI version it pins, stores the very events the wasm filter stores for the same requests
//! (uuid, times, request id and sender aside), and publishes the same stats. The rest of the
//! suite runs against it with `AUDIT_FILTER_HOST=native` (`make test` does both).

// Test code: a panic here is a failed test with its message, not a crashed proxy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use audit_e2e::client::{send, wait_for_trail};
use audit_e2e::filter_host::FilterHost;
use audit_e2e::jwt::{claim_headers, jwt_authn_filter, now_seconds, SigningKey, AUDIENCE, ISSUER};
use audit_e2e::{AuditStack, StackOptions};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::Value;

const TRAIL_TIMEOUT: Duration = Duration::from_secs(30);

fn options(host: FilterHost) -> StackOptions {
    StackOptions {
        filter_host: host,
        filter_config_patch: Some(serde_json::json!({
            "batch": {"flushIntervalMs": 200},
            "redaction": {"tokenFingerprint": {"apiKeyHeaders": ["x-api-key"]}}
        })),
        envoy_env: vec![("AUDIT_FINGERPRINT_KEY".into(), "a-fixed-fingerprint-key".into())],
        ..StackOptions::default()
    }
}

/// Method, path, headers and body of one request.
type Request<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, Option<&'a str>);

/// Requests that reach every part of capture: query redaction, each identity source and the
/// untrusted one, forwarded addresses, token fingerprints, the route table, the sidecar's own
/// API, a local 404 and a request body. Each is told apart by its user agent.
fn send_the_requests(stack: &AuditStack) -> usize {
    let url = stack.envoy_url();
    let basic = format!("Basic {}", STANDARD.encode("alice:not-stored"));
    let read = format!("Bearer {}", stack.read_token());
    let requests: Vec<Request> = vec![
        ("GET", "/pacticipants?page=2&token=abc".into(), vec![], None),
        ("GET", "/".into(), vec![("x-forwarded-email", "forged@example.com"), ("x-user-id", "42")], None),
        ("GET", "/pacticipants/Foo".into(), vec![("authorization", &basic)], None),
        ("GET", "/pacticipants/Bar".into(), vec![("x-api-key", "key-1"), ("x-forwarded-for", "203.0.113.9")], None),
        ("GET", "/nothing/here".into(), vec![("referer", "https://ui.example/x?access_token=t&ok=1")], None),
        ("DELETE", "/pacticipants/Foo".into(), vec![("accept", "application/hal+json")], None),
        ("PUT", "/pacticipants/Baz".into(), vec![("content-type", "application/json")], Some(r#"{"name":"Baz"}"#)),
        ("GET", "/audit?size=1".into(), vec![("authorization", &read)], None),
    ];
    for (index, (method, path, headers, body)) in requests.iter().enumerate() {
        let agent = format!("e2e-same-{index}");
        let mut headers = headers.clone();
        headers.push(("user-agent", &agent));
        send(method, &format!("{url}{path}"), &headers, *body).unwrap();
    }
    requests.len()
}

/// The stored events in request order, without what differs between runs by design.
fn comparable_events(stack: &AuditStack, count: usize) -> Vec<Value> {
    let events = wait_for_trail(&stack.envoy_url(), stack.read_token(), TRAIL_TIMEOUT, |events| {
        events.iter().filter(|event| agent(event).starts_with("e2e-same-")).count() == count
    })
    .unwrap();
    let mut comparable: Vec<Value> = events
        .iter()
        .filter(|event| agent(event).starts_with("e2e-same-"))
        .map(|event| {
            let mut value = serde_json::to_value(event).unwrap();
            let object = value.as_object_mut().unwrap();
            for varying in ["uuid", "timestamp", "sender", "chain"] {
                object.remove(varying);
            }
            // The request id is Envoy's, and the host names the listener's port: both per run.
            let payload = object["payload"].as_object_mut().unwrap();
            payload.remove("requestId");
            payload.remove("host");
            if let Some(response) = object.get_mut("response").and_then(Value::as_object_mut) {
                response.remove("durationMs");
            }
            value
        })
        .collect();
    comparable.sort_by_key(|event| event["payload"]["userAgent"].as_str().unwrap_or_default().to_string());
    comparable
}

fn agent(event: &audit_event::AuditEvent) -> &str {
    event.payload.user_agent.as_deref().unwrap_or_default()
}

#[test]
fn both_hosts_store_the_same_events_for_the_same_requests() {
    let wasm = AuditStack::start(options(FilterHost::Wasm)).expect("the wasm stack starts");
    let count = send_the_requests(&wasm);
    let from_wasm = comparable_events(&wasm, count);
    drop(wasm);

    let native = AuditStack::start(options(FilterHost::Native)).expect("the native stack starts");
    send_the_requests(&native);
    let from_native = comparable_events(&native, count);

    assert_eq!(from_native.len(), count);
    for (wasm_event, native_event) in from_wasm.iter().zip(&from_native) {
        assert_eq!(native_event, wasm_event, "the native host's event differs from the wasm host's");
    }
    // The forged identity headers were recorded as claims, not believed.
    let forged = &from_native[1];
    assert_eq!(forged["user_email"], Value::Null);
    assert_eq!(forged["untrusted_identity"][0]["value"], "forged@example.com");
}

#[test]
fn envoy_loads_the_module_with_the_abi_version_it_pins_and_publishes_its_stats() {
    let stack = AuditStack::start(options(FilterHost::Native)).expect("the native stack starts");
    assert!(
        stack.envoy_log().contains("Dynamic module ABI version v0.2.0 matched"),
        "Envoy did not log the ABI version as matched:\n{}",
        stack.envoy_log()
    );
    let count = send_the_requests(&stack);
    comparable_events(&stack, count);
    // Stats are published on Envoy's main thread after each answer and tick.
    let deadline = Instant::now() + TRAIL_TIMEOUT;
    let prefix = FilterHost::Native.stats_prefix();
    loop {
        let stats = send("GET", &format!("{}/stats", stack.admin_url()), &[], None).unwrap().body;
        let stat = |name: &str| -> Option<u64> {
            let line = stats.lines().find(|line| line.starts_with(&format!("{prefix}audit_sidecar.{name}:")))?;
            line.rsplit(' ').next()?.trim().parse().ok()
        };
        // The trail reads that waited for the events went through Envoy too: captured as well.
        let counted = u64::try_from(count).unwrap();
        let (captured, sent, buffered) = (stat("captured"), stat("sent"), stat("buffered_events"));
        if captured.is_some_and(|captured| captured >= counted) && sent == captured && buffered == Some(0) {
            assert_eq!(stat("hook_panics"), Some(0));
            assert_eq!(stat("dropped"), Some(0));
            break;
        }
        assert!(Instant::now() < deadline, "stats never showed at least {count} captured, all sent:\n{stats}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A Lua filter just before the router: answers with the `x-jwt-email` the service got.
fn what_the_service_sees() -> serde_yaml::Value {
    let lua = r#"
function envoy_on_request(request)
  local seen = {}
  for key, value in pairs(request:headers()) do
    if key == "x-jwt-email" then table.insert(seen, value) end
  end
  request:streamInfo():dynamicMetadata():set("e2e.seen", "jwt_email", #seen > 0 and table.concat(seen, ",") or "(none)")
end
function envoy_on_response(response)
  local seen = response:streamInfo():dynamicMetadata():get("e2e.seen") or {}
  response:headers():add("x-service-saw-jwt-email", seen["jwt_email"] or "(unknown)")
end
"#;
    serde_yaml::to_value(serde_json::json!({
        "name": "envoy.filters.http.lua",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": lua},
        },
    }))
    .unwrap()
}

/// What `jwt_authn`'s `claim_to_headers` does with a claim header the client sent itself, in
/// the pinned Envoy, and that the service never gets a client's claim header through the
/// native filter (which removes them before `jwt_authn` runs).
#[test]
fn claim_headers_reach_the_service_only_as_jwt_authn_set_them() {
    let keys = tempfile::tempdir().unwrap();
    let trusted = SigningKey::generate(&keys.path().join("trusted.pem"), "k1").unwrap();
    let claims = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "iat": now_seconds(), "exp": now_seconds() + 600,
        "sub": "4711", "email": "jwt-user@example.com",
    });
    let token = format!("Bearer {}", trusted.sign(&claims).unwrap());
    let mut seen = Vec::new();
    for host in [FilterHost::Wasm, FilterHost::Native] {
        let stack = AuditStack::start(StackOptions {
            filter_host: host,
            extra_http_filters: vec![jwt_authn_filter(&trusted.jwks().unwrap(), "verified_claims").unwrap()],
            http_filters_after_audit: vec![what_the_service_sees()],
            filter_config_patch: Some(serde_json::json!({"identity": {"jwt": {"claimHeaders": claim_headers()}}})),
            ..StackOptions::default()
        })
        .expect("the stack starts");
        let url = format!("{}/pacticipants", stack.envoy_url());
        let forged = ("x-jwt-email", "forged@example.com");
        let with_token = send("GET", &url, &[("authorization", &token), forged], None).unwrap();
        let without = send("GET", &url, &[forged], None).unwrap();
        seen.push((
            host,
            with_token.header("x-service-saw-jwt-email").unwrap_or_default().to_string(),
            without.header("x-service-saw-jwt-email").unwrap_or_default().to_string(),
        ));
    }
    assert_eq!(
        seen,
        [
            // jwt_authn itself (measured in the pinned 1.40): for a verified token its claim
            // replaces the client's header; without a token, where a rule applies, it removes
            // the client's header too.
            (FilterHost::Wasm, "jwt-user@example.com".to_string(), "(none)".to_string()),
            // The native filter, first in the chain, removes the client's header whatever
            // jwt_authn's rules say, so a route jwt_authn skips cannot carry a forged claim.
            (FilterHost::Native, "jwt-user@example.com".to_string(), "(none)".to_string()),
        ]
    );
}
