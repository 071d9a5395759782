//! The trail viewer in a real browser: Debian's chromium, driven by `playwright-core` from
//! npm (`tests/browser/`, node's own test runner), loads `/audit/ui/` THROUGH ENVOY. This
//! test starts the stack, fills the trail (with markup and script in every captured field),
//! has the collector sign a checkpoint, and runs the browser suite four times: on the intact
//! trail, after an old event's body (not on the first pages) was changed in the database
//! behind the collector's back, after the newest event's was too, then once Envoy was
//! stopped cleanly and killed (the collector's records of a finished and a silent sender).

// Test code: a panic here is a failed test with its message, not a crashed proxy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use audit_e2e::client::{send, wait_for_trail};
use audit_e2e::{paths, AuditStack, StackOptions};
use audit_event::sender::{SENDER_FINISHED_TYPE, SENDER_STOPPED_TYPE};
use audit_event::timestamp::format_rfc3339_millis;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

const TRAIL_TIMEOUT: Duration = Duration::from_secs(30);
/// What the hostile requests put in every field they can reach; the page must show it as text.
const MARKUP: &str = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script>";
/// A basic-auth user name that reads "admin…exe.png" where a right-to-left override is honoured.
const SPOOFED_NAME: &str = "admin\u{202E}gnp.exe";
/// GETs of `/pacticipants`, so the view of the test's requests needs three pages of 50.
const FILLER_REQUESTS: usize = 120;

fn now_rfc3339() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_nanos();
    format_rfc3339_millis(i64::try_from(nanos).expect("nanoseconds fit"))
}

fn browser_suite() -> PathBuf {
    paths::repo_root().join("tests/browser")
}

/// Runs the browser suite for `phase` with `env`; its output is printed, its failure fails.
fn run_browser_suite(stack: &AuditStack, phase: &str, env: &[(&str, String)]) {
    let suite = browser_suite();
    assert!(
        suite.join("node_modules/playwright-core").exists() && PathBuf::from("/usr/bin/chromium").exists(),
        "the browser tests need Debian's chromium and tests/browser/node_modules: run `make setup-browser`"
    );
    let output = Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg("viewer.test.mjs")
        .current_dir(&suite)
        .env("VIEWER_PHASE", phase)
        .env("SERVICE_URL", stack.envoy_url())
        .env("COLLECTOR_URL", stack.collector_url())
        .env("AUDIT_TOKEN", stack.read_token())
        .env("INGEST_TOKEN", stack.ingest_token())
        .env("MARKUP", MARKUP)
        .env("REPO_ROOT", paths::repo_root())
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        .output()
        .expect("node runs (Node.js 20 or newer)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("----- browser suite, {phase} -----\n{stdout}\n{stderr}");
    assert!(output.status.success(), "the browser suite failed ({phase}):\n{stdout}\n{stderr}\n{}", stack.logs());
}

/// Changes one stored event's body as someone with the database file could: drop the
/// trigger that forbids it, update, put the trigger back. `seq` None: the oldest GET.
fn tamper_with_event(stack: &AuditStack, seq: Option<i64>) -> i64 {
    let conn = rusqlite::Connection::open(stack.database_path()).expect("open the database");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    let trigger: String = conn
        .query_row("SELECT sql FROM sqlite_master WHERE name = 'events_content_is_immutable'", [], |row| row.get(0))
        .expect("the immutability trigger exists");
    let seq = seq.unwrap_or_else(|| {
        conn.query_row("SELECT min(seq) FROM events WHERE body LIKE '%\"GET\"%'", [], |row| row.get(0))
            .expect("a GET is stored")
    });
    conn.execute_batch("DROP TRIGGER events_content_is_immutable").expect("drop the trigger");
    let changed = conn
        .execute("UPDATE events SET body = replace(body, '\"GET\"', '\"DELETE\"') WHERE seq = ?1", [seq])
        .expect("update the body");
    assert_eq!(changed, 1, "seq {seq} exists");
    conn.execute_batch(&trigger).expect("restore the trigger");
    seq
}

#[test]
fn the_viewer_shows_filters_pages_follows_charts_and_verifies_the_trail_in_a_real_browser() {
    // A worker's batches and heartbeats every 200 ms; one silent for 2 s is recorded as stopped.
    let options = StackOptions {
        filter_config_patch: Some(serde_json::json!({"batch": {"flushIntervalMs": 200}})),
        collector_args: ["--sender-silence-secs", "2"].map(String::from).to_vec(),
        ..StackOptions::default()
    };
    let mut stack = AuditStack::start(options).expect("the stack starts");
    let url = stack.envoy_url();
    let since = now_rfc3339();
    let hostile_agent = format!("agent {MARKUP}");
    let hostile_query = format!("/pacticipants?q={}", "%3Cscript%3Ewindow.__pwned%3D3%3C%2Fscript%3E");
    let mut expected = 0;
    let mut sent = |method: &str, path: &str, headers: &[(&str, &str)]| {
        send(method, &format!("{url}{path}"), headers, None).expect("the request is answered");
        expected += 1;
    };
    sent("GET", "/pacticipants", &[("user-agent", &hostile_agent), ("referer", MARKUP)]);
    sent("GET", &hostile_query, &[("x-forwarded-email", MARKUP), ("user-agent", "viewer-test hostile-query")]);
    sent("GET", "/pacticipants/%3Cimg%20src%3Dx%20onerror%3D1%3E", &[("user-agent", "viewer-test hostile-path")]);
    let hostile_login = format!("Basic {}", STANDARD.encode(format!("{MARKUP}:secret")));
    sent("GET", "/pacticipants/Foo", &[("authorization", &hostile_login)]);
    let mallory = format!("Basic {}", STANDARD.encode("mallory:secret"));
    sent("GET", "/pacticipants/Foo", &[("authorization", &mallory), ("user-agent", "viewer-test mallory")]);
    sent("DELETE", "/pacticipants/Bar", &[("authorization", &mallory), ("user-agent", "viewer-test mallory")]);
    let spoofed_login = format!("Basic {}", STANDARD.encode(format!("{SPOOFED_NAME}:secret")));
    sent("GET", "/pacticipants/Spoof", &[("authorization", &spoofed_login)]);
    sent("PUT", "/pacticipants/Foo/versions/1.0.0/tags/main", &[("x-forwarded-email", "bob@example.com")]);
    sent("PUT", "/pacticipants/Foo/versions/1.0.1/tags/main", &[]);
    sent("GET", "/audit", &[]);
    sent("GET", "/audit", &[("authorization", "Bearer not-a-token")]);
    sent("GET", "/audit", &[("authorization", &format!("Bearer {}", stack.ingest_token()))]);
    sent("GET", "/no/such/route", &[]);
    let collector = stack.collector_url();
    let token = stack.read_token().to_owned();
    // The trail's order is the order events are stored, and each Envoy worker delivers its own
    // batches: the requests above are stored before any filler is sent, so the window's first
    // page (oldest first) holds them all.
    wait_for_trail(&collector, &token, TRAIL_TIMEOUT, |events| events.len() >= expected)
        .expect("the requests are stored");
    for _ in 0..FILLER_REQUESTS {
        send("GET", &format!("{url}/pacticipants"), &[("user-agent", "viewer-test filler")], None)
            .expect("the request is answered");
    }
    let expected = expected + FILLER_REQUESTS;
    wait_for_trail(&collector, &token, TRAIL_TIMEOUT, |events| events.len() >= expected).expect("the trail fills");
    // Everything the browser does comes after `until`, so counts up to it stay put.
    std::thread::sleep(Duration::from_millis(5));
    let until = now_rfc3339();
    std::thread::sleep(Duration::from_millis(5));
    // A graceful stop signs a checkpoint over everything stored.
    stack.stop_collector().expect("the collector stops cleanly");
    stack.restart_collector().expect("the collector starts again");

    let window = [("SINCE", since.clone()), ("UNTIL", until.clone())];
    run_browser_suite(&stack, "intact", &window);

    // An old event the first pages do not load: verify must not call it intact.
    let old = tamper_with_event(&stack, None);
    run_browser_suite(&stack, "tampered-unloaded", &[("TAMPERED_SEQ", old.to_string())]);

    // The newest event (a GET the browser made): the first page newest-first shows it.
    let newest = send(
        "GET",
        &format!("{collector}/audit?sort=-timestamp&pageSize=1"),
        &[("authorization", &format!("Bearer {token}"))],
        None,
    )
    .expect("read the newest event");
    let seq = serde_json::from_str::<serde_json::Value>(&newest.body).expect("JSON")["events"][0]["chain"]["seq"]
        .as_i64()
        .expect("a chain seq");
    tamper_with_event(&stack, Some(seq));
    run_browser_suite(&stack, "tampered", &[("TAMPERED_SEQ", seq.to_string())]);

    // The collector's own records of its senders (ingest refuses them from clients): an idle
    // Envoy stopped with SIGTERM, whose workers say they are finishing, then one killed, whose
    // workers fall silent. Envoy is started again after each, for the browser.
    stack.sigterm_envoy().expect("Envoy stops");
    stack.start_envoy_again().expect("Envoy starts again");
    send("GET", &format!("{}/pacticipants", stack.envoy_url()), &[], None).expect("the request is answered");
    stack.sigkill_envoy().expect("Envoy is killed");
    stack.start_envoy_again().expect("Envoy starts again");
    let of_type =
        |events: &[audit_event::AuditEvent], kind: &str| events.iter().filter(|e| e.event_type == kind).count();
    wait_for_trail(&collector, &token, Duration::from_secs(60), |events| {
        of_type(events, SENDER_FINISHED_TYPE) > 0 && of_type(events, SENDER_STOPPED_TYPE) > 0
    })
    .expect("the collector records a sender that finished and one that fell silent");
    run_browser_suite(&stack, "senders", &[]);
}
