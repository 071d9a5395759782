//! [`WriterHandle`]: the sending side of the writer's bounded queue, cheap to clone. Ingest
//! never waits for room (a full queue is an answer, 503); housekeeping waits.

use audit_event::chain::Checkpoint;
use audit_event::IngestReceipt;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};

use super::command::Command;
use crate::completeness::accounting::{SenderActivity, SenderPolicy};
use crate::store::new_event::NewEvent;
use crate::store::StoreError;

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
    pub(super) fn new(queue: mpsc::Sender<Command>) -> WriterHandle {
        WriterHandle { queue }
    }

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

    /// Records overdue holes and silent senders (see `store::sqlite::senders`), after noting
    /// the `refused` senders (id, when) as alive; returns how many records were stored.
    pub async fn check_senders(&self, policy: SenderPolicy, refused: Vec<(String, i64)>) -> Result<usize, StoreError> {
        let (reply, recorded) = oneshot::channel();
        let command = Command::CheckSenders { policy, refused, reply };
        self.queue.send(command).await.map_err(|_| StoreError::WriterStopped)?;
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
