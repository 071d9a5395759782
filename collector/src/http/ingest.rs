//! `POST /v1/events`: authenticate, read the body within its limit, validate the whole
//! batch, queue it for the writer (503 when the queue is full, never an accepted batch that
//! cannot be stored), and answer 200 with the receipt only once the batch is committed.

use audit_event::IngestReceipt;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::body::read_limited;
use super::respond::{with_body, HttpResponse};
use super::{authorize, ApiError, Shared};
use crate::batch::parse_batch;
use crate::store::SubmitError;

/// Handles one ingest request.
pub async fn handle(request: Request<Incoming>, shared: &Shared) -> Result<HttpResponse, ApiError> {
    authorize(request.headers(), &shared.ingest_tokens)?;
    let (parts, body) = request.into_parts();
    let bytes = read_limited(body, &parts.headers, shared.max_body_bytes).await?;
    let rows = parse_batch(&bytes).map_err(|error| ApiError::BadRequest(error.to_string()))?;
    let events = rows.len();
    let receipt = if rows.is_empty() {
        IngestReceipt { accepted: 0, duplicates: 0 }
    } else {
        let pending = shared.writer.try_ingest(rows).map_err(|error| match error {
            SubmitError::Full => {
                tracing::warn!(events, "write queue full; batch refused with 503");
                ApiError::QueueFull
            }
            SubmitError::Stopped => ApiError::ShuttingDown,
        })?;
        pending.committed().await?
    };
    tracing::debug!(accepted = receipt.accepted, duplicates = receipt.duplicates, "batch committed");
    let body = serde_json::to_vec(&receipt).map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(with_body(StatusCode::OK, "application/json", body))
}
