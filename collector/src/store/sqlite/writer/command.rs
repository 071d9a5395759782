//! What goes over the writer's queue: one command per request, each with the channel its
//! answer goes back on once the transaction that ran it has committed (or failed).

use audit_event::chain::Checkpoint;
use audit_event::IngestReceipt;
use tokio::sync::oneshot;

use crate::completeness::accounting::{SenderActivity, SenderPolicy};
use crate::store::new_event::NewEvent;
use crate::store::StoreError;

pub(super) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(super) enum Command {
    Ingest {
        events: Vec<NewEvent>,
        sender: Option<SenderActivity>,
        reply: Reply<IngestReceipt>,
    },
    /// `refused`: senders whose batch the full queue refused, and when (ms).
    CheckSenders {
        policy: SenderPolicy,
        refused: Vec<(String, i64)>,
        reply: Reply<usize>,
    },
    Purge {
        older_than_ms: i64,
        limit: usize,
        reply: Reply<usize>,
    },
    Checkpoint {
        reply: Reply<Option<Checkpoint>>,
    },
    Shutdown,
}
