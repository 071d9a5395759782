//! `GET /healthz`: 200 `ok` when the store takes writes and answers a query;
//! no authentication, so a load balancer or Envoy health check can use it.

use hyper::StatusCode;

use super::respond::{with_body, HttpResponse};
use super::{ApiError, Shared};

/// Handles one health check.
pub async fn handle(shared: &Shared) -> Result<HttpResponse, ApiError> {
    shared.store.health().await?;
    Ok(with_body(StatusCode::OK, "text/plain; charset=utf-8", "ok"))
}
