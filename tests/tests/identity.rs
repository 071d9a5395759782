//! Who made a request, proven in real Envoy: claims that Envoy's `jwt_authn` filter
//! verified become the event's identity (read by the audit filter from the dynamic
//! metadata), a forged token is refused by Envoy and still audited, tokens are recorded
//! only as keyed fingerprints, and the client address honours trusted proxy hops.
//! The trust boundary: identity headers count only from a configured trusted proxy; from
//! anyone else they are recorded as an attempt (and removed before the service sees
//! them), and the basic-auth name the client presented is the one recorded. Oversized
//! fields are stored cut, with the cut said.

// Test code: a panic here is a failed test with its message, not a crashed proxy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use audit_e2e::client::{send, wait_for_trail};
use audit_e2e::jwt::{claim_headers, hmac_sha256, jwt_authn_filter, now_seconds, SigningKey, AUDIENCE, ISSUER};
use audit_e2e::{AuditStack, StackOptions};
use audit_event::trust::{UntrustedClaim, ALERT_UNTRUSTED_IDENTITY, TRUNCATION_MARKER};
use audit_event::{AuditEvent, Outcome};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

const TRAIL_TIMEOUT: Duration = Duration::from_secs(30);
const FINGERPRINT_KEY: &str = "e2e-fingerprint-key-0123456789";

fn event_by_agent<'a>(events: &'a [AuditEvent], agent: &str) -> &'a AuditEvent {
    let matching: Vec<&AuditEvent> = events.iter().filter(|e| e.payload.user_agent.as_deref() == Some(agent)).collect();
    assert_eq!(matching.len(), 1, "events with user agent {agent}: {matching:#?}");
    matching[0]
}

fn expected_fingerprint(token: &str) -> String {
    let mac = hmac_sha256(FINGERPRINT_KEY, token).unwrap();
    format!("hmac-sha256:{}", URL_SAFE_NO_PAD.encode(&mac[..16]))
}

#[test]
fn verified_jwt_claims_are_the_identity_and_a_forged_token_is_refused_and_audited() {
    let keys = tempfile::tempdir().unwrap();
    let trusted = SigningKey::generate(&keys.path().join("trusted.pem"), "k1").unwrap();
    let forger = SigningKey::generate(&keys.path().join("forger.pem"), "k1").unwrap(); // same kid, other key
    let stack = AuditStack::start(StackOptions {
        extra_http_filters: vec![jwt_authn_filter(&trusted.jwks().unwrap(), "verified_claims").unwrap()],
        filter_config_patch: Some(
            serde_json::json!({"identity": {"jwt": {"payloadKey": "verified_claims", "claimHeaders": claim_headers()}}}),
        ),
        envoy_env: vec![("AUDIT_FINGERPRINT_KEY".into(), FINGERPRINT_KEY.into())],
        ..StackOptions::default()
    })
    .expect("the stack starts with jwt_authn in front of the audit filter");
    let url = stack.envoy_url();
    let claims = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "iat": now_seconds(), "exp": now_seconds() + 600,
        "sub": "4711", "email": "jwt-user@example.com", "preferred_username": "jwt-user", "roles": ["admin"],
    });
    let token = trusted.sign(&claims).unwrap();
    let forged = forger.sign(&claims).unwrap();
    let bearer = |token: &str| format!("Bearer {token}");

    let ok = send(
        "GET",
        &format!("{url}/pacticipants"),
        // A claim header the client sent itself: never believed over (or without) the token.
        &[("user-agent", "e2e-jwt-valid"), ("authorization", &bearer(&token)), ("x-jwt-email", "forged@example.com")],
        None,
    )
    .unwrap();
    assert_eq!(ok.status, 200, "a valid token passes jwt_authn: {}", ok.body);
    let again = send(
        "GET",
        &format!("{url}/pacticipants"),
        &[("user-agent", "e2e-jwt-again"), ("authorization", &bearer(&token))],
        None,
    )
    .unwrap();
    assert_eq!(again.status, 200);
    let refused = send(
        "GET",
        &format!("{url}/pacticipants"),
        &[("user-agent", "e2e-jwt-forged"), ("authorization", &bearer(&forged))],
        None,
    )
    .unwrap();
    assert_eq!(refused.status, 401, "jwt_authn refuses a token signed by another key: {}", refused.body);
    let spoofed = send(
        "GET",
        &format!("{url}/pacticipants"),
        &[
            ("user-agent", "e2e-jwt-none"),
            ("x-forwarded-email", "header@example.com"),
            ("x-jwt-email", "forged-claim@example.com"),
            ("x-jwt-sub", "1"),
        ],
        None,
    )
    .unwrap();
    assert_eq!(spoofed.status, 200, "no token: allowed, identity from the next source");

    let events = wait_for_trail(&stack.collector_url(), stack.read_token(), TRAIL_TIMEOUT, |events| {
        events.iter().filter(|e| e.payload.user_agent.as_deref().is_some_and(|a| a.starts_with("e2e-jwt-"))).count()
            == 4
    })
    .unwrap();

    let valid = event_by_agent(&events, "e2e-jwt-valid");
    assert_eq!(valid.user_email.as_deref(), Some("jwt-user@example.com"), "user_email from the `email` claim");
    assert_eq!(valid.user_id.as_deref(), Some("4711"), "user_id from the `sub` claim");
    assert_eq!(valid.db_user_id, Some(4711), "db_user_id: the numeric `sub`");
    assert_eq!(valid.user_name.as_deref(), Some("jwt-user"), "user_name from `preferred_username`");
    assert_eq!(valid.identity_source.as_deref(), Some("jwt"), "identity_source");
    assert_eq!(valid.token_fingerprint.as_deref(), Some(expected_fingerprint(&token).as_str()), "token_fingerprint");
    let again = event_by_agent(&events, "e2e-jwt-again");
    assert_eq!(again.token_fingerprint, valid.token_fingerprint, "one token, one fingerprint: its uses correlate");

    let forged_event = event_by_agent(&events, "e2e-jwt-forged");
    let response = forged_event.response.as_ref().expect("a response summary");
    assert_eq!((response.status, response.outcome), (401, Outcome::Unauthenticated), "the forged token's event");
    assert_eq!(forged_event.user_email, None, "unverified claims are never an identity");
    assert_eq!(forged_event.user_id, None);
    assert_eq!(forged_event.identity_source, None);
    assert_eq!(
        forged_event.token_fingerprint.as_deref(),
        Some(expected_fingerprint(&forged).as_str()),
        "the refused token is fingerprinted, so repeated attempts correlate"
    );

    let none = event_by_agent(&events, "e2e-jwt-none");
    assert_eq!(none.identity_source, None, "no token, and a header from a peer that is not a trusted proxy");
    assert_eq!(none.user_email, None, "the header is not the identity");
    assert_eq!(none.untrusted_identity, [claim("x-forwarded-email", "header@example.com")], "but it is recorded");
    assert_eq!(none.token_fingerprint, None);

    let trail = serde_json::to_string(&events).unwrap();
    let database = std::fs::read(stack.database_path()).unwrap();
    let wal = std::fs::read(stack.database_path().with_extension("db-wal")).unwrap_or_default();
    for (what, secret) in [("token", &token), ("forged token", &forged)] {
        let signature = secret.rsplit('.').next().unwrap();
        for needle in [secret.as_str(), signature] {
            assert!(!trail.contains(needle), "the trail holds the {what}");
            for (name, bytes) in [("database", &database), ("WAL", &wal)] {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "the {name} file holds the {what}"
                );
            }
        }
    }
}

#[test]
fn the_client_ip_is_taken_from_x_forwarded_for_behind_a_trusted_hop() {
    let stack = AuditStack::start(StackOptions {
        filter_config_patch: Some(serde_json::json!({"identity": {"xffTrustedHops": 1}})),
        ..StackOptions::default()
    })
    .expect("the stack starts");
    let url = format!("{}/pacticipants", stack.envoy_url());
    let cases = [
        ("e2e-xff-one", Some("203.0.113.7"), "203.0.113.7"),
        ("e2e-xff-chain", Some("198.51.100.1, 203.0.113.8"), "203.0.113.8"),
        ("e2e-xff-none", None, "127.0.0.1"),
        ("e2e-xff-garbage", Some("not-an-ip"), "127.0.0.1"),
    ];
    for (agent, xff, _) in &cases {
        let mut headers = vec![("user-agent", *agent)];
        if let Some(xff) = xff {
            headers.push(("x-forwarded-for", xff));
        }
        assert_eq!(send("GET", &url, &headers, None).unwrap().status, 200, "{agent}");
    }
    let events = wait_for_trail(&stack.collector_url(), stack.read_token(), TRAIL_TIMEOUT, |events| {
        events.iter().filter(|e| e.payload.user_agent.as_deref().is_some_and(|a| a.starts_with("e2e-xff-"))).count()
            == cases.len()
    })
    .unwrap();
    for (agent, xff, expected) in cases {
        let event = event_by_agent(&events, agent);
        assert_eq!(
            event.payload.client_ip.as_deref(),
            Some(expected),
            "{agent}: client_ip for x-forwarded-for {xff:?} (1 trusted hop; Envoy appends the peer 127.0.0.1)"
        );
    }
}

fn claim(header: &str, value: &str) -> UntrustedClaim {
    UntrustedClaim { header: header.into(), value: value.into() }
}

/// A Lua filter after the audit filter: it sees the request as the service will, and
/// answers with what the service saw in `x-service-saw-email` / `x-service-saw-user-id`.
fn what_the_service_sees() -> serde_yaml::Value {
    let lua = r#"
function envoy_on_request(request)
  local headers = request:headers()
  local meta = request:streamInfo():dynamicMetadata()
  meta:set("e2e.seen", "email", headers:get("x-forwarded-email") or "(none)")
  meta:set("e2e.seen", "user_id", headers:get("x-user-id") or "(none)")
end
function envoy_on_response(response)
  local seen = response:streamInfo():dynamicMetadata():get("e2e.seen") or {}
  response:headers():add("x-service-saw-email", seen["email"] or "(unknown)")
  response:headers():add("x-service-saw-user-id", seen["user_id"] or "(unknown)")
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

/// `mallory:pw` in basic auth, with headers naming alice.
fn send_as_mallory_claiming_alice(url: &str, agent: &str) -> audit_e2e::client::Reply {
    let mallory = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("mallory:pw"));
    send(
        "GET",
        &format!("{url}/pacticipants"),
        &[
            ("user-agent", agent),
            ("authorization", &mallory),
            ("x-forwarded-email", "alice@corp.example"),
            ("x-user-id", "1"),
        ],
        None,
    )
    .unwrap()
}

#[test]
fn a_client_cannot_be_recorded_as_someone_else_and_the_attempt_is_in_the_trail() {
    // The shipped envoy.yaml as is: no trusted proxies, untrusted identity headers stripped.
    let stack = AuditStack::start(StackOptions {
        http_filters_after_audit: vec![what_the_service_sees()],
        ..StackOptions::default()
    })
    .expect("the stack starts");
    let reply = send_as_mallory_claiming_alice(&stack.envoy_url(), "e2e-mallory");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-service-saw-email"), Some("(none)"), "the forged email must not reach the service");
    assert_eq!(reply.header("x-service-saw-user-id"), Some("(none)"), "the forged id must not reach the service");

    let events = wait_for_trail(&stack.collector_url(), stack.read_token(), TRAIL_TIMEOUT, |events| {
        events.iter().any(|e| e.payload.user_agent.as_deref() == Some("e2e-mallory"))
    })
    .unwrap();
    let event = event_by_agent(&events, "e2e-mallory");
    assert_eq!(event.user_name.as_deref(), Some("mallory"), "stored as the identity the client proved");
    assert_eq!(event.identity_source.as_deref(), Some("basic-auth"), "identity_source");
    assert_eq!(
        (event.user_email.as_deref(), event.db_user_id, event.user_id.as_deref()),
        (None, None, None),
        "never as alice"
    );
    assert_eq!(
        event.untrusted_identity,
        [claim("x-forwarded-email", "alice@corp.example"), claim("x-user-id", "1")],
        "the attempt, and whom it named"
    );
    assert_eq!(event.alerts, [ALERT_UNTRUSTED_IDENTITY], "a marker a SOC can alert on");
    // The peer was read while stripping, and on_log reuses that read: it must still be there.
    assert_eq!(event.payload.client_ip.as_deref(), Some("127.0.0.1"), "payload.clientIp: the peer");
    let page = audit_e2e::client::get_with_token(
        &format!("{}/audit?user_email=alice%40corp.example", stack.collector_url()),
        stack.read_token(),
    )
    .unwrap();
    assert!(!page.body.contains("e2e-mallory"), "alice's trail does not hold mallory's request: {}", page.body);
}

#[test]
fn behind_a_trusted_proxy_identity_headers_are_the_identity_and_reach_the_service() {
    // Envoy's peer here is the test client on loopback: it plays the trusted proxy.
    let stack = AuditStack::start(StackOptions {
        filter_config_patch: Some(serde_json::json!({"identity": {"trustedProxies": ["127.0.0.1/32"]}})),
        http_filters_after_audit: vec![what_the_service_sees()],
        ..StackOptions::default()
    })
    .expect("the stack starts");
    let reply = send(
        "GET",
        &format!("{}/pacticipants", stack.envoy_url()),
        &[("user-agent", "e2e-proxied"), ("x-forwarded-email", "alice@corp.example"), ("x-user-id", "1")],
        None,
    )
    .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("x-service-saw-email"), Some("alice@corp.example"), "a trusted proxy's header is kept");

    let events = wait_for_trail(&stack.collector_url(), stack.read_token(), TRAIL_TIMEOUT, |events| {
        events.iter().any(|e| e.payload.user_agent.as_deref() == Some("e2e-proxied"))
    })
    .unwrap();
    let event = event_by_agent(&events, "e2e-proxied");
    assert_eq!(event.user_email.as_deref(), Some("alice@corp.example"), "user_email from the trusted proxy");
    assert_eq!(event.db_user_id, Some(1), "db_user_id from the trusted proxy");
    assert_eq!(event.identity_source.as_deref(), Some("header:x-forwarded-email,header:x-user-id"));
    assert_eq!((event.untrusted_identity.len(), event.alerts.len()), (0, 0), "no attempt, no alert");
}

#[test]
fn with_stripping_off_the_service_gets_the_header_but_the_trail_still_says_mallory() {
    let stack = AuditStack::start(StackOptions {
        filter_config_patch: Some(serde_json::json!({"identity": {"stripUntrustedHeaders": false}})),
        http_filters_after_audit: vec![what_the_service_sees()],
        ..StackOptions::default()
    })
    .expect("the stack starts");
    let reply = send_as_mallory_claiming_alice(&stack.envoy_url(), "e2e-mallory-unstripped");
    assert_eq!(reply.header("x-service-saw-email"), Some("alice@corp.example"), "stripping is off");
    let events = wait_for_trail(&stack.collector_url(), stack.read_token(), TRAIL_TIMEOUT, |events| {
        events.iter().any(|e| e.payload.user_agent.as_deref() == Some("e2e-mallory-unstripped"))
    })
    .unwrap();
    let event = event_by_agent(&events, "e2e-mallory-unstripped");
    assert_eq!((event.user_name.as_deref(), event.user_email.as_deref()), (Some("mallory"), None));
    assert_eq!(event.untrusted_identity.len(), 2, "{:?}", event.untrusted_identity);
}

#[test]
fn oversized_fields_are_stored_cut_with_the_cut_recorded() {
    let stack = AuditStack::start(StackOptions::default()).expect("the stack starts");
    let url = format!("{}/pacticipants", stack.envoy_url());
    // Two requests: Envoy refuses request headers over 60 KiB in all.
    let agent = format!("e2e-huge-agent-{}", "a".repeat(50_000));
    let reply = send("GET", &url, &[("user-agent", &agent)], None).unwrap();
    assert_eq!(reply.status, 200, "Envoy passes a 50,000-byte User-Agent: {}", reply.body);
    let query = format!("q={}", "b".repeat(12_000));
    let reply = send("GET", &format!("{url}?{query}"), &[("user-agent", "e2e-huge-query")], None).unwrap();
    assert_ne!(reply.status, 431, "Envoy passes a 12,000-byte query (the stand-in answers 404 to it)");

    let is_huge = |e: &AuditEvent| e.payload.user_agent.as_deref().is_some_and(|a| a.starts_with("e2e-huge-"));
    let events = wait_for_trail(&stack.collector_url(), stack.read_token(), TRAIL_TIMEOUT, |events| {
        events.iter().filter(|e| is_huge(e)).count() == 2
    })
    .unwrap();
    let cuts = |event: &AuditEvent| -> Vec<(String, u64)> {
        event.truncated_fields.iter().map(|f| (f.field.clone(), f.original_bytes)).collect()
    };

    let long_agent = events.iter().find(|e| e.payload.user_agent.as_deref().is_some_and(|a| a.len() > 100)).unwrap();
    let stored_agent = long_agent.payload.user_agent.as_deref().unwrap();
    assert_eq!(stored_agent.len(), 4096, "the User-Agent is cut to 4 KiB");
    assert!(stored_agent.starts_with("e2e-huge-agent-aaa") && stored_agent.ends_with(TRUNCATION_MARKER), "and marked");
    assert_eq!(cuts(long_agent), [("payload.userAgent".to_string(), agent.len() as u64)]);

    let long_query = event_by_agent(&events, "e2e-huge-query");
    let stored_query = &long_query.payload.query_string;
    assert!(stored_query.len() <= 4096 && stored_query.ends_with(TRUNCATION_MARKER), "{} bytes", stored_query.len());
    assert_eq!(cuts(long_query), [("payload.queryString".to_string(), 12_002)]);
}
