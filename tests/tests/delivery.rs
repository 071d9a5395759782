//! Delivery that loses nothing, end to end: real Envoy, the real collector killed and
//! restarted under load, a buffer too small for an outage, fail-closed mode, and a reader
//! following the trail while it is being written.
//!
//! Every wait is a bounded poll; nothing asserts on wall-clock durations. The tests run
//! one at a time (each starts a whole stack, and the machine has two cores).
// The helpers below are test code too: a failed expectation there is the test's report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use audit_e2e::client::{agent, read_page, send, wait_for_trail, walk_trail};
use audit_e2e::filter_host::FilterHost;
use audit_e2e::{AuditStack, StackOptions};
use audit_event::{AuditEvent, DELIVERY_GAP_TYPE};
use serde_json::json;

/// One stack at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn start(patch: serde_json::Value) -> AuditStack {
    AuditStack::start(StackOptions { filter_config_patch: Some(patch), ..StackOptions::default() })
        .expect("the stack starts")
}

/// Envoy's admin `/stats` as name → value (counters and gauges).
fn envoy_stats(stack: &AuditStack) -> HashMap<String, u64> {
    let reply = send("GET", &format!("{}/stats", stack.admin_url()), &[], None).expect("GET /stats");
    reply
        .body
        .lines()
        .filter_map(|line| line.split_once(": "))
        .filter_map(|(name, value)| Some((name.to_string(), value.trim().parse().ok()?)))
        .collect()
}

/// One of the filter's stats, as Envoy prints it (`wasmcustom.audit_sidecar.<name>`, or
/// `dynamicmodulescustom.` for the native module).
fn filter_stat(stack: &AuditStack, name: &str) -> u64 {
    let stats = envoy_stats(stack);
    let full = format!("{}audit_sidecar.{name}", stack.filter_host().stats_prefix());
    *stats.get(&full).unwrap_or_else(|| panic!("Envoy's /stats has no {full}"))
}

/// Polls `condition` every 50 ms until it holds, failing with `what` after `timeout`.
fn poll_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A reader of the trail that keeps its place: the first poll follows `next` links from
/// the start, every later one resumes with `from=<last uuid seen>` (inclusive, so the
/// first event of each resumed page is the one seen last, and is checked and skipped).
struct TrailFollower {
    base_url: String,
    token: String,
    events: Vec<AuditEvent>,
}

impl TrailFollower {
    fn new(stack: &AuditStack) -> Self {
        Self { base_url: stack.collector_url(), token: stack.read_token().to_string(), events: Vec::new() }
    }

    /// Reads everything stored after the last event seen; returns how many were new.
    fn poll(&mut self) -> Result<usize> {
        let before = self.events.len();
        let mut url = match self.events.last() {
            None => format!("{}/audit?pageSize=100", self.base_url),
            Some(last) => format!("{}/audit?pageSize=100&from={}", self.base_url, last.uuid),
        };
        let mut resumed = self.events.last().map(|last| last.uuid.clone());
        for _ in 0..100_000 {
            let page = read_page(&url, &self.token)?;
            let mut events = page.events.into_iter();
            if let Some(expected) = resumed.take() {
                match events.next() {
                    Some(first) if first.uuid == expected => {}
                    other => bail!("from={expected} began with {:?}, not the event it names", other.map(|e| e.uuid)),
                }
            }
            self.events.extend(events);
            match page.links.next {
                Some(next) => url = next.href,
                None => return Ok(self.events.len() - before),
            }
        }
        bail!("the next links did not end")
    }

    fn markers<'a>(&'a self, prefix: &str) -> HashMap<&'a str, usize> {
        count_markers(&self.events, prefix)
    }
}

/// How many events each user agent starting with `prefix` has.
fn count_markers<'a>(events: &'a [AuditEvent], prefix: &str) -> HashMap<&'a str, usize> {
    let mut found = HashMap::new();
    for agent in events.iter().filter_map(|e| e.payload.user_agent.as_deref()).filter(|a| a.starts_with(prefix)) {
        *found.entry(agent).or_insert(0) += 1;
    }
    found
}

fn gap_total(events: &[AuditEvent]) -> u64 {
    events
        .iter()
        .filter(|e| e.event_type == DELIVERY_GAP_TYPE)
        .map(|e| e.gap.as_ref().map_or(0, |gap| gap.lost_events))
        .sum()
}

/// Asserts that markers `<prefix>0` … `<prefix>{count-1}` each appear exactly once.
fn assert_each_once(found: &HashMap<&str, usize>, prefix: &str, count: usize) {
    let missing: Vec<usize> = (0..count).filter(|n| !found.contains_key(format!("{prefix}{n}").as_str())).collect();
    let doubled: Vec<(&&str, &usize)> = found.iter().filter(|(_, times)| **times > 1).collect();
    assert!(
        missing.is_empty(),
        "{} requests have no event, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        doubled.is_empty(),
        "{} requests have several events, e.g. {:?}",
        doubled.len(),
        &doubled[..doubled.len().min(10)]
    );
    assert_eq!(found.len(), count, "events with the marker {prefix}");
}

#[test]
fn a_collector_killed_twice_under_load_loses_and_duplicates_nothing() {
    const REQUESTS: usize = 20_000;
    const CLIENTS: usize = 4;
    let _serial = serial();
    // Buffers large enough for the outages (the point here is zero loss); backoff capped
    // low so delivery resumes soon after each restart.
    let mut stack = start(json!({
        "batch": {"flushIntervalMs": 200},
        "buffer": {"maxEvents": 100_000, "maxBytes": 134_217_728},
        "retry": {"maxBackoffMs": 1000}
    }));
    let url = format!("{}/pacticipants", stack.envoy_url());
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (url, next, done) = (url.clone(), next.clone(), done.clone());
            std::thread::spawn(move || -> Vec<(usize, String)> {
                let agent = agent();
                let mut failures = Vec::new();
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= REQUESTS {
                        return failures;
                    }
                    let marker = format!("e2e-load-{n}");
                    match agent.get(&url).header("user-agent", &marker).call() {
                        Ok(reply) if reply.status() == 200 => {}
                        Ok(reply) => failures.push((n, format!("status {}", reply.status()))),
                        Err(err) => failures.push((n, err.to_string())),
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    for (round, at) in [REQUESTS / 4, REQUESTS * 3 / 5].into_iter().enumerate() {
        poll_until(&format!("{at} requests before outage {round}"), Duration::from_secs(120), || {
            done.load(Ordering::Relaxed) >= at
        });
        stack.kill_collector().expect("SIGKILL the collector");
        let killed_at = done.load(Ordering::Relaxed);
        // The outage lasts while at least 500 more requests go through.
        poll_until("requests during the outage", Duration::from_secs(60), || {
            done.load(Ordering::Relaxed) >= (killed_at + 500).min(REQUESTS)
        });
        stack.restart_collector().expect("the collector restarts");
        eprintln!(
            "outage {round}: collector killed after {killed_at} requests, restarted after {}",
            done.load(Ordering::Relaxed)
        );
    }
    let failures: Vec<(usize, String)> =
        clients.into_iter().flat_map(|client| client.join().expect("a client thread panicked")).collect();
    assert!(
        failures.is_empty(),
        "{} requests failed through Envoy, e.g. {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );

    let mut trail = TrailFollower::new(&stack);
    let deadline = Instant::now() + Duration::from_secs(120);
    while trail.markers("e2e-load-").len() < REQUESTS {
        assert!(
            Instant::now() < deadline,
            "after 120 s the trail holds {} of {REQUESTS} requests",
            trail.markers("e2e-load-").len()
        );
        trail.poll().expect("reading the trail");
        std::thread::sleep(Duration::from_millis(200));
    }
    poll_until("the buffers to drain", Duration::from_secs(30), || filter_stat(&stack, "buffered_events") == 0);
    trail.poll().expect("reading the trail");
    assert_each_once(&trail.markers("e2e-load-"), "e2e-load-", REQUESTS);
    assert_eq!(trail.events.len(), REQUESTS, "the trail holds only the load's events (no gap records)");
    let (captured, sent, dropped, retried) = (
        filter_stat(&stack, "captured"),
        filter_stat(&stack, "sent"),
        filter_stat(&stack, "dropped"),
        filter_stat(&stack, "retried"),
    );
    eprintln!("load: {REQUESTS} requests, {captured} captured, {sent} sent, {retried} retried, {dropped} dropped");
    assert_eq!((captured, sent, dropped), (REQUESTS as u64, REQUESTS as u64, 0), "captured, sent, dropped");
}

#[test]
fn an_outage_longer_than_the_buffer_is_counted_and_recorded_as_gaps() {
    const REQUESTS: usize = 300;
    let _serial = serial();
    let mut stack = start(json!({
        "batch": {"maxEvents": 10, "flushIntervalMs": 100},
        "buffer": {"maxEvents": 10},
        "retry": {"initialBackoffMs": 100, "maxBackoffMs": 500}
    }));
    stack.kill_collector().expect("SIGKILL the collector");
    let url = format!("{}/pacticipants", stack.envoy_url());
    for n in 0..REQUESTS {
        // A new connection each time, so both workers take a share.
        let reply = send("GET", &url, &[("user-agent", &format!("e2e-gap-{n}"))], None).expect("GET through Envoy");
        assert_eq!(reply.status, 200, "request {n} during the outage (fail-open)");
    }
    poll_until("drops while the collector is down", Duration::from_secs(30), || filter_stat(&stack, "dropped") > 0);
    stack.restart_collector().expect("the collector restarts");

    let mut trail = TrailFollower::new(&stack);
    poll_until("stored events and gap records to account for every request", Duration::from_secs(60), || {
        trail.poll().expect("reading the trail");
        let stored = trail.markers("e2e-gap-").len();
        stored + gap_total(&trail.events) as usize >= REQUESTS && filter_stat(&stack, "buffered_events") == 0
    });
    let found = trail.markers("e2e-gap-");
    assert!(found.values().all(|times| *times == 1), "an event was stored twice");
    let stored = found.len();
    let lost = gap_total(&trail.events);
    let dropped = filter_stat(&stack, "dropped");
    let gap_records = trail.events.iter().filter(|e| e.event_type == DELIVERY_GAP_TYPE).count();
    eprintln!("outage: {REQUESTS} requests, {stored} stored, {lost} lost in {gap_records} gap records, dropped stat {dropped}");
    assert!(lost > 0, "a buffer of 10 per worker cannot hold {REQUESTS} events");
    assert_eq!(lost, dropped, "the gap records' lostEvents add up to Envoy's dropped counter");
    assert_eq!(stored as u64 + lost, REQUESTS as u64, "events stored + lost = requests sent");
    assert_eq!(filter_stat(&stack, "gap_records"), gap_records as u64, "gap_records counts the records stored");
    // Prometheus drops Envoy's `wasmcustom.` prefix: the names are `audit_sidecar_<name>`
    // (`envoy_dynamicmodulescustom_audit_sidecar_<name>` for the native module).
    let prometheus =
        send("GET", &format!("{}/stats/prometheus", stack.admin_url()), &[], None).expect("GET /stats/prometheus");
    let prefix = stack.filter_host().prometheus_prefix();
    for expected in [
        format!("{prefix}audit_sidecar_dropped{{}} {dropped}"),
        format!("{prefix}audit_sidecar_gap_records{{}} {gap_records}"),
        format!("# TYPE {prefix}audit_sidecar_buffered_events gauge"),
        format!("# TYPE {prefix}audit_sidecar_delivery_failing gauge"),
    ] {
        assert!(prometheus.body.lines().any(|line| line == expected), "/stats/prometheus lacks `{expected}`");
    }
    for gap in trail.events.iter().filter(|e| e.event_type == DELIVERY_GAP_TYPE) {
        let window = gap.gap.as_ref().expect("a gap record has its gap");
        assert!(window.first_lost_at <= window.last_lost_at, "gap {}: {window:?}", gap.uuid);
    }
}

/// The filter's senders in Envoy with the stack's `--concurrency 2`: the wasm filter's root
/// contexts, one per worker and one on the main thread; the native module's workers (each
/// from its first stream on; the requests below reach both).
fn senders(stack: &AuditStack) -> u64 {
    match stack.filter_host() {
        FilterHost::Wasm => 3,
        FilterHost::Native => 2,
    }
}

#[test]
fn fail_closed_refuses_mutations_while_the_collector_is_down_and_reads_go_on() {
    let _serial = serial();
    let mut stack = start(json!({
        "failurePolicy": {"mode": "closed"},
        "batch": {"flushIntervalMs": 100},
        "retry": {"initialBackoffMs": 100, "maxBackoffMs": 300}
    }));
    let base = stack.envoy_url();
    let put_url = format!("{base}/pacticipants/Foo/versions/1.0.0/tags/main");
    let put = |marker: &str| send("PUT", &put_url, &[("user-agent", marker)], None).expect("PUT through Envoy");
    let get = |marker: &str| {
        send("GET", &format!("{base}/pacticipants"), &[("user-agent", marker)], None).expect("GET through Envoy")
    };
    let upstream_requests = |stack: &AuditStack| envoy_stats(stack)["cluster.upstream_service.upstream_rq_total"];

    assert_eq!(put("e2e-closed-before").status, 201, "with the collector up, a PUT passes");
    stack.kill_collector().expect("SIGKILL the collector");
    // Each worker learns that the trail cannot be written from its own failed delivery (its
    // heartbeat, idle or not); so does the root context Envoy runs on its main thread, a
    // sender too. Reads go on meanwhile.
    let mut reads = 0;
    poll_until("every root context to see its delivery fail", Duration::from_secs(30), || {
        assert_eq!(get(&format!("e2e-closed-read-{reads}")).status, 200, "a GET while the collector is down");
        reads += 1;
        filter_stat(&stack, "delivery_failing") == senders(&stack)
    });

    let upstream_before = upstream_requests(&stack);
    for n in 0..5 {
        let reply = put(&format!("e2e-closed-refused-{n}"));
        assert_eq!(reply.status, 503, "PUT {n} with the collector down: {}", reply.body);
        let body: serde_json::Value = serde_json::from_str(&reply.body).expect("the refusal is JSON");
        assert_eq!(
            (body["error"].as_str(), body["reason"].as_str(), body["forwarded"].as_bool()),
            (Some("audit_trail_unavailable"), Some("audit_collector_unreachable"), Some(false)),
            "{body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| m.contains("not forwarded")), "{body}");
        assert_eq!(reply.header("x-audit-sidecar-refused"), Some("audit_collector_unreachable"));
    }
    assert_eq!(upstream_requests(&stack), upstream_before, "no refused PUT reached the upstream");
    assert_eq!(get("e2e-closed-read-after").status, 200, "reads go on");
    assert_eq!(upstream_requests(&stack), upstream_before + 1, "the GET did reach the upstream");
    // Stats are published on the filter's tick, not per request.
    poll_until("the refused counter to reach 5", Duration::from_secs(10), || filter_stat(&stack, "refused") == 5);

    stack.restart_collector().expect("the collector restarts");
    poll_until("delivery to succeed again on both workers", Duration::from_secs(30), || {
        filter_stat(&stack, "delivery_failing") == 0
    });
    assert_eq!(put("e2e-closed-after").status, 201, "with the collector back, a PUT passes again");

    let events = wait_for_trail(&stack.collector_url(), stack.read_token(), Duration::from_secs(30), |events| {
        count_markers(events, "e2e-closed-refused-").len() == 5 && count_markers(events, "e2e-closed-after").len() == 1
    })
    .expect("the refused PUTs are in the trail");
    for event in
        events.iter().filter(|e| e.payload.user_agent.as_deref().is_some_and(|a| a.starts_with("e2e-closed-refused-")))
    {
        assert_eq!(
            (event.payload.method.as_str(), event.response.as_ref().map(|r| r.status)),
            ("PUT", Some(503)),
            "a refused request is audited with the 503 it got"
        );
    }
}

#[test]
fn a_reader_following_the_trail_during_ingest_sees_every_event_once_in_order() {
    const REQUESTS: usize = 1500;
    let _serial = serial();
    let stack = start(json!({"batch": {"maxEvents": 20, "flushIntervalMs": 50}}));
    let url = format!("{}/pacticipants", stack.envoy_url());
    let finished = Arc::new(AtomicBool::new(false));
    let sender = {
        let finished = finished.clone();
        std::thread::spawn(move || {
            let agent = agent();
            for n in 0..REQUESTS {
                let reply = agent.get(&url).header("user-agent", &format!("e2e-cursor-{n}")).call();
                assert!(reply.is_ok_and(|reply| reply.status() == 200), "request {n}");
            }
            finished.store(true, Ordering::Relaxed);
        })
    };

    let mut trail = TrailFollower::new(&stack);
    let mut polls = 0;
    let mut polls_with_news = 0;
    poll_until("the follower to see every request", Duration::from_secs(90), || {
        polls += 1;
        if trail.poll().expect("following the trail") > 0 {
            polls_with_news += 1;
        }
        finished.load(Ordering::Relaxed) && trail.markers("e2e-cursor-").len() >= REQUESTS
    });
    sender.join().expect("the sender thread");
    trail.poll().expect("one last poll");

    let (stored, _) = walk_trail(&stack.collector_url(), stack.read_token(), 100).expect("a fresh walk");
    eprintln!(
        "cursor: {} events followed in {polls} polls ({polls_with_news} with new events); {} stored",
        trail.events.len(),
        stored.len()
    );
    assert!(polls_with_news > 1, "the follower should have read while the trail grew");
    let followed: Vec<&str> = trail.events.iter().map(|e| e.uuid.as_str()).collect();
    let walked: Vec<&str> = stored.iter().map(|e| e.uuid.as_str()).collect();
    assert_eq!(followed, walked, "the followed events are the stored events, in order, each once");
    assert_each_once(&trail.markers("e2e-cursor-"), "e2e-cursor-", REQUESTS);
}
