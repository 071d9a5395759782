//! Secrets never reach the trail: a request carries a unique secret in every place a client
//! can put one, and neither the SQLite file (with its WAL) nor `/audit` may hold any of
//! them afterwards. The path is not a secret and is kept.

// Test code: a panic here is a failed test with its message, not a crashed proxy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use audit_e2e::client::{get_with_token, send, wait_for_trail};
use audit_e2e::{AuditStack, StackOptions};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;

const TRAIL_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn no_secret_a_client_sends_is_stored_or_served() {
    let stack = AuditStack::start(StackOptions {
        filter_config_patch: Some(
            serde_json::json!({"redaction": {"tokenFingerprint": {"apiKeyHeaders": ["x-api-key"]}}}),
        ),
        ..StackOptions::default()
    })
    .expect("the stack starts");
    let url = stack.envoy_url();
    let basic_credentials = STANDARD.encode("alice:SECRET-basic-password-1");
    let basic = format!("Basic {basic_credentials}");
    let bearer = "Bearer SECRET-bearer-token-2";
    let query = "page=2&token=SECRET-query-token-3&password=SECRET-query-password-4&api_key=SECRET-query-apikey-5\
                 &secret=SECRET-query-secret-6&%74oken=SECRET-encoded-name-7&Access%5FToken=SECRET-encoded-8\
                 &token=SECRET-repeated-9;sig=SECRET-semicolon-10&user[password]=SECRET-nested-11&token";
    // No fragment: Envoy 1.40 drops a Referer that has one (RFC 9110 forbids it).
    let referer =
        "https://ui.example/callback?code=SECRET-referer-code-12&state=ok&access_token=SECRET-referer-token-13";
    let requests: Vec<(String, Vec<(&str, &str)>)> = vec![
        (
            format!("/pacticipants?{query}"),
            vec![
                ("user-agent", "e2e-redact-query"),
                ("authorization", &basic),
                ("proxy-authorization", "Basic U0VDUkVULXByb3h5LWF1dGgtMTQ="),
                ("cookie", "session=SECRET-cookie-15; other=SECRET-cookie-16"),
                ("x-api-key", "SECRET-api-key-header-17"),
                ("referer", referer),
            ],
        ),
        (
            "/pacticipants/Foo".to_string(),
            vec![
                ("user-agent", "e2e-redact-bearer"),
                ("authorization", bearer),
                ("proxy-authorization", "Bearer SECRET-proxy-bearer-18"),
            ],
        ),
    ];
    for (path, headers) in &requests {
        let reply = send("GET", &format!("{url}{path}"), headers, None).unwrap();
        assert!(reply.status < 500, "GET {path}: {}", reply.status);
    }
    let events = wait_for_trail(&stack.collector_url(), stack.read_token(), TRAIL_TIMEOUT, |events| {
        events.iter().filter(|e| e.payload.user_agent.as_deref().is_some_and(|a| a.starts_with("e2e-redact-"))).count()
            == 2
    })
    .unwrap();

    let query_event = events.iter().find(|e| e.payload.user_agent.as_deref() == Some("e2e-redact-query")).unwrap();
    assert_eq!(query_event.payload.path, "/pacticipants", "the path is kept");
    assert_eq!(
        query_event.payload.query_string,
        "page=2&token=***&password=***&api_key=***&secret=***&%74oken=***&Access%5FToken=***&token=***;sig=***\
         &user[password]=***&token",
        "payload.queryString keeps every key and masks every sensitive value"
    );
    assert_eq!(
        query_event.payload.referer.as_deref(),
        Some("https://ui.example/callback?code=***&state=ok&access_token=***"),
        "payload.referer"
    );
    assert_eq!(query_event.user_name.as_deref(), Some("alice"), "the basic-auth user name, never its password");
    assert!(
        query_event.token_fingerprint.as_deref().is_some_and(|f| f.starts_with("hmac-sha256:")),
        "x-api-key is fingerprinted"
    );
    let bearer_event = events.iter().find(|e| e.payload.user_agent.as_deref() == Some("e2e-redact-bearer")).unwrap();
    assert_eq!(bearer_event.payload.path, "/pacticipants/Foo");
    assert!(
        bearer_event.token_fingerprint.as_deref().is_some_and(|f| f.starts_with("hmac-sha256:")),
        "the bearer token is fingerprinted"
    );

    let page = get_with_token(&format!("{}/audit?size=1000", stack.collector_url()), stack.read_token()).unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    let database = std::fs::read(stack.database_path()).unwrap();
    let wal = std::fs::read(stack.database_path().with_extension("db-wal")).unwrap_or_default();
    assert!(!database.is_empty() || !wal.is_empty(), "the store is somewhere");
    let planted = [
        query,
        referer,
        bearer,
        "SECRET-basic-password-1 SECRET-proxy-auth-14 SECRET-cookie-15 \
        SECRET-cookie-16 SECRET-api-key-header-17 SECRET-proxy-bearer-18",
    ];
    let mut needles: Vec<String> = planted
        .iter()
        .flat_map(|text| text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')))
        .filter(|word| word.starts_with("SECRET-"))
        .map(str::to_string)
        .collect();
    needles.sort();
    needles.dedup();
    assert_eq!(needles.len(), 18, "every planted secret is checked: {needles:?}");
    needles.extend([basic_credentials.clone(), "U0VDUkVULXByb3h5LWF1dGgtMTQ=".to_string()]);
    for needle in &needles {
        assert!(!page.body.contains(needle.as_str()), "/audit shows the secret {needle}");
        for (name, bytes) in [("database", &database), ("WAL", &wal)] {
            assert!(
                !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "the {name} file holds the secret {needle}"
            );
        }
    }
}
