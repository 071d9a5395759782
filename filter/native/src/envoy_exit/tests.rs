//! The exit's two steps with fake configurations and a chosen clock: the final reports wait
//! for the requests in progress, Envoy waits for their answers, each step within its bound,
//! and Envoy is let go exactly once whatever happens. The exit's state is the process's
//! (as in Envoy), so these tests run one at a time and each ends with Envoy let go; once one
//! has begun an exit, `begun()` stays true in this test binary (no other unit test reads it).

use std::sync::atomic::AtomicUsize;

use super::*;
use crate::fake_envoy::logged;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A filter configuration as the exit sees it, set by the test.
#[derive(Default)]
struct FakeConfig {
    timeout_ms: u64,
    in_progress: AtomicUsize,
    /// When `on_envoy_exit` was called (the final reports sent).
    exits: Mutex<Vec<u64>>,
    settled: AtomicBool,
    ticking: AtomicBool,
    stops: AtomicUsize,
    panics_when_stopped: bool,
}

impl ExitingConfig for FakeConfig {
    fn collector_timeout_ms(&self) -> u64 {
        self.timeout_ms
    }
    fn requests_in_progress(&self) -> usize {
        self.in_progress.load(Ordering::SeqCst)
    }
    fn on_envoy_exit(&self, now_ms: u64) {
        self.exits.lock().unwrap().push(now_ms);
    }
    fn exit_settled(&self) -> bool {
        self.settled.load(Ordering::SeqCst)
    }
    fn stop_ticking(&self) {
        self.stops.fetch_add(1, Ordering::SeqCst);
        self.ticking.store(false, Ordering::SeqCst);
        assert!(!self.panics_when_stopped, "a tick thread that panics when stopped");
    }
    fn is_ticking(&self) -> bool {
        self.ticking.load(Ordering::SeqCst)
    }
}

impl FakeConfig {
    fn ticking(timeout_ms: u64, in_progress: usize) -> Arc<FakeConfig> {
        Arc::new(FakeConfig {
            timeout_ms,
            in_progress: AtomicUsize::new(in_progress),
            ticking: AtomicBool::new(true),
            ..FakeConfig::default()
        })
    }

    fn exits(&self) -> Vec<u64> {
        self.exits.lock().unwrap().clone()
    }

    fn stops(&self) -> usize {
        self.stops.load(Ordering::SeqCst)
    }
}

/// Envoy's completion callback: counts its calls in the counter its context points to.
unsafe extern "C" fn count_completion(context: *mut c_void) {
    // SAFETY: the context is the test's `AtomicUsize`, alive for the whole test.
    unsafe { &*context.cast::<AtomicUsize>() }.fetch_add(1, Ordering::SeqCst);
}

/// Begins Envoy's exit at `now` with `configs` live; the count of Envoy's completion calls.
fn begin_exit(configs: &[Arc<FakeConfig>], now: u64) -> Arc<AtomicUsize> {
    let completed = Arc::new(AtomicUsize::new(0));
    let live: Vec<Arc<dyn ExitingConfig>> = configs.iter().map(|config| config.clone() as _).collect();
    let context = Arc::as_ptr(&completed).cast_mut().cast();
    begin_at(move || live, Completion::new(Some(count_completion), context), now);
    completed
}

fn completions(completed: &AtomicUsize) -> usize {
    completed.load(Ordering::SeqCst)
}

/// Whether a line containing `text` was logged after the first `since` lines.
fn logged_since(since: usize, text: &str) -> bool {
    logged().iter().skip(since).any(|line| line.contains(text))
}

#[test]
fn the_final_reports_wait_for_the_requests_in_progress_and_envoy_waits_for_their_answers() {
    let _serial = serial();
    let config = FakeConfig::ticking(1000, 2);
    let since = logged().len();
    let completed = begin_exit(std::slice::from_ref(&config), 10_000);
    assert!(begun(), "from now on a new request is held");
    assert!(config.exits().is_empty(), "no final report while requests are in progress");

    check_at(10_100);
    assert!(config.exits().is_empty());
    config.in_progress.store(0, Ordering::SeqCst);
    check_at(10_200);
    assert_eq!(config.exits(), [10_200], "step 2 begins once none is in progress, reports sent once");
    check_at(10_300);
    assert_eq!(completions(&completed), 0, "Envoy waits while what was sent is unanswered");
    assert_eq!(config.stops(), 0, "the tick goes on: it is what moves the exit on");

    config.settled.store(true, Ordering::SeqCst);
    check_at(10_400);
    assert_eq!(completions(&completed), 1, "answered: Envoy goes on");
    assert_eq!(config.stops(), 1, "the tick thread is stopped before Envoy's loop ends");
    assert!(logged_since(since, "every call sent at Envoy's exit has its answer"));

    check_at(10_500);
    check();
    assert_eq!((completions(&completed), config.exits().len()), (1, 1), "a finished exit does nothing more");
}

#[test]
fn requests_that_outlive_the_first_steps_bound_get_no_final_report() {
    let _serial = serial();
    // The bound is the longest collector timeout of the live configurations, plus the margin.
    let (quick, slow) = (FakeConfig::ticking(1000, 0), FakeConfig::ticking(3000, 1));
    let since = logged().len();
    let completed = begin_exit(&[quick.clone(), slow.clone()], 20_000);

    check_at(20_000 + 3000 + ANSWER_MARGIN_MS - 1);
    assert_eq!(completions(&completed), 0, "within the bound: still waiting for the request");
    check_at(20_000 + 3000 + ANSWER_MARGIN_MS);
    assert_eq!(completions(&completed), 1, "out of time: Envoy is let go");
    assert!(quick.exits().is_empty() && slow.exits().is_empty(), "no final count that a late event would make false");
    assert_eq!((quick.stops(), slow.stops()), (1, 1));
    assert!(logged_since(since, "letting Envoy exit after 3500 ms with requests still in progress"));
}

#[test]
fn a_collector_that_never_answers_holds_envoy_one_bound_after_the_final_reports() {
    let _serial = serial();
    let config = FakeConfig::ticking(2000, 0);
    let since = logged().len();
    let completed = begin_exit(std::slice::from_ref(&config), 30_000);
    assert_eq!(config.exits(), [30_000], "nothing in progress: the final reports go at once");

    check_at(30_000 + 2000 + ANSWER_MARGIN_MS - 1);
    assert_eq!(completions(&completed), 0);
    check_at(30_000 + 2000 + ANSWER_MARGIN_MS);
    assert_eq!(completions(&completed), 1, "unanswered for a whole bound: Envoy is let go");
    assert_eq!(config.exits().len(), 1, "the final reports are sent once");
    assert!(logged_since(since, "letting Envoy exit after 2500 ms with final reports not answered"));
}

#[test]
fn without_a_tick_to_wait_with_envoy_is_let_go_at_once_and_no_final_report_is_sent() {
    let _serial = serial();
    let config = FakeConfig::ticking(1000, 1);
    config.ticking.store(false, Ordering::SeqCst);
    let since = logged().len();
    let completed = begin_exit(std::slice::from_ref(&config), 40_000);
    assert_eq!(completions(&completed), 1, "nothing would ever check the deadline: no wait");
    assert!(config.exits().is_empty());
    assert!(logged_since(since, "no configuration has a delivery tick to wait with"));
}

#[test]
fn with_no_live_configuration_envoy_is_let_go_at_once() {
    let _serial = serial();
    let completed = begin_exit(&[], 50_000);
    assert_eq!(completions(&completed), 1);
}

#[test]
fn a_panic_in_the_exit_still_lets_envoy_go_exactly_once() {
    let _serial = serial();
    // While gathering the live configurations (as exit_hooks runs it: caught, then let go).
    let completed = Arc::new(AtomicUsize::new(0));
    let completion = Completion::new(Some(count_completion), Arc::as_ptr(&completed).cast_mut().cast());
    let gathered = crate::guard::caught("test exit", || {
        begin_at(|| panic!("the registry is broken"), completion, 60_000);
    });
    assert!(gathered.is_none());
    let_go();
    assert_eq!(completions(&completed), 1, "the completion kept before anything ran is called");
    let_go();
    assert_eq!(completions(&completed), 1, "and only once");

    // While stopping a tick thread: the others are stopped and Envoy still goes on.
    let broken = Arc::new(FakeConfig { panics_when_stopped: true, ..FakeConfig::default() });
    broken.ticking.store(true, Ordering::SeqCst);
    let fine = FakeConfig::ticking(1000, 0);
    fine.settled.store(true, Ordering::SeqCst);
    broken.settled.store(true, Ordering::SeqCst);
    let completed = begin_exit(&[broken.clone(), fine.clone()], 70_000);
    assert_eq!(completions(&completed), 1, "settled at once: Envoy goes on despite the panic");
    assert_eq!((broken.stops(), fine.stops()), (1, 1));
}
