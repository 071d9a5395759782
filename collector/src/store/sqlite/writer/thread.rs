//! The writer thread: the only owner of the write connection. It blocks for the first
//! command, takes whatever else is already waiting (up to [`MAX_COMMANDS_PER_TRANSACTION`]),
//! runs it all in ONE transaction, commits, and only then answers each command: with its own
//! outcome, or the commit's failure.

use std::thread::JoinHandle;

use audit_event::chain::Checkpoint;
use audit_event::IngestReceipt;
use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::checkpointer::{install, Checkpointer};
use super::command::{Command, Reply};
use super::handle::WriterHandle;
use super::steps::{check_in, checkpoint_in, ingest_accounted, purge_and_checkpoint};
use crate::chain::signing::TrailSigner;
use crate::store::{now_millis, StoreError};

/// Most queued commands written in one transaction: big enough to amortise the fsync of a
/// commit, small enough that one transaction never holds the lock for long.
const MAX_COMMANDS_PER_TRANSACTION: usize = 64;

/// The writer thread itself (and its WAL checkpointer); [`WriterThread::shutdown`] stops
/// it after draining the queue.
pub struct WriterThread {
    thread: JoinHandle<()>,
    queue: mpsc::Sender<Command>,
    checkpointer: Checkpointer,
}

impl WriterThread {
    /// Stops taking new work, commits everything already queued, and joins the thread.
    pub async fn shutdown(self) -> Result<(), StoreError> {
        // A closed queue means the thread already ended; joining tells how.
        let _ = self.queue.send(Command::Shutdown).await;
        let thread = self.thread;
        let checkpointer = self.checkpointer;
        // The checkpointer ends when the writer's connection closes, at the writer's end.
        let joined = tokio::task::spawn_blocking(move || (thread.join(), checkpointer.join()))
            .await
            .map_err(|error| StoreError::Task(error.to_string()))?;
        joined.0.map_err(|_| StoreError::WriterPanicked)?;
        joined.1
    }
}

#[cfg(test)]
/// Starts the writer thread on `conn` with a queue of `capacity` commands, without a
/// signing key (it links events but signs no checkpoints).
pub fn spawn(conn: Connection, capacity: usize) -> Result<(WriterHandle, WriterThread), StoreError> {
    spawn_signing(conn, capacity, None)
}

/// Starts the writer thread, and the thread that checkpoints its WAL; with a `signer` the
/// writer also signs checkpoints of the chain.
pub fn spawn_signing(
    mut conn: Connection,
    capacity: usize,
    signer: Option<TrailSigner>,
) -> Result<(WriterHandle, WriterThread), StoreError> {
    let checkpointer = install(&mut conn)?;
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    let thread = std::thread::Builder::new()
        .name("audit-writer".to_owned())
        .spawn(move || write_loop(conn, receiver, signer.as_ref()))
        .map_err(|error| StoreError::Task(format!("could not start the writer thread: {error}")))?;
    Ok((WriterHandle::new(sender.clone()), WriterThread { thread, queue: sender, checkpointer }))
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

/// What one command came to inside a transaction, before the commit is known.
enum Outcome {
    Ingest(Result<IngestReceipt, StoreError>),
    CheckSenders(Result<usize, StoreError>),
    Purge(Result<usize, StoreError>),
    Checkpoint(Result<Option<Checkpoint>, StoreError>),
    Nothing,
}

impl Outcome {
    fn failed(&self) -> bool {
        match self {
            Outcome::Ingest(outcome) => outcome.is_err(),
            Outcome::CheckSenders(outcome) | Outcome::Purge(outcome) => outcome.is_err(),
            Outcome::Checkpoint(outcome) => outcome.is_err(),
            Outcome::Nothing => false,
        }
    }
}

/// Runs one command on `conn` (the transaction, or a savepoint of it).
fn run(conn: &Connection, command: &Command, signer: Option<&TrailSigner>, ingested_at_ms: i64) -> Outcome {
    match command {
        Command::Ingest { events, sender, .. } => {
            Outcome::Ingest(ingest_accounted(conn, events, sender.as_ref(), ingested_at_ms))
        }
        Command::CheckSenders { policy, refused, .. } => {
            Outcome::CheckSenders(check_in(conn, *policy, refused, ingested_at_ms))
        }
        Command::Purge { older_than_ms, limit, .. } => {
            Outcome::Purge(purge_and_checkpoint(conn, *older_than_ms, *limit, signer))
        }
        Command::Checkpoint { .. } => Outcome::Checkpoint(checkpoint_in(conn, signer)),
        Command::Shutdown => Outcome::Nothing,
    }
}

/// Runs `command` in a savepoint of its own, kept only when it succeeded.
fn run_alone(
    tx: &mut Transaction<'_>,
    command: &Command,
    signer: Option<&TrailSigner>,
    ingested_at_ms: i64,
) -> Outcome {
    let savepoint = match tx.savepoint() {
        Ok(savepoint) => savepoint,
        Err(error) => return failed(command, &error.to_string()),
    };
    let outcome = run(&savepoint, command, signer, ingested_at_ms);
    if outcome.failed() {
        return outcome; // dropping the savepoint rolls it back
    }
    match savepoint.commit() {
        Ok(()) => outcome,
        Err(error) => failed(command, &error.to_string()),
    }
}

/// The commands run together in one transaction, without a savepoint each: a savepoint makes
/// SQLite copy every page it first changes into a statement journal (a temporary file past
/// 64 KiB), which with the events' indexes cost more bytes written per event than the WAL
/// itself (docs/performance.md). If any command fails, that transaction is rolled back and
/// the group runs again, each command in its own savepoint, so one failing batch is refused
/// alone and the others still commit.
fn write_together(conn: &mut Connection, work: Vec<Command>, signer: Option<&TrailSigner>) {
    let ingested_at_ms = now_millis();
    let mut outcomes = Vec::with_capacity(work.len());
    let mut commit_failed = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => {
            outcomes.extend(work.iter().map(|command| run(&tx, command, signer, ingested_at_ms)));
            if outcomes.iter().any(Outcome::failed) {
                drop(tx); // rolls back; the isolated round below answers
                outcomes.clear();
                None
            } else {
                commit(tx)
            }
        }
        Err(error) => Some(began_not(&error)),
    };
    if outcomes.is_empty() && commit_failed.is_none() {
        commit_failed = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(mut tx) => {
                outcomes.extend(work.iter().map(|command| run_alone(&mut tx, command, signer, ingested_at_ms)));
                commit(tx)
            }
            Err(error) => Some(began_not(&error)),
        };
    }
    if outcomes.len() != work.len() {
        // The transaction never began: every command answers with that failure.
        let reason = commit_failed.clone().unwrap_or_default();
        outcomes = work.iter().map(|command| failed(command, &reason)).collect();
    }
    for (command, outcome) in work.into_iter().zip(outcomes) {
        answer(command, outcome, commit_failed.as_deref());
    }
}

fn commit(tx: Transaction<'_>) -> Option<String> {
    tx.commit().err().map(|error| {
        tracing::error!(cause = %error, "could not commit a write transaction");
        error.to_string()
    })
}

fn began_not(error: &rusqlite::Error) -> String {
    tracing::error!(cause = %error, "could not begin a write transaction");
    error.to_string()
}

/// The failure `reason` as `command`'s outcome.
fn failed(command: &Command, reason: &str) -> Outcome {
    let failure = || StoreError::WriteFailed(reason.to_owned());
    match command {
        Command::Ingest { .. } => Outcome::Ingest(Err(failure())),
        Command::CheckSenders { .. } => Outcome::CheckSenders(Err(failure())),
        Command::Purge { .. } => Outcome::Purge(Err(failure())),
        Command::Checkpoint { .. } => Outcome::Checkpoint(Err(failure())),
        Command::Shutdown => Outcome::Nothing,
    }
}

/// Answers `command` once the commit is known: with its own outcome, or with the commit's
/// failure (then nothing of it was kept).
fn answer(command: Command, outcome: Outcome, commit_failed: Option<&str>) {
    fn send<T>(reply: Reply<T>, outcome: Result<T, StoreError>, commit_failed: Option<&str>) {
        let outcome = match commit_failed {
            Some(reason) => Err(StoreError::WriteFailed(reason.to_owned())),
            None => outcome,
        };
        // A sender that stopped waiting (client gone) does not change what was committed.
        let _ = reply.send(outcome);
    }
    match (command, outcome) {
        (Command::Ingest { reply, .. }, Outcome::Ingest(outcome)) => send(reply, outcome, commit_failed),
        (Command::CheckSenders { reply, .. }, Outcome::CheckSenders(outcome)) => {
            if let (Ok(recorded @ 1..), None) = (&outcome, commit_failed) {
                tracing::warn!(recorded, "recorded events the collector did not receive (see the trail)");
            }
            send(reply, outcome, commit_failed);
        }
        (Command::Purge { reply, .. }, Outcome::Purge(outcome)) => send(reply, outcome, commit_failed),
        (Command::Checkpoint { reply }, Outcome::Checkpoint(outcome)) => {
            if let (Ok(Some(checkpoint)), None) = (&outcome, commit_failed) {
                tracing::debug!(number = checkpoint.number, last_seq = checkpoint.last_seq, "checkpoint signed");
            }
            send(reply, outcome, commit_failed);
        }
        // Outcomes are made from their own command (`run`, `failed`): no other pair occurs.
        _ => {}
    }
}
