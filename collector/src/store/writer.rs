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

use std::thread::JoinHandle;

use audit_event::chain::Checkpoint;
use audit_event::AuditEvent;
use audit_event::IngestReceipt;
use rusqlite::{params, Connection, Transaction, TransactionBehavior};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use super::activity::count_stored;
use super::chain_store::{chain_head, issue_checkpoint};
use super::retention::purge_batch;
use super::senders::{check_senders, note_batch, SenderActivity, SenderPolicy};
use super::{now_millis, StoreError};
use crate::batch::event_row;
use crate::chain::link::link_hash;
use crate::chain::signing::TrailSigner;

/// Most queued commands written in one transaction: big enough to amortise the fsync of a
/// commit, small enough that one transaction never holds the lock for long.
pub const MAX_COMMANDS_PER_TRANSACTION: usize = 64;

/// One validated event, ready to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The idempotency key.
    pub uuid: String,
    /// The event's timestamp, in milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// The event `type`.
    pub event_type: String,
    /// PactFlow's numeric user id.
    pub db_user_id: Option<i64>,
    /// The user's email.
    pub user_email: Option<String>,
    /// What the `userUuid` filter matches: the event's `user_id`, else `db_user_id` as text.
    pub user_id: Option<String>,
    /// The request method.
    pub method: String,
    /// The response status, when known.
    pub status: Option<u16>,
    /// The event's canonical JSON, served as stored.
    pub body: String,
    /// The RFC 8785 form of `body` (`chain::canonical`), the bytes its chain link hashes.
    /// Built where the event was parsed, on the request's thread, so the one writer thread
    /// only runs SHA-256 over it.
    pub canonical: Vec<u8>,
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Command {
    Ingest { events: Vec<NewEvent>, sender: Option<SenderActivity>, reply: Reply<IngestReceipt> },
    CheckSenders { policy: SenderPolicy, reply: Reply<usize> },
    Purge { older_than_ms: i64, limit: usize, reply: Reply<usize> },
    Checkpoint { reply: Reply<Option<Checkpoint>> },
    Shutdown,
}

/// Why a batch was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    /// The queue is full: the caller should retry shortly.
    Full,
    /// The writer has stopped.
    Stopped,
}

/// The sending side of the writer queue; cheap to clone.
#[derive(Clone)]
pub struct WriterHandle {
    queue: mpsc::Sender<Command>,
}

/// A batch in the queue; [`PendingBatch::committed`] resolves once its transaction committed.
pub struct PendingBatch(oneshot::Receiver<Result<IngestReceipt, StoreError>>);

impl PendingBatch {
    /// Waits for the commit and returns what it stored.
    pub async fn committed(self) -> Result<IngestReceipt, StoreError> {
        self.0.await.map_err(|_| StoreError::WriterStopped)?
    }
}

impl WriterHandle {
    /// Queues a batch without waiting for room: a full queue is an answer, not a wait.
    /// `sender` is what the batch says about the filter worker that sent it; its numbers
    /// are accounted for in the transaction that stores the events.
    pub fn try_ingest(
        &self,
        events: Vec<NewEvent>,
        sender: Option<SenderActivity>,
    ) -> Result<PendingBatch, SubmitError> {
        let (reply, receipt) = oneshot::channel();
        match self.queue.try_send(Command::Ingest { events, sender, reply }) {
            Ok(()) => Ok(PendingBatch(receipt)),
            Err(TrySendError::Full(_)) => Err(SubmitError::Full),
            Err(TrySendError::Closed(_)) => Err(SubmitError::Stopped),
        }
    }

    /// Deletes up to `limit` events older than `older_than_ms`; waits for room in the
    /// queue, since housekeeping may be late but must not be refused.
    pub async fn purge(&self, older_than_ms: i64, limit: usize) -> Result<usize, StoreError> {
        let (reply, deleted) = oneshot::channel();
        self.queue.send(Command::Purge { older_than_ms, limit, reply }).await.map_err(|_| StoreError::WriterStopped)?;
        deleted.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Signs a checkpoint of the chain's head, unless nothing changed since the last one
    /// (or the writer has no signing key); returns the new checkpoint.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        let (reply, issued) = oneshot::channel();
        self.queue.send(Command::Checkpoint { reply }).await.map_err(|_| StoreError::WriterStopped)?;
        issued.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// Records overdue holes and silent senders (see `store::senders`); returns how many
    /// records were stored.
    pub async fn check_senders(&self, policy: SenderPolicy) -> Result<usize, StoreError> {
        let (reply, recorded) = oneshot::channel();
        self.queue.send(Command::CheckSenders { policy, reply }).await.map_err(|_| StoreError::WriterStopped)?;
        recorded.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// False once the writer has stopped taking work.
    pub fn is_running(&self) -> bool {
        !self.queue.is_closed()
    }

    /// Commands waiting in the queue (for the `audit_write_queue_depth` gauge).
    pub fn queue_depth(&self) -> usize {
        self.queue.max_capacity().saturating_sub(self.queue.capacity())
    }
}

/// The writer thread itself; [`WriterThread::shutdown`] stops it after draining the queue.
pub struct WriterThread {
    thread: JoinHandle<()>,
    queue: mpsc::Sender<Command>,
}

impl WriterThread {
    /// Stops taking new work, commits everything already queued, and joins the thread.
    pub async fn shutdown(self) -> Result<(), StoreError> {
        // A closed queue means the thread already ended; joining tells how.
        let _ = self.queue.send(Command::Shutdown).await;
        let thread = self.thread;
        let joined = tokio::task::spawn_blocking(move || thread.join())
            .await
            .map_err(|error| StoreError::Task(error.to_string()))?;
        joined.map_err(|_| StoreError::WriterPanicked)
    }
}

#[cfg(test)]
/// Starts the writer thread on `conn` with a queue of `capacity` commands, without a
/// signing key (it links events but signs no checkpoints).
pub fn spawn(conn: Connection, capacity: usize) -> Result<(WriterHandle, WriterThread), StoreError> {
    spawn_signing(conn, capacity, None)
}

/// Starts the writer thread; with a `signer` it also signs checkpoints.
pub fn spawn_signing(
    conn: Connection,
    capacity: usize,
    signer: Option<TrailSigner>,
) -> Result<(WriterHandle, WriterThread), StoreError> {
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    let thread = std::thread::Builder::new()
        .name("audit-writer".to_owned())
        .spawn(move || write_loop(conn, receiver, signer.as_ref()))
        .map_err(|error| StoreError::Task(format!("could not start the writer thread: {error}")))?;
    Ok((WriterHandle { queue: sender.clone() }, WriterThread { thread, queue: sender }))
}

fn write_loop(mut conn: Connection, mut queue: mpsc::Receiver<Command>, signer: Option<&TrailSigner>) {
    while let Some(first) = queue.blocking_recv() {
        let mut work = Vec::new();
        let mut next = Some(first);
        while let Some(command) = next.take() {
            match command {
                // Refuse new work but keep what is queued: those batches are written below
                // and in the next rounds, until the queue is empty.
                Command::Shutdown => queue.close(),
                other => work.push(other),
            }
            if work.len() < MAX_COMMANDS_PER_TRANSACTION {
                next = queue.try_recv().ok();
            }
        }
        if !work.is_empty() {
            write_together(&mut conn, work, signer);
        }
    }
    if let Some(signer) = signer {
        // The last checkpoint covers everything committed, so a stopped collector's
        // trail is proven to its end.
        let (reply, _) = oneshot::channel();
        write_together(&mut conn, vec![Command::Checkpoint { reply }], Some(signer));
    }
    tracing::debug!("writer queue drained; writer stopped");
}

/// A command that ran inside the transaction and waits for the commit to answer.
enum Done {
    Ingest(Reply<IngestReceipt>, Result<IngestReceipt, String>),
    CheckSenders(Reply<usize>, Result<usize, String>),
    Purge(Reply<usize>, Result<usize, String>),
    Checkpoint(Reply<Option<Checkpoint>>, Result<Option<Checkpoint>, String>),
}

fn write_together(conn: &mut Connection, work: Vec<Command>, signer: Option<&TrailSigner>) {
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => {
            tracing::error!(cause = %error, "could not begin a write transaction");
            let reason = error.to_string();
            let done = work.into_iter().filter_map(|command| run_nothing(command, &reason));
            answer(done, None);
            return;
        }
    };
    let ingested_at_ms = now_millis();
    let mut done = Vec::with_capacity(work.len());
    for command in work {
        match command {
            Command::Ingest { events, sender, reply } => {
                let outcome = ingest_accounted(&mut tx, &events, sender.as_ref(), ingested_at_ms)
                    .map_err(|error| error.to_string());
                done.push(Done::Ingest(reply, outcome));
            }
            Command::CheckSenders { policy, reply } => {
                let outcome = check_in(&mut tx, policy, ingested_at_ms).map_err(|error| error.to_string());
                if let Ok(recorded @ 1..) = &outcome {
                    tracing::warn!(recorded, "recorded events the collector did not receive (see the trail)");
                }
                done.push(Done::CheckSenders(reply, outcome));
            }
            Command::Purge { older_than_ms, limit, reply } => {
                let outcome =
                    purge_and_checkpoint(&mut tx, older_than_ms, limit, signer).map_err(|error| error.to_string());
                done.push(Done::Purge(reply, outcome));
            }
            Command::Checkpoint { reply } => {
                let outcome = checkpoint_in(&mut tx, signer).map_err(|error| error.to_string());
                if let Ok(Some(checkpoint)) = &outcome {
                    tracing::debug!(number = checkpoint.number, last_seq = checkpoint.last_seq, "checkpoint signed");
                }
                done.push(Done::Checkpoint(reply, outcome));
            }
            Command::Shutdown => {}
        }
    }
    match tx.commit() {
        Ok(()) => answer(done, None),
        Err(error) => {
            tracing::error!(cause = %error, "could not commit a write transaction");
            answer(done, Some(error.to_string()));
        }
    }
}

/// Purges one batch and, when anything went and there is a key, signs the checkpoint that
/// records the new anchor, in one savepoint: the anchor is never left unsigned.
fn purge_and_checkpoint(
    tx: &mut Transaction<'_>,
    older_than_ms: i64,
    limit: usize,
    signer: Option<&TrailSigner>,
) -> Result<usize, StoreError> {
    let savepoint = tx.savepoint()?;
    let deleted = purge_batch(&savepoint, older_than_ms, limit)?;
    if let (true, Some(signer)) = (deleted > 0, signer) {
        issue_checkpoint(&savepoint, signer, now_millis())?;
    }
    savepoint.commit()?;
    Ok(deleted)
}

fn checkpoint_in(tx: &mut Transaction<'_>, signer: Option<&TrailSigner>) -> Result<Option<Checkpoint>, StoreError> {
    let Some(signer) = signer else {
        return Ok(None);
    };
    let savepoint = tx.savepoint()?;
    let issued = issue_checkpoint(&savepoint, signer, now_millis())?;
    savepoint.commit()?;
    Ok(issued)
}

/// A batch and the accounting of its sender's numbers, in one savepoint: the numbers are
/// accounted for exactly when the events are stored.
fn ingest_accounted(
    tx: &mut Transaction<'_>,
    events: &[NewEvent],
    sender: Option<&SenderActivity>,
    ingested_at_ms: i64,
) -> Result<IngestReceipt, StoreError> {
    let savepoint = tx.savepoint()?;
    let inserted = insert_rows(&savepoint, events, ingested_at_ms)?;
    if let Some(activity) = sender {
        let records = note_batch(&savepoint, activity, &inserted, ingested_at_ms)?;
        insert_records(&savepoint, &records, ingested_at_ms)?;
    }
    savepoint.commit()?;
    let accepted = inserted.iter().filter(|stored| **stored).count();
    Ok(IngestReceipt { accepted, duplicates: events.len() - accepted })
}

fn check_in(tx: &mut Transaction<'_>, policy: SenderPolicy, now_ms: i64) -> Result<usize, StoreError> {
    let savepoint = tx.savepoint()?;
    let records = check_senders(&savepoint, policy, now_ms)?;
    insert_records(&savepoint, &records, now_ms)?;
    savepoint.commit()?;
    Ok(records.len())
}

/// The collector's own records go into the chain like any event.
fn insert_records(conn: &Connection, records: &[AuditEvent], now_ms: i64) -> Result<(), StoreError> {
    let rows = records
        .iter()
        .map(|record| {
            event_row(record).map_err(|error| StoreError::WriteFailed(format!("a collector record: {error}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    insert_rows(conn, &rows, now_ms)?;
    Ok(())
}

/// Each batch runs in its own savepoint, so one failing batch is rolled back alone and the
/// batches sharing its transaction still commit. Each new event gets the next seq and is
/// linked to the head of the chain; a duplicate (same uuid) takes no seq and no link.
/// (Ingest goes through `ingest_accounted`; tests build trails with this.)
#[cfg(test)]
pub fn insert_batch(
    tx: &mut Transaction<'_>,
    events: &[NewEvent],
    ingested_at_ms: i64,
) -> Result<IngestReceipt, StoreError> {
    let savepoint = tx.savepoint()?;
    let inserted = insert_rows(&savepoint, events, ingested_at_ms)?;
    savepoint.commit()?;
    let accepted = inserted.iter().filter(|stored| **stored).count();
    Ok(IngestReceipt { accepted, duplicates: events.len() - accepted })
}

/// Inserts the rows in order; returns, for each, whether it was new (not a duplicate).
fn insert_rows(conn: &Connection, events: &[NewEvent], ingested_at_ms: i64) -> Result<Vec<bool>, StoreError> {
    let mut inserted_rows = Vec::with_capacity(events.len());
    {
        let mut head = chain_head(conn)?;
        let mut insert = conn.prepare_cached(
            "INSERT INTO events
                (seq, uuid, timestamp_ms, type, db_user_id, user_email, method, status, ingested_at_ms, body,
                 chain_prev, chain_hash, user_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (uuid) DO NOTHING",
        )?;
        for event in events {
            let seq = head.seq + 1;
            let hash = link_hash(&head.hash, seq, &event.canonical);
            let inserted = insert.execute(params![
                seq,
                event.uuid,
                event.timestamp_ms,
                event.event_type,
                event.db_user_id,
                event.user_email,
                event.method,
                event.status.map(i64::from),
                ingested_at_ms,
                event.body,
                head.hash.as_slice(),
                hash.as_slice(),
                event.user_id,
            ])?;
            if inserted == 1 {
                head.seq = seq;
                head.hash = hash;
            }
            inserted_rows.push(inserted == 1);
        }
    }
    count_stored(conn, events.iter().zip(&inserted_rows).filter(|(_, stored)| **stored).map(|(event, _)| event))?;
    Ok(inserted_rows)
}

fn run_nothing(command: Command, reason: &str) -> Option<Done> {
    match command {
        Command::Ingest { reply, .. } => Some(Done::Ingest(reply, Err(reason.to_owned()))),
        Command::Purge { reply, .. } => Some(Done::Purge(reply, Err(reason.to_owned()))),
        Command::Checkpoint { reply } => Some(Done::Checkpoint(reply, Err(reason.to_owned()))),
        Command::CheckSenders { reply, .. } => Some(Done::CheckSenders(reply, Err(reason.to_owned()))),
        Command::Shutdown => None,
    }
}

/// Answers every command; `commit_failed` overrides each outcome, since nothing was kept.
fn answer(done: impl IntoIterator<Item = Done>, commit_failed: Option<String>) {
    let failed = |reason: &String| StoreError::WriteFailed(reason.clone());
    for item in done {
        // A sender that stopped waiting (client gone) does not change what was committed.
        match item {
            Done::Ingest(reply, outcome) => {
                let outcome = match &commit_failed {
                    Some(reason) => Err(failed(reason)),
                    None => outcome.map_err(|reason| failed(&reason)),
                };
                let _ = reply.send(outcome);
            }
            Done::Purge(reply, outcome) => {
                let outcome = match &commit_failed {
                    Some(reason) => Err(failed(reason)),
                    None => outcome.map_err(|reason| failed(&reason)),
                };
                let _ = reply.send(outcome);
            }
            Done::CheckSenders(reply, outcome) => {
                let outcome = match &commit_failed {
                    Some(reason) => Err(failed(reason)),
                    None => outcome.map_err(|reason| failed(&reason)),
                };
                let _ = reply.send(outcome);
            }
            Done::Checkpoint(reply, outcome) => {
                let outcome = match &commit_failed {
                    Some(reason) => Err(failed(reason)),
                    None => outcome.map_err(|reason| failed(&reason)),
                };
                let _ = reply.send(outcome);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::link::canonical_body;
    use crate::store::schema::open_for_writing;

    fn event(uuid: &str) -> NewEvent {
        let body = format!(r#"{{"uuid":"{uuid}"}}"#);
        NewEvent {
            uuid: uuid.to_owned(),
            timestamp_ms: 1_700_000_000_000,
            event_type: "Test".to_owned(),
            db_user_id: None,
            user_email: None,
            user_id: None,
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
