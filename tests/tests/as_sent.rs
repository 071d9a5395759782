//! What the trail records of requests Envoy changes or refuses before the audit filter sees
//! them, in real Envoy: a `Referer` that is not a URI reference (RFC 9110: an absolute or a
//! partial URI) is removed by Envoy's connection manager, so the event's `referer` is null;
//! a relative one is kept with its sensitive query values masked; a raw `<` in the path
//! reaches the filter and is recorded as sent; a request line Envoy cannot parse (a control
//! character in it) is answered 400 by Envoy before any filter and recorded as method
//! `UNKNOWN`, path `/`, type `AuditSidecar::UnparsedRequest`, with what Envoy still knows (its
//! reason, the client address, status, time). docs/events.md says so.

// Test code: a panic here is a failed test with its message, not a crashed proxy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use audit_e2e::client::{send, wait_for_trail};
use audit_e2e::{AuditStack, StackOptions};

const TRAIL_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn referers_are_kept_as_envoy_passes_them_and_a_request_envoy_refuses_is_still_recorded() {
    let stack = AuditStack::start(StackOptions::default()).expect("the stack starts");
    let url = stack.envoy_url();
    let referers = [
        (
            "as-sent-absolute",
            "https://ui.example/cb?code=SECRET&state=ok",
            Some("https://ui.example/cb?code=***&state=ok"),
        ),
        ("as-sent-relative", "/settings/tokens?token=SECRET&tab=2", Some("/settings/tokens?token=***&tab=2")),
        ("as-sent-javascript", "javascript:alert(1)", None),
        ("as-sent-text", "not a url at all", None),
    ];
    for (agent, referer, _) in &referers {
        let reply = send("GET", &format!("{url}/pacticipants"), &[("user-agent", agent), ("referer", referer)], None)
            .expect("answered");
        assert!(reply.status < 500, "{agent}: {}", reply.status);
    }
    let address = url.trim_start_matches("http://");
    let raw_requests: [&[u8]; 2] = [
        b"GET /pacticipants/<script> HTTP/1.1\r\nHost: broker.example\r\nUser-Agent: as-sent-raw-lt\r\n\r\n",
        b"GET /pacticipants/\x01ctl HTTP/1.1\r\nHost: broker.example\r\nUser-Agent: as-sent-raw-ctl\r\n\r\n",
    ];
    for raw_request in raw_requests {
        let mut raw = TcpStream::connect(address).expect("connect to Envoy");
        raw.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        raw.write_all(raw_request).expect("send");
        let mut answer = Vec::new();
        let _ = raw.read_to_end(&mut answer);
        assert!(answer.starts_with(b"HTTP/1.1 400"), "{}", String::from_utf8_lossy(&answer));
    }

    let events = wait_for_trail(&stack.collector_url(), stack.read_token(), TRAIL_TIMEOUT, |events| {
        events.iter().filter(|e| e.payload.user_agent.as_deref().is_some_and(|a| a.starts_with("as-sent-"))).count()
            > referers.len()
            && events.iter().any(|e| e.payload.method == "UNKNOWN")
    })
    .expect("the trail fills");
    for (agent, _, expected) in &referers {
        let event = events.iter().find(|e| e.payload.user_agent.as_deref() == Some(*agent)).expect(agent);
        assert_eq!(event.payload.referer.as_deref(), *expected, "{agent}");
    }
    // A raw `<` reaches the filter: recorded as sent.
    let lt =
        events.iter().find(|e| e.payload.user_agent.as_deref() == Some("as-sent-raw-lt")).expect("the `<` request");
    assert_eq!((lt.payload.method.as_str(), lt.payload.path.as_str()), ("GET", "/pacticipants/<script>"));
    // A control character in the request line: Envoy refuses it before any filter.
    let refused = events.iter().find(|e| e.payload.method == "UNKNOWN").expect("the refused request");
    assert_eq!((refused.payload.path.as_str(), refused.payload.user_agent.as_deref()), ("/", None), "nothing parsed");
    assert_eq!(refused.event_type, "AuditSidecar::UnparsedRequest", "not typed as the service's `/`");
    let details = refused.payload.params.get("envoy_response_code_details").map(String::as_str);
    assert!(details.is_some_and(|details| details.starts_with("http1.")), "Envoy's reason is kept: {details:?}");
    assert_eq!(refused.response.as_ref().map(|r| r.status), Some(400), "Envoy's own 400");
    assert_eq!(refused.payload.client_ip.as_deref(), Some("127.0.0.1"), "the client address is kept");
}
