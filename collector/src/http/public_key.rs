//! `GET /audit/public-key`: the Ed25519 public key that signs the checkpoints, as JSON
//! (hex, PEM and key id). It is public, so no token is needed; an auditor should still
//! compare it once with the key the operator gives out of band (`audit-collector
//! public-key`), since a server that could forge the trail could also serve another key.

use hyper::StatusCode;

use super::respond::{with_body, HttpResponse};
use super::{ApiError, Shared};

/// Handles one request.
pub fn handle(shared: &Shared) -> Result<HttpResponse, ApiError> {
    let body = serde_json::to_vec(&shared.trail_key).map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(with_body(StatusCode::OK, "application/json", body))
}
