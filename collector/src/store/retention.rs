//! Retention: events whose timestamp is older than the
//! retention period are deleted in batches of [`PURGE_BATCH`], each a separate command to
//! the store, so ingest batches queued meanwhile are written between them and never wait
//! behind one huge DELETE. The SQL of one purge is the store's (`write_sql::purge_batch`
//! for SQLite).
//!
//! The purge removes the oldest part of the trail in SEQUENCE order, never a hole in the
//! middle: the kept events must still form one chain, which starts at the anchor (the last
//! purged event and its hash) that the purge records and the writer signs in the same
//! transaction. An event is purged once it and every event before it are expired; with
//! timestamps nearly monotonic across workers, that delays a purge by seconds at most.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::periodic::{spawn_periodic, FirstRun};
use super::trail_store::TrailStore;
use super::{now_millis, StoreError};

/// Most events one purge command deletes.
pub const PURGE_BATCH: usize = 1000;

/// Milliseconds in a day, the unit of `--retention-days`.
pub const MILLIS_PER_DAY: i64 = 86_400_000;

/// Purges every event older than `retention_days` before `now_ms`; returns how many.
pub async fn purge_expired(store: &dyn TrailStore, retention_days: u32, now_ms: i64) -> Result<usize, StoreError> {
    let cutoff = now_ms.saturating_sub(i64::from(retention_days).saturating_mul(MILLIS_PER_DAY));
    let mut total = 0;
    loop {
        let deleted = store.purge(cutoff, PURGE_BATCH).await?;
        total += deleted;
        if deleted < PURGE_BATCH {
            return Ok(total);
        }
    }
}

/// Runs [`purge_expired`] now and then every `every`, until the store stops or the task
/// is aborted.
pub fn spawn(store: Arc<dyn TrailStore>, retention_days: u32, every: Duration) -> JoinHandle<()> {
    spawn_periodic("retention: the purge", every, FirstRun::Now, move || {
        let store = Arc::clone(&store);
        async move {
            match purge_expired(store.as_ref(), retention_days, now_millis()).await? {
                0 => tracing::debug!("retention: nothing to purge"),
                purged => tracing::info!(purged, retention_days, "retention: purged expired events"),
            }
            Ok(())
        }
    })
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;
    use crate::store::new_event::NewEvent;
    use crate::store::sqlite::SqliteStore;
    use crate::store::test_support::new_event as event;

    #[tokio::test]
    async fn purges_only_events_older_than_the_retention_in_several_batches() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.db");
        let store = SqliteStore::open(&path, 8, None).expect("open");
        let now = 100 * MILLIS_PER_DAY;
        let old = now - 91 * MILLIS_PER_DAY;
        let recent = now - 89 * MILLIS_PER_DAY;
        let mut events: Vec<NewEvent> = (0..PURGE_BATCH + 5).map(|n| event(n, old)).collect();
        events.extend((0..3).map(|n| event(PURGE_BATCH + 100 + n, recent)));
        store.ingest(events, None).await.expect("committed");

        let purged = purge_expired(&store, 90, now).await.expect("purge");
        assert_eq!(purged, PURGE_BATCH + 5);
        store.shutdown().await.expect("stop");
        let conn = Connection::open(&path).expect("open");
        let left: i64 = conn.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).expect("count");
        assert_eq!(left, 3, "the three recent events stay");
    }
}
