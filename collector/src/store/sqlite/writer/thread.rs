//! The writer thread: the only owner of the write connection. It blocks for the first
//! command, takes whatever else is already waiting (up to [`MAX_COMMANDS_PER_TRANSACTION`]),
//! runs it all in ONE transaction, commits, and only then answers each command, through one
//! generic path ([`Done`]): the command's own outcome, or the commit's failure.

use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use super::command::{Command, Reply};
use super::handle::WriterHandle;
use super::steps::{check_in, checkpoint_in, ingest_accounted, purge_and_checkpoint};
use crate::chain::signing::TrailSigner;
use crate::store::{now_millis, StoreError};

/// Most queued commands written in one transaction: big enough to amortise the fsync of a
/// commit, small enough that one transaction never holds the lock for long.
const MAX_COMMANDS_PER_TRANSACTION: usize = 64;

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
    Ok((WriterHandle::new(sender.clone()), WriterThread { thread, queue: sender }))
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

/// A command that ran inside the transaction: it answers once the commit is known, with its
/// own outcome, or with the commit's failure (then nothing of it was kept).
type Done = Box<dyn FnOnce(Option<&str>)>;

fn done<T: 'static>(reply: Reply<T>, outcome: Result<T, StoreError>) -> Done {
    Box::new(move |commit_failed| {
        let outcome = match commit_failed {
            Some(reason) => Err(StoreError::WriteFailed(reason.to_owned())),
            None => outcome,
        };
        // A sender that stopped waiting (client gone) does not change what was committed.
        let _ = reply.send(outcome);
    })
}

fn write_together(conn: &mut Connection, work: Vec<Command>, signer: Option<&TrailSigner>) {
    let mut tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => {
            tracing::error!(cause = %error, "could not begin a write transaction");
            let reason = error.to_string();
            work.into_iter().filter_map(|command| not_run(command, &reason)).for_each(|done| done(None));
            return;
        }
    };
    let ingested_at_ms = now_millis();
    let mut answers = Vec::with_capacity(work.len());
    for command in work {
        match command {
            Command::Ingest { events, sender, reply } => {
                answers.push(done(reply, ingest_accounted(&mut tx, &events, sender.as_ref(), ingested_at_ms)));
            }
            Command::CheckSenders { policy, reply } => {
                let outcome = check_in(&mut tx, policy, ingested_at_ms);
                if let Ok(recorded @ 1..) = &outcome {
                    tracing::warn!(recorded, "recorded events the collector did not receive (see the trail)");
                }
                answers.push(done(reply, outcome));
            }
            Command::Purge { older_than_ms, limit, reply } => {
                answers.push(done(reply, purge_and_checkpoint(&mut tx, older_than_ms, limit, signer)));
            }
            Command::Checkpoint { reply } => {
                let outcome = checkpoint_in(&mut tx, signer);
                if let Ok(Some(checkpoint)) = &outcome {
                    tracing::debug!(number = checkpoint.number, last_seq = checkpoint.last_seq, "checkpoint signed");
                }
                answers.push(done(reply, outcome));
            }
            Command::Shutdown => {}
        }
    }
    let commit_failed = tx.commit().err().map(|error| {
        tracing::error!(cause = %error, "could not commit a write transaction");
        error.to_string()
    });
    for answer in answers {
        answer(commit_failed.as_deref());
    }
}

/// A command whose transaction never began: it answers with that failure.
fn not_run(command: Command, reason: &str) -> Option<Done> {
    let failed = || StoreError::WriteFailed(reason.to_owned());
    match command {
        Command::Ingest { reply, .. } => Some(done(reply, Err(failed()))),
        Command::Purge { reply, .. } => Some(done(reply, Err(failed()))),
        Command::Checkpoint { reply } => Some(done(reply, Err(failed()))),
        Command::CheckSenders { reply, .. } => Some(done(reply, Err(failed()))),
        Command::Shutdown => None,
    }
}
