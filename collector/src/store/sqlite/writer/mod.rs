//! The writer thread: the only owner of the write connection. Work arrives over a bounded
//! queue (so a slow disk pushes back as 503s instead of growing memory); the thread blocks
//! for the first command, takes whatever else is already waiting (up to a bound), runs it
//! all in ONE transaction with cached statements, commits, and only then answers each
//! sender. An acknowledged batch is therefore always a committed batch.
//!
//! The writer also keeps the hash chain: each event is linked to the one before in the
//! transaction that stores it, and, when it has a signing key, the writer signs the
//! checkpoints (on request, after every purge inside the purge's transaction, and once more
//! when it stops), so no committed state is ever left without its proof.
//!
//! Files: [`handle`] is the queue's sending side, [`command`] what goes over it, [`thread`]
//! the loop that owns the connection and answers, [`steps`] what each command does in the
//! transaction (its SQL is `store::sqlite::write_sql`), [`checkpointer`] the thread that
//! copies the WAL into the database file off the writer's thread.

mod checkpointer;
mod command;
mod handle;
mod steps;
mod thread;

pub use handle::{SubmitError, WriterHandle};
#[cfg(test)]
pub use thread::spawn;
pub use thread::{spawn_signing, WriterThread};

#[cfg(test)]
mod tests {
    use audit_event::IngestReceipt;
    use rusqlite::{Connection, TransactionBehavior};

    use super::*;
    use crate::chain::link::canonical_body;
    use crate::store::new_event::NewEvent;
    use crate::store::sqlite::schema::open_for_writing;

    fn event(uuid: &str) -> NewEvent {
        let body = format!(r#"{{"uuid":"{uuid}"}}"#);
        NewEvent {
            uuid: uuid.to_owned(),
            timestamp_ms: 1_700_000_000_000,
            event_type: "Test".to_owned(),
            db_user_id: None,
            user_email: None,
            user_id: None,
            user_name: None,
            method: "GET".to_owned(),
            status: Some(200),
            canonical: canonical_body(&body).expect("JSON"),
            body,
        }
    }

    fn stored_uuids(path: &std::path::Path) -> Vec<String> {
        let conn = Connection::open(path).expect("open");
        let mut stmt = conn.prepare("SELECT uuid FROM events ORDER BY seq").expect("prepare");
        let rows = stmt.query_map([], |row| row.get(0)).expect("query");
        rows.collect::<Result<_, _>>().expect("rows")
    }

    #[tokio::test]
    async fn counts_duplicates_across_and_within_batches() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.db");
        let (writer, thread) = spawn(open_for_writing(&path).expect("open"), 4).expect("spawn");
        let first = writer.try_ingest(vec![event("a"), event("b")], None).expect("queued").committed().await;
        assert_eq!(first.expect("committed"), IngestReceipt { accepted: 2, duplicates: 0 });
        let retried =
            writer.try_ingest(vec![event("b"), event("c"), event("c")], None).expect("queued").committed().await;
        assert_eq!(retried.expect("committed"), IngestReceipt { accepted: 1, duplicates: 2 });
        thread.shutdown().await.expect("clean stop");
        assert_eq!(stored_uuids(&path), ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn a_failing_batch_is_refused_alone_and_the_batches_written_with_it_commit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.db");
        let conn = open_for_writing(&path).expect("open");
        // A batch holding a `Poison` event fails inside the writer's transaction.
        conn.execute_batch(
            "CREATE TEMP TRIGGER refuse_poison BEFORE INSERT ON events WHEN NEW.type = 'Poison'
             BEGIN SELECT RAISE(ABORT, 'poisoned batch'); END;",
        )
        .expect("trigger");
        let (writer, thread) = spawn(conn, 8).expect("spawn");
        // Hold the write lock: the writer blocks on its first batch while the next two queue,
        // so those two share one transaction.
        let mut blocker = Connection::open(&path).expect("open blocker");
        let lock = blocker.transaction_with_behavior(TransactionBehavior::Immediate).expect("lock");
        let first = writer.try_ingest(vec![event("a")], None).expect("queued");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let mut poison = event("p");
        poison.event_type = "Poison".to_owned();
        let poisoned = writer.try_ingest(vec![event("b"), poison], None).expect("queued");
        let after = writer.try_ingest(vec![event("c")], None).expect("queued");
        drop(lock);
        assert_eq!(first.committed().await.expect("first").accepted, 1);
        let refused = poisoned.committed().await.expect_err("the poisoned batch is refused");
        assert!(refused.to_string().contains("poisoned batch"), "{refused}");
        assert_eq!(after.committed().await.expect("the batch beside it commits").accepted, 1);
        thread.shutdown().await.expect("clean stop");
        assert_eq!(stored_uuids(&path), ["a", "c"], "nothing of the refused batch is kept, not even `b`");
        let seqs: Vec<i64> = Connection::open(&path)
            .expect("open")
            .prepare("SELECT seq FROM events ORDER BY seq")
            .expect("prepare")
            .query_map([], |row| row.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(seqs, [1, 2], "the refused batch took no seq");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_shutdown_commits_what_was_queued() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.db");
        let (writer, thread) = spawn(open_for_writing(&path).expect("open"), 1).expect("spawn");
        // Hold the write lock so the writer blocks inside its first transaction.
        let mut blocker = Connection::open(&path).expect("open blocker");
        let lock = blocker.transaction_with_behavior(TransactionBehavior::Immediate).expect("lock");
        let first = writer.try_ingest(vec![event("a")], None).expect("queued");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await; // writer takes it and blocks
        let second = writer.try_ingest(vec![event("b")], None).expect("fits in the queue of one");
        assert_eq!(writer.try_ingest(vec![event("c")], None).err(), Some(SubmitError::Full));
        drop(lock);
        let stop = tokio::spawn(thread.shutdown());
        assert_eq!(first.committed().await.expect("first").accepted, 1);
        assert_eq!(second.committed().await.expect("second").accepted, 1);
        stop.await.expect("join").expect("clean stop");
        assert_eq!(writer.try_ingest(vec![event("d")], None).err(), Some(SubmitError::Stopped));
        assert_eq!(stored_uuids(&path), ["a", "b"]);
    }
}
