//! `GET /metrics`: Prometheus text exposition, without authentication (like `/healthz`):
//! it holds counts and sizes, never event data, and Envoy does not route it (only `/audit*`
//! reaches the collector through the service's host), so it is reachable only where the
//! collector's own port is.

use hyper::StatusCode;

use super::respond::{with_body, HttpResponse};
use super::{ApiError, Shared};
use crate::metrics::Gauges;

/// Handles one scrape.
pub async fn handle(shared: &Shared) -> Result<HttpResponse, ApiError> {
    let store = shared.store.gauges().await?;
    let gauges = Gauges {
        purged_events: store.purged_events,
        database_size_bytes: store.size_bytes,
        write_queue_depth: store.write_queue_depth,
        sealing: store.sealing,
    };
    Ok(with_body(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", shared.metrics.render(gauges)))
}
