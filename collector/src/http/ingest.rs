//! `POST /v1/events`: authenticate, read the body within its limit, validate the whole
//! batch (an empty one with a sender report is that sender's heartbeat), queue it for the writer (503 when the queue is full, never an accepted batch that
//! cannot be stored; on PostgreSQL also 503 while too many events wait for the sealer), and
//! answer 200 with the receipt only once the batch is committed.

use audit_event::IngestReceipt;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::authorize::authorize;
use super::body::read_limited;
use super::respond::{with_body, HttpResponse};
use super::{ApiError, Shared};
use crate::auth::Scope;
use crate::batch::parse_batch;
use crate::store::StoreError;

/// Handles one ingest request, counting what it stored or why it stored nothing.
pub async fn handle(request: Request<Incoming>, shared: &Shared) -> Result<HttpResponse, ApiError> {
    let outcome = store_batch(request, shared).await;
    match &outcome {
        Ok(receipt) => shared.metrics.count_ingested(receipt.accepted, receipt.duplicates),
        Err(error) => shared.metrics.count_rejected(error.kind()),
    }
    let receipt = outcome?;
    let body = serde_json::to_vec(&receipt).map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(with_body(StatusCode::OK, "application/json", body))
}

async fn store_batch(request: Request<Incoming>, shared: &Shared) -> Result<IngestReceipt, ApiError> {
    authorize(request.headers(), Scope::Ingest, shared).await?;
    let (parts, body) = request.into_parts();
    let bytes = read_limited(body, &parts.headers, shared.max_body_bytes).await?;
    let batch = parse_batch(&bytes).map_err(|error| ApiError::BadRequest(error.to_string()))?;
    let events = batch.rows.len();
    // An empty batch with a sender report is a heartbeat: it goes to the store too, so the
    // sender's last report is committed like its events.
    let receipt = if batch.rows.is_empty() && batch.sender.is_none() {
        IngestReceipt { accepted: 0, duplicates: 0 }
    } else {
        shared.store.ingest(batch.rows, batch.sender).await.map_err(|error| match error {
            StoreError::QueueFull => {
                tracing::warn!(events, "write queue full; batch refused with 503");
                ApiError::QueueFull
            }
            // Logged by the store, at most every few seconds: this can be thousands a second.
            StoreError::SealingBehind { unsealed, bound } => ApiError::SealingBehind { unsealed, bound },
            StoreError::WriterStopped => ApiError::ShuttingDown,
            other => ApiError::Store(other),
        })?
    };
    tracing::debug!(accepted = receipt.accepted, duplicates = receipt.duplicates, "batch committed");
    Ok(receipt)
}
