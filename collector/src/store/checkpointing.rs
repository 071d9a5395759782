//! The periodic checkpoint: every interval, the store is asked to sign a checkpoint of
//! the chain's head; it signs only when the trail grew or was purged since the last one.
//! (Purges and shutdown sign their own checkpoints inside the store.)

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::periodic::{spawn_periodic, FirstRun};
use super::trail_store::TrailStore;

/// Asks for a checkpoint every `every`, until the store stops or the task is aborted.
pub fn spawn(store: Arc<dyn TrailStore>, every: Duration) -> JoinHandle<()> {
    spawn_periodic("checkpoint", every, FirstRun::AfterOneInterval, move || {
        let store = Arc::clone(&store);
        async move {
            match store.checkpoint().await? {
                Some(checkpoint) => {
                    tracing::info!(number = checkpoint.number, last_seq = checkpoint.last_seq, "checkpoint signed");
                }
                None => tracing::debug!("checkpoint: no new events"),
            }
            Ok(())
        }
    })
}
