//! `GET /audit/activity` on PostgreSQL: events per hour or day, by outcome, counted from the
//! sealed `events` at query time through the timestamp (or a filter's) index. It has not yet
//! the hourly rollup the SQLite store keeps (`store::activity`), so its cost grows with the
//! events of the window (docs/not-done.md). The SQL text is fixed fragments; every value
//! from the request is a bound parameter.

use deadpool_postgres::Pool;
use tokio_postgres::types::ToSql;

use super::super::activity::{ActivityBucket, ActivityOutcome, BucketWidth, OutcomeCounts, HOUR_MS, MAX_BUCKETS};
use super::super::trail_query::EventFilters;
use super::super::StoreError;
use super::page::filter_predicates;

/// Events per bucket of `width` for the events `filters` selects.
pub async fn activity(pool: &Pool, filters: &EventFilters, width: BucketWidth) -> Result<ActivityOutcome, StoreError> {
    let bucket_ms = width.hours() * HOUR_MS;
    let mut sql = format!(
        "SELECT floor(timestamp_ms / {bucket_ms}::numeric)::bigint,
                count(*) FILTER (WHERE status BETWEEN 100 AND 399),
                count(*) FILTER (WHERE status = 401),
                count(*) FILTER (WHERE status = 403),
                count(*)
         FROM events WHERE true"
    );
    let (predicates, values) = filter_predicates(filters, 0);
    sql.push_str(&predicates);
    sql.push_str(&format!(" GROUP BY 1 ORDER BY 1 LIMIT {}", MAX_BUCKETS + 1));
    let parameters: Vec<&(dyn ToSql + Sync)> =
        values.iter().map(|value| value.as_ref() as &(dyn ToSql + Sync)).collect();
    let client = pool.get().await?;
    let rows = client.query(&sql, &parameters).await?;
    if rows.len() > MAX_BUCKETS {
        return Ok(ActivityOutcome::TooManyBuckets);
    }
    Ok(ActivityOutcome::Buckets(
        rows.iter()
            .map(|row| {
                let (success, failed_login, forbidden, total): (i64, i64, i64, i64) =
                    (row.get(1), row.get(2), row.get(3), row.get(4));
                ActivityBucket {
                    start_ms: row.get::<_, i64>(0).saturating_mul(bucket_ms),
                    counts: OutcomeCounts {
                        success,
                        failed_login,
                        forbidden,
                        error: total - success - failed_login - forbidden,
                    },
                }
            })
            .collect(),
    ))
}
