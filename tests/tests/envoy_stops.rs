//! The five ways an Envoy running the audit filter stops, each several rounds on one
//! collector, Envoy started again between rounds (`--concurrency 2`, 8 keep-alive clients,
//! each request marked): SIGTERM under load; SIGKILL under load; SIGTERM while clients
//! arrive (one worker busy, new connections opened 5 to 55 ms before the stop, so the other
//! worker, idle until then, gets requests just before it is stopped); the documented drain
//! (`audit-collector envoy-drain`, then SIGTERM) once the traffic stopped; and the drain
//! while the traffic still flows. Then the trail is read back with the collector's own
//! records, once every sender the collector heard of (its `senders` table) has a
//! `SenderStopped` or `SenderFinished` record: every answered request must be stored,
//! counted in a recorded loss, or answered inside a stopped sender's recorded unknown tail
//! ([`audit_e2e::accounting`]), and the drains must lose nothing. A new connection after the
//! drain stopped intake must not be answered (the last round under traffic keeps accepting
//! for `--intake-grace-secs 1` first).
//!
//! Two single stops besides: a clean SIGTERM at idle with events held (each worker must send
//! them with its final report; natively the exit hook makes Envoy wait for that), and a
//! SIGTERM with the collector killed (Envoy must still exit by itself).
//!
//! Loads are bounded in count and time; nothing asserts on wall-clock durations except the
//! recorded tails' own width, which the collector computes from the senders' interval.
// Test code: a failed expectation is the test's report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use audit_e2e::accounting::{self, finished_and_silent, recorded_lost, wait_for_records_of, Accounting};
use audit_e2e::client::send;
use audit_e2e::filter_host::FilterHost;
use audit_e2e::load::{Answered, Load};
use audit_e2e::{paths, AuditStack, StackOptions};
use audit_event::AuditEvent;
use serde_json::json;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One heartbeat interval with `flushIntervalMs` 200: the flush interval plus a 100 ms tick.
const HEARTBEAT_MS: i64 = 300;
const ROUNDS: usize = 3;
const CLIENTS: usize = 8;
/// Envoy's `--concurrency`: each worker is a sender.
const WORKERS: usize = 2;
/// Each load's bound: more than a round answers before its stop.
const LIMIT: usize = 20_000;

/// Flush (and heartbeat) every 200 ms; the collector records a silent sender after 2 s
/// and a hole after 1 s.
fn options() -> StackOptions {
    StackOptions {
        filter_config_patch: Some(json!({"batch": {"flushIntervalMs": 200}})),
        collector_args: ["--sender-silence-secs", "2", "--hole-grace-secs", "1"].map(String::from).to_vec(),
        ..StackOptions::default()
    }
}

fn url(stack: &AuditStack) -> String {
    format!("{}/pacticipants", stack.envoy_url())
}

/// Every sender the collector has heard of, from its database.
fn senders_heard(stack: &AuditStack) -> Vec<String> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    let db = rusqlite::Connection::open_with_flags(stack.database_path(), flags).expect("the collector's database");
    let mut select = db.prepare("SELECT id FROM senders ORDER BY id").expect("senders");
    select.query_map([], |row| row.get(0)).expect("senders").collect::<Result<_, _>>().expect("senders")
}

/// What the rounds of one stop left in the trail.
struct Outcome {
    events: Vec<AuditEvent>,
    accounting: Accounting,
    senders: usize,
    /// Senders recorded as finished, and as fallen silent.
    finished: usize,
    silent: usize,
}

/// Runs `stop` for each round (Envoy started again before each round but the first), then
/// waits for every sender heard of to be recorded, and accounts for what was answered.
fn rounds(name: &str, mut stop: impl FnMut(usize, &mut AuditStack) -> Vec<Answered>) -> Outcome {
    let mut stack = AuditStack::start(options()).expect("the stack starts");
    let mut answered = Vec::new();
    let mut known = 0;
    for round in 0..ROUNDS {
        if round > 0 {
            stack.start_envoy_again().expect("Envoy starts again");
        }
        answered.extend(stop(round, &mut stack));
        let heard = senders_heard(&stack).len();
        assert!(
            heard >= known + WORKERS,
            "round {round}: the collector heard of {} new senders, fewer than Envoy's {WORKERS} workers: a worker              it never heard of may have held answered requests' events",
            heard - known
        );
        known = heard;
    }
    let senders = senders_heard(&stack);
    let events = wait_for_records_of(&stack.collector_url(), stack.read_token(), &senders, Duration::from_secs(60))
        .expect("every sender recorded as stopped or finished");
    let accounting = Accounting::of(&events, &answered, name, &senders).expect("the records are complete");
    let (finished, silent) = finished_and_silent(&events);
    eprintln!(
        "{name}: {accounting}; {} senders: {finished} finished, {silent} fell silent; the trail records {} lost",
        senders.len(),
        recorded_lost(&events)
    );
    Outcome { events, accounting, senders: senders.len(), finished, silent }
}

/// A load of `CLIENTS` keep-alive clients, stopped by `stop` once 1000 requests were answered.
fn under_load(
    prefix: &str,
    stack: &mut AuditStack,
    stop: impl FnOnce(&mut AuditStack) -> std::process::ExitStatus,
) -> Vec<Answered> {
    let load = Load::start(url(stack), prefix, CLIENTS, LIMIT);
    load.wait_for(1000, Duration::from_secs(120)).expect("1000 answered requests");
    let status = stop(stack);
    let answered = load.finish();
    eprintln!("{prefix}: Envoy exited with {status} after answering {} requests", answered.len());
    answered
}

#[test]
fn sigterm_under_load_leaves_no_loss_the_trail_does_not_record() {
    let _serial = serial();
    let outcome = rounds("e2e-term-", |round, stack| {
        under_load(&format!("e2e-term-{round}-"), stack, |stack| stack.sigterm_envoy().expect("Envoy stops"))
    });
    outcome.accounting.check(HEARTBEAT_MS).expect("the trail accounts for every answered request");
}

#[test]
fn sigkill_under_load_leaves_no_loss_the_trail_does_not_record() {
    let _serial = serial();
    let outcome = rounds("e2e-kill-", |round, stack| {
        under_load(&format!("e2e-kill-{round}-"), stack, |stack| stack.sigkill_envoy().expect("Envoy is killed"))
    });
    outcome.accounting.check(HEARTBEAT_MS).expect("the trail accounts for every answered request");
    assert!(outcome.silent > 0, "a killed worker cannot say it stops");
}

#[test]
fn sigterm_as_clients_arrive_at_an_idle_worker_leaves_no_loss_the_trail_does_not_record() {
    let _serial = serial();
    let outcome = rounds("e2e-arrive-", |round, stack| {
        // One client: one connection, so one worker is busy and the other idle.
        let busy = Load::start(url(stack), &format!("e2e-arrive-{round}-busy-"), 1, LIMIT);
        busy.wait_for(300, Duration::from_secs(60)).expect("300 answered requests");
        // New connections, spread over both workers by the kernel, just before the stop.
        let arriving = Load::start(url(stack), &format!("e2e-arrive-{round}-new-"), CLIENTS, LIMIT);
        std::thread::sleep(Duration::from_millis(5 + 25 * round as u64));
        let status = stack.sigterm_envoy().expect("Envoy stops");
        let (mut answered, new) = (busy.finish(), arriving.finish());
        eprintln!("round {round}: Envoy exited with {status}; {} answered on the new connections", new.len());
        answered.extend(new);
        answered
    });
    outcome.accounting.check(HEARTBEAT_MS).expect("the trail accounts for every answered request");
}

/// Runs `audit-collector envoy-drain` (keeping new connections `intake_grace_secs` after
/// health checks fail) and returns its exit code and output; `after_intake` runs once it
/// says intake stopped.
fn envoy_drain(stack: &AuditStack, intake_grace_secs: u64, after_intake: impl FnOnce()) -> (Option<i32>, String) {
    let grace = intake_grace_secs.to_string();
    let mut drain = Command::new(paths::collector_binary().expect("the collector binary"))
        .args(["envoy-drain", "--admin", &stack.admin_url(), "--deadline-secs", "30", "--poll-ms", "100"])
        .args(["--intake-grace-secs", &grace])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("envoy-drain runs");
    let mut stdout = BufReader::new(drain.stdout.take().expect("its output"));
    let mut output = String::new();
    while !output.contains("intake stopped") {
        let read = stdout.read_line(&mut output).expect("its output");
        assert!(read > 0, "envoy-drain did not stop intake: {output}");
    }
    after_intake();
    let finished = drain.wait_with_output().expect("envoy-drain ends");
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
    output.push_str(&rest);
    output.push_str(&String::from_utf8_lossy(&finished.stderr));
    (finished.status.code(), output)
}

/// A new connection is not answered 200 once intake stopped.
fn new_connection_is_refused(stack: &AuditStack, marker: &str) {
    match send("GET", &url(stack), &[("user-agent", marker)], None) {
        Ok(reply) => assert_ne!(reply.status, 200, "a new connection after the drain began was answered 200"),
        Err(error) => eprintln!("a new connection after the drain began: {error:#}"),
    }
}

/// The drains' promise: every answered request stored, nothing lost, every sender finished.
fn assert_lossless(outcome: &Outcome) {
    assert_eq!(outcome.accounting.stored_twice, 0);
    assert_eq!(outcome.accounting.not_stored(), 0, "every answered request is stored");
    assert_eq!(recorded_lost(&outcome.events), 0, "the drain lost nothing");
    assert_eq!(
        outcome.finished + outcome.silent,
        outcome.senders,
        "one record per sender; each sender's records: {:?}",
        sender_records(&outcome.events)
    );
}

/// The collector's records about each sender, in trail order: what to read when a sender
/// has more than one.
fn sender_records(events: &[AuditEvent]) -> std::collections::BTreeMap<&str, Vec<&str>> {
    let mut records = std::collections::BTreeMap::<&str, Vec<&str>>::new();
    for event in events.iter().filter(|event| event.event_type.starts_with("AuditSidecar::Sender")) {
        let sender = event.gap.as_ref().and_then(|gap| gap.sender.as_deref()).unwrap_or("?");
        records.entry(sender).or_default().push(event.event_type.as_str());
    }
    records
}

#[test]
fn the_drain_once_traffic_stopped_loses_nothing() {
    let _serial = serial();
    let outcome = rounds("e2e-drained-", |round, stack| {
        let answered = Load::start(url(stack), &format!("e2e-drained-{round}-"), CLIENTS, 1500).join();
        let (code, output) = envoy_drain(stack, 0, || new_connection_is_refused(stack, "e2e-after-drain"));
        assert_eq!(code, Some(0), "envoy-drain: {output}");
        stack.sigterm_envoy().expect("Envoy stops");
        answered
    });
    assert_lossless(&outcome);
    assert_eq!(accounting::stored_markers(&outcome.events, "e2e-after-drain").len(), 0);
}

#[test]
fn the_drain_while_traffic_flows_stops_intake_and_loses_nothing() {
    let _serial = serial();
    let outcome = rounds("e2e-flowing-", |round, stack| {
        let load = Load::start(url(stack), &format!("e2e-flowing-{round}-"), CLIENTS, LIMIT);
        load.wait_for(500, Duration::from_secs(60)).expect("500 answered requests");
        let mut answered_at_intake_stop = 0;
        // The last round keeps accepting for a second after health checks fail, as in
        // Kubernetes while the endpoint removal spreads: what it answers then is stored too.
        let intake_grace_secs = u64::from(round == ROUNDS - 1);
        let (code, output) = envoy_drain(stack, intake_grace_secs, || {
            answered_at_intake_stop = load.count();
            new_connection_is_refused(stack, "e2e-after-drain");
        });
        assert_eq!(code, Some(0), "envoy-drain under traffic: {output}");
        let answered_when_drained = load.count();
        stack.sigterm_envoy().expect("Envoy stops");
        let answered = load.finish();
        assert_eq!(answered.len(), answered_when_drained, "nothing answered after the drain ended");
        eprintln!(
            "round {round}: {} answered, {} of them after intake stopped (one per open connection at most)",
            answered.len(),
            answered.len() - answered_at_intake_stop
        );
        assert!(answered.len() - answered_at_intake_stop <= CLIENTS, "more answers than open connections");
        answered
    });
    assert_lossless(&outcome);
}

/// The filter's `buffered_events` gauge, from Envoy's admin `/stats`.
fn buffered_events(stack: &AuditStack) -> Option<u64> {
    let name = format!("{}audit_sidecar.buffered_events: ", stack.filter_host().stats_prefix());
    let stats = send("GET", &format!("{}/stats", stack.admin_url()), &[], None).ok()?;
    stats.body.lines().find_map(|line| line.strip_prefix(name.as_str())?.trim().parse().ok())
}

/// A clean SIGTERM at idle, with events held (the flush interval is a minute): each worker
/// sends what it holds with its final report as Envoy exits (the wasm host from `on_done`,
/// the native module from its bootstrap extension's shutdown hook, which Envoy waits on).
/// Both hosts: Envoy exits by itself and cleanly, each sender gets exactly one record
/// (finished, or fallen silent), and every answered request is stored, counted lost, or
/// inside a silent sender's recorded unknown tail: the trail says what it misses. Natively
/// Envoy gives the time, so every event arrives and every sender is recorded finished; the
/// wasm host races Envoy's exit (a few milliseconds: docs/guarantees.md, "best effort"), so
/// for it the flush itself is not asserted, only that nothing is missing unrecorded.
#[test]
fn a_sigterm_at_idle_sends_what_each_worker_holds_and_its_final_report() {
    let _serial = serial();
    let mut stack = AuditStack::start(StackOptions {
        filter_config_patch: Some(json!({"batch": {"flushIntervalMs": 60_000}})),
        ..options()
    })
    .expect("the stack starts");
    const HELD: usize = 5;
    // The flush interval plus a 100 ms tick: how far apart the workers' reports are.
    const IDLE_HEARTBEAT_MS: i64 = 60_100;
    let mut answered: Vec<Answered> = Vec::new();
    for request in 0..HELD {
        let marker = format!("e2e-idle-term-{request}");
        let reply = send("GET", &url(&stack), &[("user-agent", &marker)], None).expect("the request is answered");
        assert_eq!(reply.status, 200);
        answered.push((marker, audit_e2e::load::now_ms()));
    }
    accounting::poll_until("the events to be held", Duration::from_secs(30), || {
        Ok(buffered_events(&stack) == Some(HELD as u64))
    })
    .expect("the events held by the workers");
    let status = stack.sigterm_envoy().expect("Envoy stops");
    let senders = senders_heard(&stack);
    // A sender whose final report did not get out is recorded one heartbeat interval plus
    // `--sender-silence-secs` (2 s) after its last report.
    let events = wait_for_records_of(&stack.collector_url(), stack.read_token(), &senders, Duration::from_secs(90))
        .expect("every sender recorded as stopped or finished");
    let accounting =
        Accounting::of(&events, &answered, "e2e-idle-term-", &senders).expect("every sender's record is there");
    let stored = accounting.stored;
    let (finished, silent) = finished_and_silent(&events);
    eprintln!(
        "SIGTERM at idle ({status}) with {HELD} events held: {accounting}; {} senders: {finished} finished, \
         {silent} fell silent",
        senders.len()
    );
    assert!(status.success(), "Envoy exits by itself, cleanly: {status}");
    assert_eq!(
        finished + silent,
        senders.len(),
        "one record per sender; each sender's records: {:?}",
        sender_records(&events)
    );
    accounting.check(IDLE_HEARTBEAT_MS).expect("the trail accounts for every answered request");
    if stack.filter_host() == FilterHost::Native {
        assert_eq!(stored, HELD, "Envoy waited for the exit hook: every held event arrived");
        assert_eq!(
            (finished, silent),
            (senders.len(), 0),
            "every sender sent its final report: {:?}",
            sender_records(&events)
        );
    }
}

/// SIGTERM with events held while the collector is down (killed: each call fails at once):
/// the native exit hook must still let Envoy go, never hold the exit until the
/// orchestrator's SIGKILL. A collector that does not answer at all is bounded by
/// `collector.timeoutMs` instead (not exercised here).
#[test]
fn a_sigterm_while_the_collector_is_down_still_lets_envoy_exit() {
    let _serial = serial();
    let mut stack = AuditStack::start(StackOptions {
        filter_config_patch: Some(json!({"batch": {"flushIntervalMs": 60_000}, "collector": {"timeoutMs": 1000}})),
        ..options()
    })
    .expect("the stack starts");
    for request in 0..3 {
        let reply = send("GET", &url(&stack), &[("user-agent", &format!("e2e-down-term-{request}"))], None)
            .expect("the request is answered");
        assert_eq!(reply.status, 200);
    }
    stack.kill_collector().expect("the collector is killed");
    // The process helper sends SIGKILL after its 30 s grace: a hung exit shows as that signal.
    let status = stack.sigterm_envoy().expect("Envoy stops");
    let log = stack.envoy_log();
    eprintln!("SIGTERM with the collector down: Envoy exited with {status}");
    assert!(status.success(), "Envoy let itself exit: {status}");
    if stack.filter_host() == FilterHost::Native {
        assert!(
            log.contains("audit-filter: Envoy is exiting") && log.contains("letting Envoy exit"),
            "the exit hook ran and let Envoy go:\n{}",
            log.lines().filter(|line| line.contains("audit-filter")).collect::<Vec<_>>().join("\n")
        );
    }
}
