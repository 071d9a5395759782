//! `GET /healthz`: 200 `ok` when the database answers a query and the writer is running;
//! no authentication, so a load balancer or Envoy health check can use it.

use hyper::StatusCode;

use super::respond::{with_body, HttpResponse};
use super::{ApiError, Shared};
use crate::store::StoreError;

/// Handles one health check.
pub async fn handle(shared: &Shared) -> Result<HttpResponse, ApiError> {
    if !shared.writer.is_running() {
        return Err(ApiError::Store(StoreError::WriterStopped));
    }
    shared.readers.ping().await?;
    Ok(with_body(StatusCode::OK, "text/plain; charset=utf-8", "ok"))
}
