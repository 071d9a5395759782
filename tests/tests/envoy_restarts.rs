//! What becomes of the trail when Envoy replaces itself or its filter while serving: a hot
//! restart (a new epoch takes over the listener; the old one drains, gets the filter's
//! `on_done` and exits) and a listener configuration change from an LDS file (the same
//! plugin: its workers carry on; a changed plugin configuration: new workers, the old ones
//! get `on_done` once the old filter chain has drained, and may go on delivering until
//! they call `proxy_done`). Under load each time, the trail must account for every answered
//! request: stored, counted lost by a recorded gap, or answered inside a stopped sender's
//! recorded unknown tail ([`audit_e2e::accounting`]), as SIGTERM is held to in
//! `completeness.rs`. Loads are bounded in count and time.
// Test code: a failed expectation is the test's report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use audit_e2e::accounting::{of_type, poll_until, senders_of, stopped_record, trail, Accounting};
use audit_e2e::filter_host::FilterHost;
use audit_e2e::load::Load;
use audit_e2e::{paths, AuditStack, StackOptions};
use audit_event::sender::{SENDER_FINISHED_TYPE, SENDER_STOPPED_TYPE};
use audit_event::AuditEvent;
use serde_json::json;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The listener test's flush interval, and its heartbeat interval.
const LDS_FLUSH_MS: i64 = 5000;
const LDS_HEARTBEAT_MS: i64 = LDS_FLUSH_MS + 100;
/// Each client's pause after an answer: at most a few hundred requests a second, so the
/// count lasts through a restart.
const PAUSE: Duration = Duration::from_millis(10);
/// Envoy's worker threads, each with its own filter VM (a sender).
const WORKERS: usize = 2;

/// The build of the filter the suite runs against (`AUDIT_FILTER_HOST`).
fn run_host() -> FilterHost {
    options().filter_host
}

/// Flush (and heartbeat) every 200 ms; the collector records a silent sender after 2 s.
/// Envoy drains old listeners for 1 s.
fn options() -> StackOptions {
    StackOptions {
        filter_config_patch: Some(json!({"batch": {"flushIntervalMs": 200}})),
        collector_args: ["--sender-silence-secs", "2", "--hole-grace-secs", "1"].map(String::from).to_vec(),
        envoy_concurrency: WORKERS,
        ..StackOptions::default()
    }
}

fn events(stack: &AuditStack) -> Vec<AuditEvent> {
    trail(&stack.collector_url(), stack.read_token()).expect("reading the trail")
}

/// The senders recorded as stopped: fallen silent or finished.
fn stopped(events: &[AuditEvent]) -> Vec<String> {
    of_type(events, SENDER_STOPPED_TYPE)
        .chain(of_type(events, SENDER_FINISHED_TYPE))
        .filter_map(|e| e.gap.as_ref()?.sender.clone())
        .collect()
}

/// The types of the records of `senders`' stops.
fn stop_types<'a>(events: &'a [AuditEvent], senders: &[String]) -> Vec<&'a str> {
    senders.iter().filter_map(|sender| stopped_record(events, sender)).map(|e| e.event_type.as_str()).collect()
}

/// The documented graceful stop of the Envoy running now: everything it buffered delivered.
fn drain(stack: &AuditStack) {
    let drain = Command::new(paths::collector_binary().expect("the collector binary"))
        .args(["envoy-drain", "--admin", &stack.admin_url(), "--deadline-secs", "30"])
        .output()
        .expect("envoy-drain runs");
    assert!(drain.status.success(), "envoy-drain failed: {}", String::from_utf8_lossy(&drain.stderr));
}

/// What a hot restart under load left: the accounting, the old epoch's senders' records
/// and how many of its workers had events buffered at `on_done`.
struct HotRestart {
    accounting: Accounting,
    old_senders_lost: Vec<u64>,
    /// The old senders' records: `SenderFinished` or `SenderStopped`.
    old_senders_recorded: Vec<String>,
    buffered_at_on_done: usize,
}

/// Hot restarts Envoy under load with these `--drain-time-s` and `--parent-shutdown-time-s`,
/// the filter flushing every `flush_ms`.
fn hot_restart_under_load(
    prefix: &'static str,
    drain_time_s: u32,
    parent_shutdown_time_s: u32,
    flush_ms: u64,
) -> HotRestart {
    const LIMIT: usize = 12_000;
    let heartbeat_ms = flush_ms + 100;
    // Silence long enough that a live sender is never taken for stopped.
    let silence_s = (2 * heartbeat_ms).div_ceil(1000).max(2);
    let mut stack = AuditStack::start(StackOptions {
        filter_config_patch: Some(json!({"batch": {"flushIntervalMs": flush_ms}})),
        collector_args: vec!["--sender-silence-secs".into(), silence_s.to_string()],
        envoy_hot_restart: true,
        envoy_args: vec![
            "--drain-time-s".into(),
            drain_time_s.to_string(),
            "--parent-shutdown-time-s".into(),
            parent_shutdown_time_s.to_string(),
        ],
        ..options()
    })
    .expect("the stack starts");
    let load = Load::paced(format!("{}/pacticipants", stack.envoy_url()), prefix, 4, LIMIT, PAUSE);
    load.wait_for(500, Duration::from_secs(60)).expect("500 answered requests");
    // By a heartbeat interval later, each worker that captured anything has stored some.
    std::thread::sleep(Duration::from_millis(heartbeat_ms + 500));
    let old_senders = senders_of(&events(&stack), prefix);
    assert!(!old_senders.is_empty(), "the first epoch stored events");
    let (status, parent_log) = stack.hot_restart_envoy(Duration::from_secs(30)).expect("the hot restart");
    let answered_by_then = load.count();
    load.wait_for(answered_by_then + 300, Duration::from_secs(60)).expect("the new epoch answers");
    let answered = load.finish();
    eprintln!("the old epoch exited with {status}; {} requests answered in all", answered.len());
    drain(&stack);

    poll_senders_stopped(&stack, &old_senders);
    let events = events(&stack);
    let all_senders = senders_of(&events, prefix);
    assert!(all_senders.len() > old_senders.len(), "the new epoch's workers are new senders: {all_senders:?}");
    let accounting = Accounting::of(&events, &answered, prefix, &old_senders).expect("the records are complete");
    accounting.check(heartbeat_ms as i64).expect("the trail accounts for every answered request");
    let old_senders_lost = old_senders
        .iter()
        .map(|sender| {
            stopped_record(&events, sender).and_then(|record| record.gap.as_ref()).map_or(0, |gap| gap.lost_events)
        })
        .collect();
    let buffered_at_on_done =
        parent_log.lines().filter(|line| line.contains("audit-filter: shutting down with")).count();
    let old_senders_recorded = stop_types(&events, &old_senders).into_iter().map(String::from).collect();
    HotRestart { accounting, old_senders_lost, old_senders_recorded, buffered_at_on_done }
}

#[test]
fn a_hot_restart_that_drains_before_the_old_epoch_exits_loses_nothing() {
    let _serial = serial();
    // The old epoch drains for 1 s and exits 3 s after the new one started: time for its
    // filter to deliver what it captured before it gets on_done.
    let run = hot_restart_under_load("e2e-hot-", 1, 3, 200);
    eprintln!("hot restart, drained: {}", run.accounting);
    assert_eq!(run.accounting.not_stored(), 0, "every answered request is stored");
    // The old epoch's workers that stored events (both, unless every connection landed on one).
    let old_senders = run.old_senders_lost.len();
    assert!((1..=WORKERS).contains(&old_senders), "{old_senders} old senders");
    assert_eq!(run.old_senders_lost, vec![0; old_senders], "the old epoch's senders lost nothing");
    assert_eq!(
        run.old_senders_recorded,
        vec![SENDER_FINISHED_TYPE; old_senders],
        "a drained epoch's senders are recorded as finished, not as fallen silent"
    );
}

#[test]
fn a_hot_restart_whose_old_epoch_exits_while_serving_leaves_no_loss_the_trail_does_not_record() {
    let _serial = serial();
    // The old epoch exits 1 s into a 60 s drain (its connections still serving),
    // and its filter flushes only every 3 s: it holds undelivered events when it gets
    // on_done, and Envoy exits milliseconds later (the wasm host; the native module's exit
    // hook holds the exit until its final reports are answered).
    let run = hot_restart_under_load("e2e-hot-cut-", 60, 1, 3000);
    eprintln!(
        "hot restart, cut mid-drain: {}; {} old workers had events buffered at on_done; the old senders' records \
         count {:?} lost",
        run.accounting, run.buffered_at_on_done, run.old_senders_lost
    );
    // Both hosts run the core's `on_done` at the exit (the native module from its exit hook,
    // which holds Envoy's exit until the final reports are answered).
    assert!(run.buffered_at_on_done > 0, "the case this test is for: events buffered at on_done");
}

/// Waits for each of `senders` to be recorded as stopped.
fn poll_senders_stopped(stack: &AuditStack, senders: &[String]) {
    poll_until("the old senders recorded as stopped", Duration::from_secs(30), || {
        let stopped = stopped(&events(stack));
        Ok(senders.iter().all(|sender| stopped.contains(sender)))
    })
    .expect("the old senders recorded as stopped");
}

/// A stack whose listener comes from an LDS file, under a paced load, for changes of its
/// configuration. Flushing every 5 s, a replaced worker still holds events when its old
/// filter chain has drained (1 s) and Envoy calls its on_done.
struct Reconfiguring {
    stack: AuditStack,
    load: Load,
    prefix: &'static str,
}

/// What a configuration change under load left.
struct Reconfigured {
    accounting: Accounting,
    /// Replaced workers that still held events at on_done, and those of them that said
    /// they delivered everything afterwards.
    delivering: usize,
    delivered: usize,
    /// The replaced senders' `SenderStopped` or `SenderFinished` counts, and types.
    replaced_lost: Vec<u64>,
    replaced_recorded: Vec<String>,
    all_senders: usize,
}

impl Reconfiguring {
    fn start(prefix: &'static str) -> Reconfiguring {
        let stack = AuditStack::start(StackOptions {
            listener_from_file: true,
            envoy_args: ["--drain-time-s", "1"].map(String::from).to_vec(),
            filter_config_patch: Some(json!({"batch": {"flushIntervalMs": LDS_FLUSH_MS}})),
            collector_args: ["--sender-silence-secs", "11"].map(String::from).to_vec(),
            ..options()
        })
        .expect("the stack starts");
        let load = Load::paced(format!("{}/pacticipants", stack.envoy_url()), prefix, 4, 12_000, PAUSE);
        load.wait_for(300, Duration::from_secs(60)).expect("300 answered requests");
        Reconfiguring { stack, load, prefix }
    }

    /// Applies `edit` to the listener file and waits for 300 more answers.
    fn change(&mut self, edit: impl FnOnce(&mut StackOptions)) {
        self.stack.reload_listener(edit).expect("the listener update");
        let answered_by_then = self.load.count();
        self.load.wait_for(answered_by_then + 300, Duration::from_secs(60)).expect("answers after the change");
    }

    /// The senders that have stored events, a heartbeat interval from now (by then every
    /// worker that captured anything has delivered some).
    fn senders(&self) -> Vec<String> {
        std::thread::sleep(Duration::from_millis(LDS_HEARTBEAT_MS as u64 + 500));
        senders_of(&events(&self.stack), self.prefix)
    }

    /// Waits for `replaced` to be recorded as stopped, stops the load, drains Envoy and
    /// accounts for every answered request.
    fn finish(self, replaced: &[String]) -> Reconfigured {
        poll_senders_stopped(&self.stack, replaced);
        let answered = self.load.finish();
        drain(&self.stack);
        let events = events(&self.stack);
        let accounting = Accounting::of(&events, &answered, self.prefix, replaced).expect("the records are complete");
        accounting.check(LDS_HEARTBEAT_MS).expect("the trail accounts for every answered request");
        let log = self.stack.envoy_log();
        Reconfigured {
            delivering: log.matches("audit-filter: shutting down with").count(),
            delivered: log.matches("audit-filter: shut down with everything delivered").count(),
            replaced_lost: replaced
                .iter()
                .map(|sender| {
                    stopped_record(&events, sender)
                        .and_then(|record| record.gap.as_ref())
                        .map_or(0, |gap| gap.lost_events)
                })
                .collect(),
            all_senders: senders_of(&events, self.prefix).len(),
            replaced_recorded: stop_types(&events, replaced).into_iter().map(String::from).collect(),
            accounting,
        }
    }
}

#[test]
fn listener_and_plugin_configuration_changes_under_load_lose_nothing() {
    let _serial = serial();
    let mut run = Reconfiguring::start("e2e-lds-");
    // A change of the listener that leaves the plugin as it was: a filter added after it.
    let cors = serde_yaml::from_str(
        "{name: envoy.filters.http.cors, typed_config: \
         {'@type': type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}}",
    )
    .expect("YAML");
    // The wasm plugin keeps its VMs, so its senders, across a listener change; the native
    // module gets a new filter configuration for every listener change (new senders, the
    // old ones handed over as below), which the plugin change that follows tests.
    if run.stack.filter_host() == FilterHost::Wasm {
        run.change(|options| options.http_filters_after_audit.push(cors));
    }
    let old_senders = run.senders();
    assert!((1..=WORKERS).contains(&old_senders.len()), "the same plugin: the same senders, {old_senders:?}");
    assert!(stopped(&events(&run.stack)).is_empty(), "no sender stopped");

    // A change of the plugin's own configuration: new senders; the old ones get on_done.
    run.change(|options| {
        options.filter_config_patch =
            Some(json!({"batch": {"flushIntervalMs": LDS_FLUSH_MS}, "limits": {"maxFieldBytes": 4000}}))
    });
    let outcome = run.finish(&old_senders);
    eprintln!(
        "listener and plugin configuration changes: {}; {} replaced workers still held events at on_done, {} \
         delivered them all afterwards",
        outcome.accounting, outcome.delivering, outcome.delivered
    );
    assert!(outcome.all_senders > old_senders.len(), "new senders for the new plugin configuration");
    // The wasm host keeps a replaced VM until it is done; the native host hands a deleted
    // configuration's deliveries to the new one (they log on_done twice: at the deletion and
    // when adopted), so the stores below are its proof.
    if run_host() == FilterHost::Wasm {
        assert_eq!(
            outcome.delivered, outcome.delivering,
            "a replaced worker still delivering at on_done is kept until done"
        );
    }
    assert_eq!(outcome.accounting.not_stored(), 0, "Envoy ran on: every answered request is stored");
    assert_eq!(outcome.replaced_lost, vec![0; old_senders.len()], "the replaced plugin delivered everything");
    assert_eq!(
        outcome.replaced_recorded,
        vec![SENDER_FINISHED_TYPE; old_senders.len()],
        "a worker replaced after delivering everything is recorded as finished, not as fallen silent"
    );
}

#[test]
fn a_vm_configuration_change_under_load_leaves_no_loss_the_trail_does_not_record() {
    if StackOptions::default().filter_host == FilterHost::Native {
        // New code for the native module means a new Envoy (a hot restart, tested above):
        // Envoy cannot load another build of a shared library into the process it runs.
        eprintln!("skipped: a vm_config change is the wasm host's only; the native module has no VM");
        return;
    }
    let _serial = serial();
    let mut run = Reconfiguring::start("e2e-vm-");
    let old_senders = run.senders();
    // A new vm_id, as new wasm code would: new VMs; the old ones are torn down after the
    // drain, their on_done flush the last chance for what they hold.
    run.change(|options| options.filter_vm_id = Some("audit_sidecar_next".into()));
    let outcome = run.finish(&old_senders);
    eprintln!(
        "vm_config change: {}; {} replaced workers held events at on_done, {} said they delivered them all; the \
         replaced senders' records count {:?} lost",
        outcome.accounting, outcome.delivering, outcome.delivered, outcome.replaced_lost
    );
    assert!(outcome.all_senders > old_senders.len(), "new senders in the new VMs");
}
