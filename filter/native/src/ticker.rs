//! The module's own thread, whose only job is time: every tick period it commits the
//! configuration's scheduler, and Envoy runs `on_http_filter_config_scheduled` (the
//! delivery tick) on its main thread. HTTP filters have no per-worker timer, and the tick
//! must come even when no request does (heartbeats, retries, flushes).

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::envoy::Scheduler;

/// The event id of a delivery tick.
pub const TICK: u64 = 1;

pub struct Ticker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<Scheduler>>,
}

impl Ticker {
    /// Starts ticking `scheduler` every `period`; None if the thread could not start.
    pub fn start(scheduler: Scheduler, period: Duration) -> Option<Ticker> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("audit-tick".into())
            .spawn(move || {
                let (stopped, wake) = &*signal;
                let mut stopped_now = stopped.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                loop {
                    let (guard, _) =
                        wake.wait_timeout(stopped_now, period).unwrap_or_else(|poisoned| poisoned.into_inner());
                    stopped_now = guard;
                    if *stopped_now {
                        return scheduler;
                    }
                    scheduler.commit(TICK);
                }
            })
            .ok()?;
        Some(Ticker { stop, thread: Some(thread) })
    }

    /// Stops the thread, waits for it, and deletes the scheduler on the calling thread
    /// (Envoy's main thread, in `config_destroy`) once no commit can follow: the thread
    /// returns the scheduler it owns when it ends, and the join hands it back here. `commit`
    /// is the only call the tick thread makes (the ABI allows it from any thread).
    pub fn stop(&mut self) {
        let (stopped, wake) = &*self.stop;
        *stopped.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take() {
            drop(thread.join());
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop();
    }
}
