//! Completeness the receiver can prove, end to end: every filter worker numbers its events
//! and heartbeats, and the collector records what it did not receive. (a) SIGTERM to Envoy
//! under load, Envoy started again: every answered request is stored, counted in a recorded
//! loss, or inside its sender's recorded unknown tail. (b) The documented graceful stop
//! (`audit-collector envoy-drain`, then SIGTERM): nothing lost. (c) A batch swallowed
//! between filter and collector (answered 200, never stored) becomes a collector-side gap.
//!
//! Loads are bounded in count and time; nothing asserts on wall-clock durations except the
//! recorded window's own width, which the collector computes from the sender's interval.
// The helpers below are test code too: a failed expectation there is the test's report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use audit_e2e::client::{agent, send, walk_trail};
use audit_e2e::{paths, AuditStack, StackOptions};
use audit_event::sender::{SENDER_GAP_TYPE, SENDER_STOPPED_TYPE};
use audit_event::timestamp::parse_rfc3339_millis;
use audit_event::{AuditEvent, DELIVERY_GAP_TYPE};
use serde_json::json;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Flush (and heartbeat) every 200 ms; the collector records a silent sender after 2 s
/// and a hole after 1 s.
fn options() -> StackOptions {
    StackOptions {
        filter_config_patch: Some(json!({"batch": {"flushIntervalMs": 200}})),
        collector_args: ["--sender-silence-secs", "2", "--hole-grace-secs", "1"].map(String::from).to_vec(),
        ..StackOptions::default()
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis() as i64)
}

fn trail(stack: &AuditStack) -> Vec<AuditEvent> {
    walk_trail(&stack.collector_url(), stack.read_token(), 100).expect("reading the trail").0
}

fn of_type<'a>(events: &'a [AuditEvent], event_type: &'a str) -> impl Iterator<Item = &'a AuditEvent> + 'a {
    events.iter().filter(move |event| event.event_type == event_type)
}

fn lost_in(events: &[AuditEvent], event_type: &str) -> u64 {
    of_type(events, event_type).map(|event| event.gap.as_ref().map_or(0, |gap| gap.lost_events)).sum()
}

fn poll_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Requests through Envoy from `clients` threads, each marked `<prefix><n>` in its user
/// agent, until `limit` were sent or `stop` is set; returns each answered one's marker and
/// when its answer arrived (ms).
struct Load {
    answered: Arc<Mutex<Vec<(String, i64)>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(url: String, prefix: &'static str, clients: usize, limit: usize) -> Load {
        let answered = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let threads = (0..clients)
            .map(|_| {
                let (url, answered, stop, next) = (url.clone(), answered.clone(), stop.clone(), next.clone());
                std::thread::spawn(move || {
                    let agent = agent();
                    while !stop.load(Ordering::Relaxed) {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        if n >= limit {
                            return;
                        }
                        let marker = format!("{prefix}{n}");
                        if let Ok(reply) = agent.get(&url).header("user-agent", &marker).call() {
                            if reply.status() == 200 {
                                answered.lock().unwrap().push((marker, now_ms()));
                            }
                        }
                    }
                })
            })
            .collect();
        Load { answered, stop, threads }
    }

    fn count(&self) -> usize {
        self.answered.lock().unwrap().len()
    }

    /// Stops the clients now and returns what was answered.
    fn finish(self) -> Vec<(String, i64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.join()
    }

    /// Waits for the clients to send their whole count.
    fn join(self) -> Vec<(String, i64)> {
        for thread in self.threads {
            thread.join().expect("a client thread panicked");
        }
        Arc::try_unwrap(self.answered).expect("clients done").into_inner().unwrap()
    }
}

fn stored_markers<'a>(events: &'a [AuditEvent], prefix: &str) -> HashMap<&'a str, usize> {
    let mut found = HashMap::new();
    for agent in events.iter().filter_map(|e| e.payload.user_agent.as_deref()).filter(|a| a.starts_with(prefix)) {
        *found.entry(agent).or_insert(0) += 1;
    }
    found
}

/// The senders that stored events with `prefix`.
fn senders_of(events: &[AuditEvent], prefix: &str) -> Vec<String> {
    let mut senders: Vec<String> = events
        .iter()
        .filter(|e| e.payload.user_agent.as_deref().is_some_and(|a| a.starts_with(prefix)))
        .filter_map(|e| e.sender.as_ref().map(|sender| sender.id.clone()))
        .collect();
    senders.sort();
    senders.dedup();
    senders
}

fn stopped_record<'a>(events: &'a [AuditEvent], sender: &str) -> Option<&'a AuditEvent> {
    of_type(events, SENDER_STOPPED_TYPE).find(|e| e.gap.as_ref().and_then(|gap| gap.sender.as_deref()) == Some(sender))
}

#[test]
fn sigterm_to_envoy_under_load_leaves_no_loss_the_trail_does_not_record() {
    const LIMIT: usize = 6000;
    let _serial = serial();
    let mut stack = AuditStack::start(options()).expect("the stack starts");
    let load = Load::start(format!("{}/pacticipants", stack.envoy_url()), "e2e-term-", 4, LIMIT);
    poll_until("1000 answered requests", Duration::from_secs(120), || load.count() >= 1000);
    let status = stack.sigterm_envoy().expect("Envoy stops");
    let answered = load.finish();
    eprintln!("Envoy exited with {status} after answering {} requests", answered.len());
    stack.start_envoy_again().expect("Envoy starts again");
    let after = send("GET", &format!("{}/pacticipants", stack.envoy_url()), &[("user-agent", "e2e-after")], None)
        .expect("a request through the new Envoy");
    assert_eq!(after.status, 200);

    let mut events = trail(&stack);
    let senders = senders_of(&events, "e2e-term-");
    assert!(!senders.is_empty(), "no event of the load was stored");
    poll_until("a SenderStopped record for every sender of the stopped Envoy", Duration::from_secs(30), || {
        events = trail(&stack);
        senders.iter().all(|sender| stopped_record(&events, sender).is_some())
    });

    let stored = stored_markers(&events, "e2e-term-");
    assert!(stored.values().all(|times| *times == 1), "an event was stored twice");
    let mut in_tail = 0;
    let mut missing_before_tail = 0;
    let mut widest_window_ms = 0;
    let windows: Vec<(i64, i64, u64)> = senders
        .iter()
        .map(|sender| {
            let gap = stopped_record(&events, sender).and_then(|record| record.gap.as_ref()).expect("stopped record");
            let heard = parse_rfc3339_millis(gap.last_heard_at.as_deref().expect("lastHeardAt")).expect("a time");
            let until = parse_rfc3339_millis(gap.unknown_until.as_deref().expect("unknownUntil")).expect("a time");
            widest_window_ms = widest_window_ms.max(until - heard);
            (heard, until, gap.lost_events)
        })
        .collect();
    // on_log runs just after the answer is sent: an answer up to 100 ms before a report
    // may be captured after it, so the tail is taken to start that much earlier.
    const CAPTURE_AFTER_ANSWER_MS: i64 = 100;
    for (marker, answered_at) in &answered {
        if stored.contains_key(marker.as_str()) {
            continue;
        }
        if windows
            .iter()
            .any(|(heard, until, _)| *answered_at >= heard - CAPTURE_AFTER_ANSWER_MS && answered_at <= until)
        {
            in_tail += 1;
        } else {
            missing_before_tail += 1;
        }
    }
    let counted =
        lost_in(&events, SENDER_STOPPED_TYPE) + lost_in(&events, SENDER_GAP_TYPE) + lost_in(&events, DELIVERY_GAP_TYPE);
    eprintln!(
        "SIGTERM: {} answered, {} stored, {} counted lost by recorded gaps, {} missing inside a sender's unknown \
         tail (widest {} ms), {} missing before it",
        answered.len(),
        stored.len(),
        counted,
        in_tail,
        widest_window_ms,
        missing_before_tail
    );
    assert!(
        missing_before_tail as u64 <= counted,
        "{missing_before_tail} answered requests are neither stored nor in an unknown tail, but the trail \
         counts only {counted} lost"
    );
    let heartbeat_ms = 300; // flushIntervalMs 200 + a 100 ms tick
    assert!(
        widest_window_ms <= 2 * heartbeat_ms + 1000,
        "an unknown tail of {widest_window_ms} ms is far more than one heartbeat interval ({heartbeat_ms} ms)"
    );
}

#[test]
fn the_documented_graceful_stop_under_load_loses_nothing() {
    const REQUESTS: usize = 1500;
    let _serial = serial();
    let mut stack = AuditStack::start(options()).expect("the stack starts");
    let load = Load::start(format!("{}/pacticipants", stack.envoy_url()), "e2e-drain-", 4, REQUESTS);
    let answered = load.join();
    let drain = Command::new(paths::collector_binary().expect("the collector binary"))
        .args(["envoy-drain", "--admin", &stack.admin_url(), "--deadline-secs", "30"])
        .output()
        .expect("envoy-drain runs");
    assert!(
        drain.status.success(),
        "envoy-drain failed: {}{}",
        String::from_utf8_lossy(&drain.stdout),
        String::from_utf8_lossy(&drain.stderr)
    );
    stack.sigterm_envoy().expect("Envoy stops");

    let mut events = trail(&stack);
    let senders = senders_of(&events, "e2e-drain-");
    poll_until("a SenderStopped record for every sender", Duration::from_secs(30), || {
        events = trail(&stack);
        senders.iter().all(|sender| stopped_record(&events, sender).is_some())
    });
    let stored = stored_markers(&events, "e2e-drain-");
    let lost =
        lost_in(&events, SENDER_STOPPED_TYPE) + lost_in(&events, SENDER_GAP_TYPE) + lost_in(&events, DELIVERY_GAP_TYPE);
    eprintln!("graceful stop: {} answered, {} stored, {lost} recorded lost", answered.len(), stored.len());
    assert_eq!(answered.len(), REQUESTS, "every request was answered");
    assert!(
        answered.iter().all(|(marker, _)| stored.get(marker.as_str()) == Some(&1)),
        "an answered request is not stored once"
    );
    assert_eq!(lost, 0, "the graceful stop lost nothing");
}

/// A proxy in front of the collector that answers the `swallow`-th batch carrying events
/// with a 200 of its own (the batch never reaches the collector) and forwards everything
/// else. Returns its address and how many events it swallowed.
fn swallowing_proxy(collector: SocketAddr, swallow: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let address = listener.local_addr().expect("its address");
    let swallowed = Arc::new(AtomicUsize::new(0));
    let batches = Arc::new(AtomicUsize::new(0));
    let counter = swallowed.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (swallowed, batches) = (counter.clone(), batches.clone());
            std::thread::spawn(move || {
                let _ = serve_connection(stream, collector, swallow, &swallowed, &batches);
            });
        }
    });
    (address, swallowed)
}

fn serve_connection(
    stream: TcpStream,
    collector: SocketAddr,
    swallow: usize,
    swallowed: &AtomicUsize,
    batches: &AtomicUsize,
) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line == "\r\n" {
                break;
            }
            head.push(line);
        }
        let header = |name: &str| {
            head.iter().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.eq_ignore_ascii_case(name).then(|| value.trim().to_string())
            })
        };
        let length: usize = header("content-length").and_then(|value| value.parse().ok()).unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let text = String::from_utf8_lossy(&body).into_owned();
        let events = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|batch| batch["events"].as_array().map(Vec::len))
            .unwrap_or(0);
        let (status, answer) = if events > 0 && batches.fetch_add(1, Ordering::SeqCst) + 1 == swallow {
            swallowed.store(events, Ordering::SeqCst);
            (200, format!("{{\"accepted\":{events},\"duplicates\":0}}"))
        } else {
            let authorization = header("authorization").unwrap_or_default();
            let reply = send(
                "POST",
                &format!("http://{collector}/v1/events"),
                &[("authorization", &authorization), ("content-type", "application/json")],
                Some(&text),
            )
            .map_err(|error| std::io::Error::other(error.to_string()))?;
            (reply.status, reply.body)
        };
        write!(
            writer,
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        )?;
        writer.flush()?;
    }
}

#[test]
fn a_batch_swallowed_between_filter_and_collector_is_recorded_by_the_collector() {
    const ROUNDS: usize = 8;
    const PER_ROUND: usize = 10;
    let _serial = serial();
    let mut swallowed = None;
    let stack = AuditStack::start_through(options(), |collector| {
        let (proxy, count) = swallowing_proxy(collector, 2);
        swallowed = Some(count);
        Ok(proxy)
    })
    .expect("the stack starts");
    let swallowed = swallowed.expect("the proxy started");
    let url = format!("{}/pacticipants", stack.envoy_url());
    for round in 0..ROUNDS {
        for n in 0..PER_ROUND {
            let marker = format!("e2e-swallow-{round}-{n}");
            let reply = send("GET", &url, &[("user-agent", &marker)], None).expect("GET through Envoy");
            assert_eq!(reply.status, 200);
        }
        // Longer than a flush interval, so each round goes out in its own batches.
        std::thread::sleep(Duration::from_millis(400));
    }
    let requests = (ROUNDS * PER_ROUND) as u64;
    let mut events = trail(&stack);
    poll_until("the collector's gap record", Duration::from_secs(30), || {
        events = trail(&stack);
        let stored = stored_markers(&events, "e2e-swallow-").len() as u64;
        swallowed.load(Ordering::SeqCst) > 0 && stored + lost_in(&events, SENDER_GAP_TYPE) >= requests
    });
    let stored = stored_markers(&events, "e2e-swallow-").len() as u64;
    let recorded = lost_in(&events, SENDER_GAP_TYPE);
    let swallowed = swallowed.load(Ordering::SeqCst) as u64;
    eprintln!("swallowed batch: {requests} requests, {stored} stored, {swallowed} swallowed, {recorded} recorded by the collector");
    assert_eq!(recorded, swallowed, "the collector records exactly the swallowed events");
    assert_eq!(stored + recorded, requests, "stored + recorded = requests");
    for record in of_type(&events, SENDER_GAP_TYPE) {
        let gap = record.gap.as_ref().expect("a gap");
        assert!(gap.sender.is_some() && gap.seqs.as_ref().is_some_and(|seqs| seqs.len() == 1), "{gap:?}");
    }
    assert_eq!(lost_in(&events, DELIVERY_GAP_TYPE), 0, "the filter knew of no loss");
}
