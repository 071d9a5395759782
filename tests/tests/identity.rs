//! Who made a request, proven in real Envoy: claims that Envoy's `jwt_authn` filter
//! verified become the event's identity (read by the audit filter from the dynamic
//! metadata), a forged token is refused by Envoy and still audited, tokens are recorded
//! only as keyed fingerprints, and the client address honours trusted proxy hops.

// Test code: a panic here is a failed test with its message, not a crashed proxy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use audit_e2e::client::{send, wait_for_trail};
use audit_e2e::jwt::{hmac_sha256, jwt_authn_filter, now_seconds, SigningKey, AUDIENCE, ISSUER};
use audit_e2e::{AuditStack, StackOptions};
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
        filter_config_patch: Some(serde_json::json!({"identity": {"jwt": {"payloadKey": "verified_claims"}}})),
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
        &[("user-agent", "e2e-jwt-valid"), ("authorization", &bearer(&token))],
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
        &[("user-agent", "e2e-jwt-none"), ("x-forwarded-email", "header@example.com")],
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
    assert_eq!(none.identity_source.as_deref(), Some("header:x-forwarded-email"), "no token: the headers source");
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
