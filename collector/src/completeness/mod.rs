//! Completeness the receiver can prove. Each filter worker (a *sender*) numbers its events
//! and reports how many it has captured in every batch, and at least every heartbeat
//! interval when idle. From that the collector records, as events of the trail, what it did
//! not receive: a hole in a sender's numbers that no gap record of the sender named within
//! the grace period, and a sender that fell silent with events it never delivered.
//!
//! - [`ledger`]: which numbers of a sender are accounted for (pure).
//! - [`accounting`]: a sender's state and how a batch and the periodic check change it
//!   (pure; each store loads and saves it in its own SQL: `store::sqlite::senders` for SQLite,
//!   `store::postgres::senders` for PostgreSQL).
//! - [`records`]: the record events.
//! - [`spawn`]: the periodic check, which the store runs inside a write transaction.

pub mod accounting;
pub mod ledger;
pub mod records;

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use std::sync::Arc;

use crate::store::{StoreError, TrailStore};
use accounting::SenderPolicy;

/// How often the collector looks for overdue holes and silent senders.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Checks senders every [`CHECK_INTERVAL`] until the writer stops or the task is aborted.
pub fn spawn(store: Arc<dyn TrailStore>, policy: SenderPolicy) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval_at(Instant::now() + CHECK_INTERVAL, CHECK_INTERVAL);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match store.check_senders(policy).await {
                Ok(_) => {}
                Err(StoreError::WriterStopped) => return,
                Err(error) => tracing::warn!(cause = %error, "checking senders failed; will retry"),
            }
        }
    })
}
