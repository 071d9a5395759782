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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envoy::ConfigHandle;
    use crate::fake_envoy::{scheduler_calls, SchedulerCall};

    #[test]
    fn after_stop_the_scheduler_is_deleted_once_and_never_committed_again() {
        let address = 0x2100;
        // SAFETY: the fake Envoy only records the address.
        let handle = unsafe { ConfigHandle::new(std::ptr::without_provenance_mut(address)) };
        let scheduler = handle.new_scheduler().expect("a scheduler");
        let mut ticker = Ticker::start(scheduler, Duration::from_millis(1)).expect("the thread starts");
        // Bounded: until the thread has ticked at least once (or 5000 polls).
        for _ in 0..5000 {
            if !scheduler_calls(address).is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        ticker.stop();
        drop(ticker);
        let calls = scheduler_calls(address);
        assert!(calls.contains(&SchedulerCall::Commit(address, TICK)), "it ticked: {calls:?}");
        assert_eq!(calls.last(), Some(&SchedulerCall::Delete(address)), "the delete is the last call: {calls:?}");
        assert_eq!(calls.iter().filter(|call| matches!(call, SchedulerCall::Delete(_))).count(), 1);
    }
}
