//! The one loop of the store's background tasks (retention, the periodic checkpoint, the
//! senders' check): run the task every interval, log a failure and retry at the next tick,
//! stop when the store has stopped. A late tick is delayed, never bunched up.

use std::future::Future;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::StoreError;

/// When a task first runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstRun {
    /// As soon as it is spawned (retention: a restart purges what expired while down).
    Now,
    /// One interval after it is spawned.
    AfterOneInterval,
}

/// Runs `run` every `every` (first as `first` says) until the store stops or the task is
/// aborted; `task` names it in the log.
pub fn spawn_periodic<F, Fut>(task: &'static str, every: Duration, first: FirstRun, mut run: F) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Result<(), StoreError>> + Send,
{
    tokio::spawn(async move {
        let start = match first {
            FirstRun::Now => Instant::now(),
            FirstRun::AfterOneInterval => Instant::now() + every,
        };
        let mut ticker = tokio::time::interval_at(start, every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match run().await {
                Ok(()) => {}
                Err(StoreError::WriterStopped) => return,
                Err(error) => tracing::warn!(cause = %error, "{task} failed; will retry"),
            }
        }
    })
}
