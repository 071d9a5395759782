//! Completeness the receiver can prove, end to end: every filter worker numbers its events
//! and heartbeats, and the collector records what it did not receive: a batch swallowed
//! between filter and collector (answered 200, never stored) becomes a collector-side gap.
//! The ways Envoy stops are `envoy_stops.rs`. Loads are bounded in count and time.
// The helpers below are test code too: a failed expectation there is the test's report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use audit_e2e::accounting::{self, lost_in, of_type, poll_until, stored_markers};
use audit_e2e::client::send;
use audit_e2e::{AuditStack, StackOptions};
use audit_event::sender::SENDER_GAP_TYPE;
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

fn trail(stack: &AuditStack) -> Vec<AuditEvent> {
    accounting::trail(&stack.collector_url(), stack.read_token()).expect("reading the trail")
}

/// What a proxy in front of the collector does with each batch before forwarding it, given
/// how many events it carries: true to answer it 200 itself (the batch never arrives).
type Swallow = Arc<dyn Fn(usize) -> bool + Send + Sync>;

/// A proxy in front of the collector that does `swallow` to each batch. Returns its address.
fn proxy(collector: SocketAddr, swallow: Swallow) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let address = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let swallow = swallow.clone();
            std::thread::spawn(move || {
                let _ = serve_connection(stream, collector, &*swallow);
            });
        }
    });
    address
}

/// A proxy that answers the `swallow`-th batch carrying events with a 200 of its own and
/// forwards everything else. Returns its address and how many events it swallowed.
fn swallowing_proxy(collector: SocketAddr, swallow: usize) -> (SocketAddr, Arc<AtomicUsize>) {
    let swallowed = Arc::new(AtomicUsize::new(0));
    let batches = AtomicUsize::new(0);
    let counter = swallowed.clone();
    let address = proxy(
        collector,
        Arc::new(move |events| {
            let this_one = events > 0 && batches.fetch_add(1, Ordering::SeqCst) + 1 == swallow;
            if this_one {
                counter.store(events, Ordering::SeqCst);
            }
            this_one
        }),
    );
    (address, swallowed)
}

fn serve_connection(
    stream: TcpStream,
    collector: SocketAddr,
    swallow: &(dyn Fn(usize) -> bool + Sync),
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
        let (status, answer) = if swallow(events) {
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
        Ok(swallowed.load(Ordering::SeqCst) > 0 && stored + lost_in(&events, SENDER_GAP_TYPE) >= requests)
    })
    .expect("the collector records the swallowed batch");
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

#[test]
fn a_new_worker_answers_no_request_before_the_collector_answered_its_announcement() {
    let _serial = serial();
    // Every call to the collector waits until the gate opens: the workers' announcements too.
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let waiting = gate.clone();
    let wait_for_gate = move |_events: usize| {
        let (open, opened) = &*waiting;
        let guard = open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = opened.wait_timeout_while(guard, Duration::from_secs(60), |open| !*open);
        false
    };
    let stack = AuditStack::start_through(
        StackOptions {
            filter_config_patch: Some(json!({"batch": {"flushIntervalMs": 200}, "collector": {"timeoutMs": 30000}})),
            ..options()
        },
        |collector| Ok(proxy(collector, Arc::new(wait_for_gate))),
    )
    .expect("the stack starts");
    let url = format!("{}/pacticipants", stack.envoy_url());
    let answered = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..4)
        .map(|n| {
            let (url, answered) = (url.clone(), answered.clone());
            std::thread::spawn(move || {
                let reply = send("GET", &url, &[("user-agent", &format!("e2e-held-{n}"))], None);
                answered.fetch_add(1, Ordering::SeqCst);
                reply.map(|reply| reply.status)
            })
        })
        .collect();
    // Bounded: far less than the 30 s the workers would hold their requests at most.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(answered.load(Ordering::SeqCst), 0, "a request was answered before the collector knew its worker");
    let (open, opened) = &*gate;
    *open.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
    opened.notify_all();
    for client in clients {
        assert_eq!(client.join().expect("the client").expect("an answer"), 200, "held, then answered");
    }
    let mut events = trail(&stack);
    poll_until("the held requests in the trail", Duration::from_secs(30), || {
        events = trail(&stack);
        Ok(stored_markers(&events, "e2e-held-").len() == 4)
    })
    .expect("every held request is stored");
}
