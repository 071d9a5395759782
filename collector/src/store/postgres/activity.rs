//! `GET /audit/activity` on PostgreSQL: events per hour or day, by outcome, on the plan the
//! SQLite store follows ([`WindowPlan`]): whole hours summed from `activity_hourly`, which
//! the triggers of `schema_v3.sql` keep in the sealing and purging transactions, and the
//! rest (a window's partial hours, every count under a user name or both user filters)
//! counted from `events` through indexes that carry the columns counted. A chart of one
//! user (`user_id` or `user_email`) takes its whole hours from that column's own rollup
//! (`schema_v8.sql`) and its partial hours from the timestamp index, which carries both user
//! columns. The SQL text is fixed fragments; every value from the request is a bound
//! parameter.

use std::collections::BTreeMap;

use deadpool_postgres::{Pool, Transaction};
use tokio_postgres::types::ToSql;

use super::super::activity_plan::{outcome_of, ActivityOutcome, BucketWidth, OutcomeCounts, WindowPlan, HOUR_MS};
use super::super::query::EventFilters;
use super::super::StoreError;
use super::page::filter_predicates;

/// Events per bucket of `width` for the events `filters` selects.
pub async fn activity(pool: &Pool, filters: &EventFilters, width: BucketWidth) -> Result<ActivityOutcome, StoreError> {
    let plan = WindowPlan::with_user_rollup(filters);
    let rollup = user_rollup_of(filters).unwrap_or("activity_hourly");
    let mut client = pool.get().await?;
    // One snapshot for all the statements: the rollup's whole hours and the counted edges
    // are of one moment of the trail, never a seal committed between them counted in one
    // part and not the other.
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let mut buckets = BTreeMap::new();
    if let Some((first_hour, last_hour)) = plan.rollup_hours {
        // A rollup has no time but its hour, and no user column but its own (the plan sends
        // no other user filter here): the window is the hours.
        let equalities = EventFilters { since_ms: None, until_ms: None, ..filters.clone() };
        let hours = width.hours();
        let sql = format!(
            "SELECT (hour - ((hour % {hours}) + {hours}) % {hours}) / {hours},
                    coalesce(sum(events) FILTER (WHERE status BETWEEN 100 AND 399), 0)::bigint,
                    coalesce(sum(events) FILTER (WHERE status = 401), 0)::bigint,
                    coalesce(sum(events) FILTER (WHERE status = 403), 0)::bigint,
                    sum(events)::bigint
             FROM {rollup} WHERE hour >= $1 AND hour < $2"
        );
        collect(&tx, sql, &equalities, vec![Box::new(first_hour), Box::new(last_hour)], &mut buckets).await?;
    }
    for (since, until) in plan.counted {
        let window = EventFilters { since_ms: Some(since), until_ms: Some(until), ..filters.clone() };
        let bucket_ms = width.hours() * HOUR_MS;
        let sql = format!(
            "SELECT (timestamp_ms - ((timestamp_ms % {bucket_ms}) + {bucket_ms}) % {bucket_ms}) / {bucket_ms},
                    count(*) FILTER (WHERE status BETWEEN 100 AND 399),
                    count(*) FILTER (WHERE status = 401),
                    count(*) FILTER (WHERE status = 403),
                    count(*)
             FROM events WHERE true"
        );
        collect(&tx, sql, &window, Vec::new(), &mut buckets).await?;
    }
    tx.commit().await?;
    Ok(outcome_of(buckets, width))
}

/// The per-user rollup whose whole hours serve `filters`, when exactly one user column that
/// has one is filtered on (no rollup has the user name, none has two users).
fn user_rollup_of(filters: &EventFilters) -> Option<&'static str> {
    match (&filters.user_id, &filters.user_email, &filters.user_name) {
        (Some(_), None, None) => Some("activity_user_id_hourly"),
        (None, Some(_), None) => Some("activity_user_email_hourly"),
        _ => None,
    }
}

/// Runs `sql` (its own parameters `values`) with `filters`' predicates and `GROUP BY 1`,
/// adding each row's counts to its bucket.
async fn collect(
    client: &Transaction<'_>,
    mut sql: String,
    filters: &EventFilters,
    mut values: Vec<Box<dyn ToSql + Sync + Send>>,
    buckets: &mut BTreeMap<i64, OutcomeCounts>,
) -> Result<(), StoreError> {
    let (predicates, filter_values) = filter_predicates(filters, values.len());
    sql.push_str(&predicates);
    sql.push_str(" GROUP BY 1");
    values.extend(filter_values);
    let parameters: Vec<&(dyn ToSql + Sync)> =
        values.iter().map(|value| value.as_ref() as &(dyn ToSql + Sync)).collect();
    for row in client.query(&sql, &parameters).await? {
        let (success, failed_login, forbidden, total): (i64, i64, i64, i64) =
            (row.try_get(1)?, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?);
        let error = total - success - failed_login - forbidden;
        buckets.entry(row.try_get(0)?).or_default().add(OutcomeCounts { success, failed_login, forbidden, error });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_cluster::fresh_database;
    use super::super::{ingest, schema};
    use crate::store::activity_plan::{ActivityOutcome, BucketWidth};
    use crate::store::query::EventFilters;
    use crate::store::test_support::new_event;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_chart_counts_one_moment_of_the_trail_even_when_a_seal_commits_between_its_statements() {
        let url = fresh_database().await;
        let pool = schema::pool(&url).expect("pool");
        schema::migrate(&pool).await.expect("schema");
        // X in a whole hour of the window (summed from the rollup), Y in its partial first
        // hour (counted from `events`): the chart reads them in two statements.
        let (x, y) = (new_event(1, 5_400_000), new_event(2, 2_700_000));
        assert_eq!(ingest::ingest(&pool, &[x, y], None).await.expect("ingest").accepted, 2);
        // The sealer's move for both, by hand, in a transaction that keeps the chart's second
        // statement (it reads `events`) waiting until it commits; its first one has run.
        let mut sealer_client = pool.get().await.expect("connect");
        let sealing = sealer_client.transaction().await.expect("begin");
        sealing
            .batch_execute(
                "LOCK TABLE events IN ACCESS EXCLUSIVE MODE;
                 WITH moved AS (
                     DELETE FROM unsequenced RETURNING arrival AS seq, uuid, timestamp_ms, type,
                         db_user_id, user_email, user_id, method, status, ingested_at_ms, body, user_name
                 )
                 INSERT INTO events (seq, uuid, timestamp_ms, type, db_user_id, user_email, user_id, method, status,
                                     ingested_at_ms, body, chain_prev, chain_hash, user_name)
                 SELECT seq, uuid, timestamp_ms, type, db_user_id, user_email, user_id, method, status,
                        ingested_at_ms, body, '\\x00', '\\x01', user_name FROM moved;",
            )
            .await
            .expect("seal both");
        let filters = EventFilters { since_ms: Some(1_800_000), until_ms: Some(10_800_000), ..EventFilters::default() };
        let chart_pool = pool.clone();
        let chart =
            tokio::spawn(
                async move { super::activity(&chart_pool, &filters, BucketWidth::Hour).await.expect("activity") },
            );
        let observer = pool.get().await.expect("connect");
        let mut waiting = 0_i64;
        for _ in 0..500 {
            waiting = observer
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .expect("waiting")
                .get(0);
            if waiting > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(waiting, 1, "the chart waits for the lock on events");
        sealing.commit().await.expect("the seal commits");
        let ActivityOutcome::Buckets(buckets) = chart.await.expect("chart task") else { panic!("too many buckets") };
        let counted: i64 = buckets.iter().map(|bucket| bucket.counts.total()).sum();
        assert!(
            counted == 0 || counted == 2,
            "the chart mixes two moments: {counted} of the 2 sealed together, {buckets:?}"
        );
    }
}
