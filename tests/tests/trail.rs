//! The end-to-end audit trail: requests through real Envoy become exactly those events at
//! `/audit`, in PactFlow's shape, readable page by page, with the reading itself audited.

// Test code: a panic here is a failed test with its message, not a crashed proxy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::Duration;

use audit_e2e::client::{get_with_token, send, wait_for_trail, walk_trail};
use audit_e2e::{AuditStack, StackOptions};
use audit_event::event_uuid::is_event_uuid;
use audit_event::timestamp::parse_rfc3339_millis;
use audit_event::AuditEvent;

const TRAIL_TIMEOUT: Duration = Duration::from_secs(30);

fn start() -> AuditStack {
    AuditStack::start(StackOptions::default()).expect("the stack starts")
}

/// Events whose user agent starts with `prefix`, keyed by user agent.
fn by_user_agent<'a>(events: &'a [AuditEvent], prefix: &str) -> HashMap<String, Vec<&'a AuditEvent>> {
    let mut found: HashMap<String, Vec<&AuditEvent>> = HashMap::new();
    for event in events {
        if let Some(agent) = event.payload.user_agent.as_deref().filter(|a| a.starts_with(prefix)) {
            found.entry(agent.to_string()).or_default().push(event);
        }
    }
    found
}

#[test]
fn requests_through_envoy_become_exactly_those_events_with_the_right_fields() {
    // The test client plays a trusted proxy (oauth2-proxy, say) that sets identity headers.
    let stack = AuditStack::start(StackOptions {
        filter_config_patch: Some(serde_json::json!({"identity": {"trustedProxies": ["127.0.0.1/32"]}})),
        ..StackOptions::default()
    })
    .expect("the stack starts");
    let url = stack.envoy_url();
    let before = std::time::SystemTime::now();
    // (method, path with query, headers, the status the broker stand-in answers)
    type SentRequest<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, u16);
    let requests: Vec<SentRequest> = vec![
        ("GET", "/pacticipants", vec![("x-forwarded-email", "bob@example.com")], 200),
        ("GET", "/pacticipants/Foo", vec![("authorization", "Basic YWxpY2U6czNjcjN0LXBhc3N3b3Jk")], 200), // alice:s3cr3t-password
        (
            "PUT",
            "/pacticipants/Foo/versions/1.0.0/tags/main",
            vec![("x-user-id", "42"), ("referer", "http://ui.example/x")],
            201,
        ),
        ("DELETE", "/pacticipants/Baz", vec![("x-auth-request-email", "carol@example.com")], 204),
        ("GET", "/no/such/route?color=blue&page=2", vec![], 404),
    ];
    for (n, (method, path, headers, expected_status)) in requests.iter().enumerate() {
        let agent = format!("e2e-fields-{n}");
        let mut all_headers = headers.clone();
        all_headers.push(("user-agent", &agent));
        let reply = send(method, &format!("{url}{path}"), &all_headers, None).unwrap();
        assert_eq!(reply.status, *expected_status, "{method} {path} through Envoy: {}", reply.body);
    }

    let events = wait_for_trail(&stack.collector_url(), stack.read_token(), TRAIL_TIMEOUT, |events| {
        by_user_agent(events, "e2e-fields-").len() == requests.len()
    })
    .unwrap();
    let found = by_user_agent(&events, "e2e-fields-");
    for (n, (method, path, _, status)) in requests.iter().enumerate() {
        let agent = format!("e2e-fields-{n}");
        let matching = &found[&agent];
        assert_eq!(matching.len(), 1, "request {n} ({method} {path}) gave {} events", matching.len());
        let event = matching[0];
        let (path_only, query) = path.split_once('?').unwrap_or((path, ""));
        assert_eq!(event.payload.method, *method, "request {n}: payload.method");
        assert_eq!(event.payload.path, path_only, "request {n}: payload.path");
        assert_eq!(event.payload.query_string, query, "request {n}: payload.queryString");
        assert_eq!(event.response.as_ref().map(|r| r.status), Some(*status), "request {n}: response.status");
        assert!(is_event_uuid(&event.uuid), "request {n}: uuid {:?} is not 22 chars of base64url", event.uuid);
        let millis = parse_rfc3339_millis(&event.timestamp)
            .unwrap_or_else(|| panic!("request {n}: timestamp {:?}", event.timestamp));
        let sent_at = before.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
        assert!(
            (sent_at - 1000..sent_at + 60_000).contains(&millis),
            "request {n}: timestamp {} is not now",
            event.timestamp
        );
        assert!(event.payload.request_id.as_deref().is_some_and(|id| !id.is_empty()), "request {n}: payload.requestId");
        assert_eq!(event.payload.client_ip.as_deref(), Some("127.0.0.1"), "request {n}: payload.clientIp");
        assert!(!event.event_type.is_empty(), "request {n}: type");
        assert!(event.payload.params.contains_key("resource_name"), "request {n}: params.resource_name");
    }
    let event = |n: usize| found[&format!("e2e-fields-{n}")][0];
    assert_eq!(event(0).user_email.as_deref(), Some("bob@example.com"), "x-forwarded-email → user_email");
    assert_eq!(event(1).user_name.as_deref(), Some("alice"), "basic-auth user name → user_name");
    assert_eq!(event(1).identity_source.as_deref(), Some("basic-auth"));
    assert_eq!(event(2).db_user_id, Some(42), "numeric x-user-id → db_user_id");
    assert_eq!(event(2).payload.referer.as_deref(), Some("http://ui.example/x"));
    assert_eq!(event(3).user_email.as_deref(), Some("carol@example.com"), "x-auth-request-email → user_email");
    assert_eq!(event(4).user_email, None, "no identity → null user_email");

    let page = get_with_token(&format!("{}/audit", stack.collector_url()), stack.read_token()).unwrap();
    let database = std::fs::read(stack.database_path()).unwrap();
    let wal = std::fs::read(stack.database_path().with_extension("db-wal")).unwrap_or_default();
    for secret in ["s3cr3t-password", "YWxpY2U6czNjcjN0LXBhc3N3b3Jk"] {
        assert!(!page.body.contains(secret), "/audit shows the secret {secret}");
        for (name, bytes) in [("database", &database), ("WAL", &wal)] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "the {name} file holds {secret}");
        }
    }
}

#[test]
fn a_walk_over_several_pages_sees_every_event_once_in_order() {
    let stack = start();
    let url = stack.envoy_url();
    for n in 0..230 {
        let reply =
            send("GET", &format!("{url}/pacticipants"), &[("user-agent", &format!("e2e-walk-{n}"))], None).unwrap();
        assert_eq!(reply.status, 200);
    }
    wait_for_trail(&stack.collector_url(), stack.read_token(), TRAIL_TIMEOUT, |events| {
        by_user_agent(events, "e2e-walk-").len() == 230
    })
    .unwrap();

    let (events, pages) = walk_trail(&stack.envoy_url(), stack.read_token(), 100).unwrap();
    assert!(pages >= 3, "230 events at 100 a page took {pages} pages");
    let walked = by_user_agent(&events, "e2e-walk-");
    assert_eq!(walked.len(), 230, "distinct requests seen by the walk");
    assert!(walked.values().all(|found| found.len() == 1), "an event appeared twice in the walk");
    let mut uuids: Vec<&str> = events.iter().map(|e| e.uuid.as_str()).collect();
    uuids.sort_unstable();
    uuids.dedup();
    assert_eq!(uuids.len(), events.len(), "a uuid appeared twice across pages");

    // `from` is inclusive: resuming from the last event seen starts with that event.
    let last = events.last().unwrap();
    let resumed = audit_e2e::client::read_page(
        &format!("{}/audit?from={}", stack.collector_url(), last.uuid),
        stack.read_token(),
    )
    .unwrap();
    assert_eq!(
        resumed.events.first().map(|e| e.uuid.as_str()),
        Some(last.uuid.as_str()),
        "from=<uuid> starts with that event"
    );
    let unknown =
        get_with_token(&format!("{}/audit?from=AAAAAAAAAAAAAAAAAAAAAA", stack.envoy_url()), stack.read_token())
            .unwrap();
    assert!((400..500).contains(&unknown.status), "an unknown from answered {}: {}", unknown.status, unknown.body);
}

#[test]
fn reading_the_trail_is_audited_and_needs_the_read_token() {
    let stack = start();
    let audit = format!("{}/audit", stack.envoy_url());
    let no_token = send("GET", &audit, &[("user-agent", "e2e-reader-anonymous")], None).unwrap();
    assert_eq!(no_token.status, 401, "GET /audit without a token: {}", no_token.body);
    let wrong =
        send("GET", &audit, &[("user-agent", "e2e-reader-wrong"), ("authorization", "Bearer nope")], None).unwrap();
    assert_eq!(wrong.status, 401, "GET /audit with a wrong token");
    let ingest = send(
        "GET",
        &audit,
        &[("user-agent", "e2e-reader-ingest"), ("authorization", &format!("Bearer {}", stack.ingest_token()))],
        None,
    )
    .unwrap();
    assert_eq!(ingest.status, 403, "the ingest credential is valid but must not read the trail (wrong scope)");
    let ok = send(
        "GET",
        &audit,
        &[("user-agent", "e2e-reader-ok"), ("authorization", &format!("Bearer {}", stack.read_token()))],
        None,
    )
    .unwrap();
    assert_eq!(ok.status, 200, "GET /audit with the read token: {}", ok.body);
    let page: serde_json::Value = serde_json::from_str(&ok.body).unwrap();
    assert!(
        page["_links"]["self"]["href"].as_str().is_some_and(|h| h.starts_with(&stack.envoy_url())),
        "_links.self.href should be on the host the client called: {}",
        page["_links"]
    );

    let events = wait_for_trail(&stack.collector_url(), stack.read_token(), TRAIL_TIMEOUT, |events| {
        by_user_agent(events, "e2e-reader-").len() == 4
    })
    .unwrap();
    let readers = by_user_agent(&events, "e2e-reader-");
    for (agent, status) in
        [("e2e-reader-anonymous", 401), ("e2e-reader-wrong", 401), ("e2e-reader-ingest", 403), ("e2e-reader-ok", 200)]
    {
        let event = readers[agent][0];
        assert_eq!(event.payload.path, "/audit", "{agent}: path");
        assert_eq!(event.event_type, "AuditSidecar::Api::Trail", "{agent}: reading the trail has its own type");
        assert_eq!(event.response.as_ref().map(|r| r.status), Some(status), "{agent}: response.status");
    }
    let body = serde_json::to_string(&events).unwrap();
    for token in ["Bearer nope", stack.read_token(), stack.ingest_token()] {
        assert!(!body.contains(token), "the trail holds a bearer token ({token})");
    }
}

#[test]
fn a_bad_filter_configuration_stops_envoy_with_a_message_naming_the_key() {
    let error = AuditStack::start(StackOptions {
        filter_config_patch: Some(serde_json::json!({"batch": {"maxEvents": 0}})),
        ..StackOptions::default()
    })
    .err()
    .expect("Envoy must refuse a filter configuration with batch.maxEvents = 0");
    let message = format!("{error:#}");
    assert!(message.contains("maxEvents"), "Envoy's log should name the bad key; it says:\n{message}");

    let error = AuditStack::start(StackOptions {
        filter_config_patch: Some(serde_json::json!({"batch": {"maxEvnts": 10}})),
        ..StackOptions::default()
    })
    .err()
    .expect("Envoy must refuse an unknown filter configuration key");
    assert!(format!("{error:#}").contains("maxEvnts"), "the log should name the unknown key:\n{error:#}");
}
