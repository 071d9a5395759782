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

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::store::periodic::{spawn_periodic, FirstRun};
use crate::store::TrailStore;
use accounting::SenderPolicy;

/// How often the collector looks for overdue holes and silent senders.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Checks senders every [`CHECK_INTERVAL`] until the writer stops or the task is aborted.
pub fn spawn(store: Arc<dyn TrailStore>, policy: SenderPolicy) -> JoinHandle<()> {
    spawn_periodic("checking senders", CHECK_INTERVAL, FirstRun::AfterOneInterval, move || {
        let store = Arc::clone(&store);
        async move { store.check_senders(policy).await.map(|_recorded| ()) }
    })
}
