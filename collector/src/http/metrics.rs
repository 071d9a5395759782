//! `GET /metrics`: Prometheus text exposition, without authentication (like `/healthz`):
//! it holds counts and sizes, never event data, and Envoy does not route it (only `/audit*`
//! reaches the collector through the service's host), so it is reachable only where the
//! collector's own port is.

use std::path::Path;

use hyper::StatusCode;

use super::respond::{with_body, HttpResponse};
use super::{ApiError, Shared};
use crate::metrics::Gauges;
use crate::store::StoreError;

/// Handles one scrape.
pub async fn handle(shared: &Shared) -> Result<HttpResponse, ApiError> {
    let purged_events = shared
        .readers
        .read(|conn| {
            let count: i64 = conn.query_row("SELECT events FROM purge_count", [], |row| row.get(0))?;
            Ok::<_, StoreError>(u64::try_from(count).unwrap_or(0))
        })
        .await?;
    let gauges = Gauges {
        purged_events,
        database_size_bytes: database_size(&shared.database),
        write_queue_depth: shared.writer.queue_depth(),
    };
    Ok(with_body(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", shared.metrics.render(gauges)))
}

/// The database file plus its WAL (where recent commits live until a checkpoint).
fn database_size(database: &Path) -> u64 {
    let size = |path: &Path| std::fs::metadata(path).map_or(0, |meta| meta.len());
    let mut wal = database.as_os_str().to_owned();
    wal.push("-wal");
    size(database) + size(Path::new(&wal))
}
