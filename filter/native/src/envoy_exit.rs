//! Envoy's exit, natively. A filter configuration gets no hook when Envoy exits (SIGTERM, the
//! end of a hot restart: measured, no `config_destroy`), so the same module is also loaded
//! as a bootstrap extension ([`crate::exit_hooks`]), whose shutdown hook Envoy runs on its
//! main thread at `ShutdownExit` and then waits for the module to call back before it stops
//! its main loop. Its workers go on serving meanwhile, so the exit goes in two steps:
//! 1. Quiescing: a request arriving from now on is held, never forwarded nor captured
//!    (Envoy closes its connection as it exits); the requests already in progress finish
//!    and are captured. A final count sent before they are would be false: the collector
//!    would record the sender finished while events it never heard of were still coming.
//! 2. Once none is in progress, each live configuration runs its workers' `on_done` (the
//!    core's: everything held sent at once, with the final report, `stopping: true` and
//!    the final count), and once nothing it sent is still on the wire, or every delivery is
//!    drained, the tick threads are stopped and Envoy is told to go on.
//!
//! Each step is bounded by the collector calls' timeout (`collector.timeoutMs`, plus a
//! margin for the answer's hook). Should requests still be in progress when the first step
//! times out, no final report is sent: the collector records those senders as fallen
//! silent, with the unknown tail that covers what they still captured. Stopping the tick
//! threads matters on its own: Envoy deletes no filter configuration when it exits, and a
//! tick committed after its main loop was torn down crashed it (measured without this
//! hook: SIGSEGV at SIGTERM).

use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use log::Level;

use crate::abi::EventCallback;
use crate::envoy;
use crate::randomness::now_ms;

/// What the exit asks of a filter configuration ([`crate::module_config::ModuleConfig`]).
pub trait ExitingConfig: Send + Sync {
    /// The bound of one collector call (`collector.timeoutMs`).
    fn collector_timeout_ms(&self) -> u64;
    /// Requests of its workers whose event is not captured yet.
    fn requests_in_progress(&self) -> usize;
    /// Each worker sends what it holds with its final report (the core's `on_done`).
    fn on_envoy_exit(&self, now_ms: u64);
    /// Whether what it sent at the exit has been answered (or everything is delivered).
    fn exit_settled(&self) -> bool;
    /// Stops its tick thread.
    fn stop_ticking(&self);
    /// Whether its tick thread runs (the exit moves on after ticks and answers only).
    fn is_ticking(&self) -> bool;
}

/// Past the calls' own timeout: Envoy answers a timed-out call in the next tick or so.
const ANSWER_MARGIN_MS: u64 = 500;

/// Envoy's "go on" callback and its context, called once.
pub struct Completion {
    callback: EventCallback,
    context: *mut c_void,
}

// SAFETY: the completion is only called on Envoy's main thread (from its shutdown hook, or a
// configuration's tick or answer hook); it only crosses threads inside the mutex below.
unsafe impl Send for Completion {}

impl Completion {
    pub fn new(callback: EventCallback, context: *mut c_void) -> Completion {
        Completion { callback, context }
    }

    fn call(self) {
        if let Some(callback) = self.callback {
            // SAFETY: Envoy's callback with its own context, called once (self is consumed).
            unsafe { callback(self.context) }
        }
    }
}

#[derive(Clone, Copy)]
enum Phase {
    /// Waiting, until the deadline, for the requests in progress to be captured.
    Quiescing { until_ms: u64 },
    /// The final reports are sent; waiting, until the deadline, for their answers.
    Delivering { until_ms: u64 },
}

struct Exiting {
    configs: Vec<Arc<dyn ExitingConfig>>,
    phase: Phase,
    /// Each step's bound.
    wait_ms: u64,
    completion: Completion,
}

/// What [`check`] found to do, done once the lock is released (sending may run hooks that
/// check again).
enum Step {
    Wait,
    SendFinalReports(Vec<Arc<dyn ExitingConfig>>),
    LetGo(Exiting, &'static str),
}

static EXITING: Mutex<Option<Exiting>> = Mutex::new(None);
/// Set while an exit waits: the ticks and answers check it without the lock.
static WAITING: AtomicBool = AtomicBool::new(false);
/// Set for good once Envoy's exit began: from then on a new request is held, not audited.
static BEGUN: AtomicBool = AtomicBool::new(false);

/// Envoy is exiting (main thread). The completion is kept before anything else runs, so
/// [`let_go`] can call it should this panic.
pub fn begin(live_configs: impl FnOnce() -> Vec<Arc<dyn ExitingConfig>>, completion: Completion) {
    begin_at(live_configs, completion, now_ms());
}

/// [`begin`] at `now` (milliseconds, as [`now_ms`]): the unit tests choose the clock.
fn begin_at(live_configs: impl FnOnce() -> Vec<Arc<dyn ExitingConfig>>, completion: Completion, now: u64) {
    BEGUN.store(true, Ordering::SeqCst);
    let quick = Phase::Quiescing { until_ms: now + ANSWER_MARGIN_MS };
    *exiting() = Some(Exiting { configs: Vec::new(), phase: quick, wait_ms: ANSWER_MARGIN_MS, completion });
    let configs = live_configs();
    let timeout_ms = configs.iter().map(|config| config.collector_timeout_ms()).max().unwrap_or(0);
    let wait_ms = timeout_ms + ANSWER_MARGIN_MS;
    // [`check`] runs after ticks and answers: with no tick thread at all, a request still in
    // progress would hold Envoy's exit for ever (no step's deadline is ever checked), and a
    // final report sent without waiting for it could give a false count. So none is sent.
    if !configs.is_empty() && !configs.iter().any(|config| config.is_ticking()) {
        envoy::log(
            Level::Warn,
            "audit-filter: letting Envoy exit at once: no configuration has a delivery tick to wait with, so no \
             final report is sent (the collector records the senders as fallen silent, with their unknown tail)",
        );
        let_go();
        return;
    }
    envoy::log(
        Level::Info,
        &format!(
            "audit-filter: Envoy is exiting: new requests are held; {} configuration(s) send their final reports \
             once the requests in progress are captured (waiting up to {wait_ms} ms for each)",
            configs.len()
        ),
    );
    if let Some(exiting) = exiting().as_mut() {
        exiting.configs = configs;
        exiting.phase = Phase::Quiescing { until_ms: now.saturating_add(wait_ms) };
        exiting.wait_ms = wait_ms;
    }
    WAITING.store(true, Ordering::SeqCst);
    check_at(now);
}

/// After each tick and answer (main thread): moves the exit on when its step is done or
/// out of time.
pub fn check() {
    if WAITING.load(Ordering::SeqCst) {
        check_at(now_ms());
    }
}

/// [`check`] at `now`.
fn check_at(now: u64) {
    if !WAITING.load(Ordering::SeqCst) {
        return;
    }
    let step = {
        let mut guard = exiting();
        match guard.as_mut().map(|exiting| (exiting.phase, exiting)) {
            None => Step::Wait,
            Some((Phase::Quiescing { until_ms }, exiting)) => {
                if exiting.configs.iter().all(|config| config.requests_in_progress() == 0) {
                    exiting.phase = Phase::Delivering { until_ms: now.saturating_add(exiting.wait_ms) };
                    Step::SendFinalReports(exiting.configs.clone())
                } else if now >= until_ms {
                    guard.take().map_or(Step::Wait, |exiting| Step::LetGo(exiting, "requests still in progress"))
                } else {
                    Step::Wait
                }
            }
            Some((Phase::Delivering { until_ms }, exiting)) => {
                if exiting.configs.iter().all(|config| config.exit_settled()) {
                    guard.take().map_or(Step::Wait, |exiting| Step::LetGo(exiting, ""))
                } else if now >= until_ms {
                    guard.take().map_or(Step::Wait, |exiting| Step::LetGo(exiting, "final reports not answered"))
                } else {
                    Step::Wait
                }
            }
        }
    };
    match step {
        Step::Wait => {}
        Step::SendFinalReports(configs) => {
            for config in &configs {
                config.on_envoy_exit(now);
            }
            check_at(now);
        }
        Step::LetGo(exiting, "") => {
            envoy::log(
                Level::Info,
                "audit-filter: every call sent at Envoy's exit has its answer (acknowledged or failed: the \
                 collector records what it did not store); letting Envoy exit",
            );
            finish(exiting);
        }
        Step::LetGo(exiting, why) => {
            envoy::log(
                Level::Warn,
                &format!(
                    "audit-filter: letting Envoy exit after {} ms with {why}: the collector records what it did not \
                     store (a sender without a final report as fallen silent, with its unknown tail)",
                    exiting.wait_ms
                ),
            );
            finish(exiting);
        }
    }
}

/// Lets Envoy go on at once (the exit's own work panicked): an exit must never hang.
pub fn let_go() {
    let taken = exiting().take();
    if let Some(exiting) = taken {
        finish(exiting);
    }
}

/// Stops the ticks (none may reach Envoy's main loop once it stops) and lets Envoy go on.
fn finish(Exiting { configs, completion, .. }: Exiting) {
    WAITING.store(false, Ordering::SeqCst);
    // Each caught on its own: a panic here would drop `completion` uncalled, and Envoy
    // would wait for it for ever.
    for config in &configs {
        crate::guard::caught("stop_ticking at Envoy's exit", || config.stop_ticking());
    }
    drop(configs);
    completion.call();
}

fn exiting() -> MutexGuard<'static, Option<Exiting>> {
    EXITING.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Whether Envoy's exit has begun (a new request is then held, and a configuration deleted
/// after it does not send again).
pub fn begun() -> bool {
    BEGUN.load(Ordering::SeqCst)
}

#[cfg(test)]
mod tests;
