//! The ingest contract between the filter and the collector: `POST /v1/events` carries an
//! [`IngestBatch`]; the collector answers 200 with an [`IngestReceipt`] only after every
//! event of the batch is committed. Ingest is idempotent on `uuid`, so a retried batch is safe.

use serde::{Deserialize, Serialize};

use crate::event::AuditEvent;
use crate::sender::SenderReport;

/// The path the collector serves ingest on.
pub const INGEST_PATH: &str = "/v1/events";

/// The body of `POST /v1/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestBatch {
    /// Events in the order they were captured.
    pub events: Vec<AuditEvent>,
    /// The filter worker that sent the batch and how many events it has captured so far.
    /// A batch with no events and a sender is a heartbeat. Absent from older filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<SenderReport>,
}

/// The collector's answer to a committed batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestReceipt {
    /// Events stored by this call.
    pub accepted: usize,
    /// Events already stored by an earlier call (a retried batch), not stored again.
    pub duplicates: usize,
}
