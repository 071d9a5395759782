//! The periodic checkpoint: every interval, the store is asked to sign a checkpoint of
//! the chain's head; it signs only when the trail grew or was purged since the last one.
//! (Purges and shutdown sign their own checkpoints inside the store.)

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use super::trail_store::TrailStore;
use super::StoreError;

/// Asks for a checkpoint every `every`, until the store stops or the task is aborted.
pub fn spawn(store: Arc<dyn TrailStore>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match store.checkpoint().await {
                Ok(Some(checkpoint)) => {
                    tracing::info!(number = checkpoint.number, last_seq = checkpoint.last_seq, "checkpoint signed");
                }
                Ok(None) => tracing::debug!("checkpoint: no new events"),
                Err(StoreError::WriterStopped) => return,
                Err(error) => tracing::warn!(cause = %error, "checkpoint failed; will retry"),
            }
        }
    })
}
