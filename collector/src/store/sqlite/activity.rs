//! Activity over time on SQLite: events per hour or per day (UTC), split by outcome, for the
//! viewer's chart (`GET /audit/activity`). [`activity`] is the one query function; the shared
//! [`WindowPlan`] says which part of a window comes from where.
//!
//! Counting rows at query time would cost a scan of every event in the window (10M events,
//! seconds). So whole hours of a window are summed from the hourly rollup
//! ([`super::activity_rollup`]), which holds at most a few hundred rows per hour whatever the traffic; the partial
//! hours at the edges of `since`/`until` are counted from `events_by_timestamp`, which
//! carries type, method and status, so they are counted from the index alone and the counts
//! are exact for any window. The user filters (`userUuid`, `user_email`) are not in the
//! rollup: with one of them every count comes from that user's (user, time) index, which
//! also carries status and method, so the cost follows the user's events in the window, not
//! the trail (`schema.sql` says what each index costs).

use std::collections::BTreeMap;

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection};

use super::super::activity_plan::{outcome_of, ActivityOutcome, BucketWidth, OutcomeCounts, WindowPlan, HOUR_MS};
use super::super::query::EventFilters;
use super::super::StoreError;

/// The outcome sums of a `SELECT` whose rows have a `status` and a count (`n`); a missing
/// status is -1 in the rollup and NULL in `events`, both errors.
const OUTCOME_SUMS: &str = "sum(CASE WHEN status BETWEEN 100 AND 399 THEN n ELSE 0 END),
     sum(CASE WHEN status = 401 THEN n ELSE 0 END),
     sum(CASE WHEN status = 403 THEN n ELSE 0 END),
     sum(n)";

/// Events per bucket of `width` for the events `filters` selects.
pub fn activity(conn: &Connection, filters: &EventFilters, width: BucketWidth) -> Result<ActivityOutcome, StoreError> {
    let plan = WindowPlan::of(filters);
    let mut buckets: BTreeMap<i64, OutcomeCounts> = BTreeMap::new();
    if let Some((first_hour, last_hour)) = plan.rollup_hours {
        collect(conn, rollup_sql(filters, width, first_hour, last_hour), &mut buckets)?;
    }
    for (since, until) in plan.counted {
        collect(conn, events_sql(filters, width, since, until), &mut buckets)?;
    }
    Ok(outcome_of(buckets, width))
}

/// The equality filters the rollup and `events` share, as `AND +column = ?n` clauses: the
/// `+` keeps SQLite on the time range (or the user's index) rather than an index of a
/// column that may hold most of the trail.
fn equality_clauses(filters: &EventFilters, sql: &mut String, values: &mut Vec<Value>) {
    let mut push = |clause: &str, value: Value| {
        values.push(value);
        sql.push_str(&format!(" AND {clause} ?{}", values.len()));
    };
    if let Some(event_type) = &filters.event_type {
        push("+type =", Value::Text(event_type.clone()));
    }
    if let Some(method) = &filters.method {
        push("+method =", Value::Text(method.clone()));
    }
    if let Some(status) = filters.status {
        push("+status =", Value::Integer(i64::from(status)));
    }
}

/// The rollup's counts of hours `[first_hour, last_hour)`, per bucket: a range of its key.
fn rollup_sql(filters: &EventFilters, width: BucketWidth, first_hour: i64, last_hour: i64) -> (String, Vec<Value>) {
    let mut values = vec![Value::Integer(first_hour), Value::Integer(last_hour)];
    let mut sql = String::from("SELECT hour, status, events AS n FROM activity_hourly WHERE hour >= ?1 AND hour < ?2");
    equality_clauses(filters, &mut sql, &mut values);
    let hours = width.hours();
    let grouped = format!(
        "SELECT (hour - ((hour % {hours}) + {hours}) % {hours}) / {hours}, {OUTCOME_SUMS} FROM ({sql}) GROUP BY 1"
    );
    (grouped, values)
}

/// The counts of the events of `[since, until)` that `filters` selects, per bucket, read
/// from an index by time (the test below holds every filter combination to it): one that
/// covers the counted columns, except that a user's index leaves out the type.
fn events_sql(filters: &EventFilters, width: BucketWidth, since: i64, until: i64) -> (String, Vec<Value>) {
    let mut values = vec![Value::Integer(since), Value::Integer(until)];
    let mut sql =
        String::from("SELECT timestamp_ms, status, 1 AS n FROM events WHERE timestamp_ms >= ?1 AND timestamp_ms < ?2");
    equality_clauses(filters, &mut sql, &mut values);
    let mut push = |clause: &str, value: Value| {
        values.push(value);
        sql.push_str(&format!(" AND {clause} ?{}", values.len()));
    };
    if let Some(user_id) = &filters.user_id {
        push("user_id =", Value::Text(user_id.clone()));
    }
    if let Some(email) = &filters.user_email {
        push("user_email =", Value::Text(email.clone()));
    }
    // The user name has no (name, time) index: its events are found by `(user_name, seq)`
    // and their rows read, so the cost follows that name's events, not the window's.
    if let Some(name) = &filters.user_name {
        push("user_name =", Value::Text(name.clone()));
    }
    let bucket_ms = width.hours() * HOUR_MS;
    let grouped = format!(
        "SELECT (timestamp_ms - ((timestamp_ms % {bucket_ms}) + {bucket_ms}) % {bucket_ms}) / {bucket_ms}, {OUTCOME_SUMS}
         FROM ({sql}) GROUP BY 1"
    );
    (grouped, values)
}

fn collect(
    conn: &Connection,
    (sql, values): (String, Vec<Value>),
    buckets: &mut BTreeMap<i64, OutcomeCounts>,
) -> Result<(), StoreError> {
    let mut select = conn.prepare_cached(&sql)?;
    let mut rows = select.query(params_from_iter(values))?;
    while let Some(row) = rows.next()? {
        let bucket: i64 = row.get(0)?;
        let (success, failed_login, forbidden, total): (i64, i64, i64, i64) =
            (row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?);
        let error = total - success - failed_login - forbidden;
        buckets.entry(bucket).or_default().add(OutcomeCounts { success, failed_login, forbidden, error });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::params;

    use super::*;
    use crate::store::activity_plan::ActivityBucket;
    use crate::store::new_event::NewEvent;
    use crate::store::sqlite::activity_rollup::REBUILD_ACTIVITY_SQL;
    use crate::store::sqlite::schema::open_for_writing;
    use crate::store::sqlite::write_sql::insert_batch;
    use crate::store::test_support::new_event;

    /// (minutes after the epoch's hour 1000, type, method, status)
    const EVENTS: &[(i64, &str, &str, Option<i64>)] = &[
        (0, "T", "GET", Some(200)),
        (10, "T", "GET", Some(401)),
        (59, "U", "PUT", Some(403)),
        (60, "T", "GET", Some(500)),
        (61, "T", "POST", Some(201)),
        (90, "U", "GET", None),
        (24 * 60 + 5, "T", "GET", Some(0)),
        (24 * 60 + 6, "T", "DELETE", Some(404)),
    ];

    const BASE_MS: i64 = 1000 * 24 * HOUR_MS;

    fn trail() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = open_for_writing(&dir.path().join("audit.db")).expect("open");
        for (n, (minute, event_type, method, status)) in EVENTS.iter().enumerate() {
            let user = if n % 2 == 0 { "even" } else { "odd" };
            conn.execute(
                "INSERT INTO events (uuid, timestamp_ms, type, method, status, user_id, user_email, ingested_at_ms, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 0, '{}')",
                params![format!("uuid-{n}"), BASE_MS + minute * 60_000, event_type, method, status, user],
            )
            .expect("insert");
        }
        conn.execute_batch(REBUILD_ACTIVITY_SQL).expect("rollup");
        (dir, conn)
    }

    /// The same counts, the slow way: every event, one by one.
    fn counted_one_by_one(filters: &EventFilters, width: BucketWidth) -> Vec<ActivityBucket> {
        let bucket_ms = width.hours() * HOUR_MS;
        let mut buckets: BTreeMap<i64, OutcomeCounts> = BTreeMap::new();
        for (n, (minute, event_type, method, status)) in EVENTS.iter().enumerate() {
            let at = BASE_MS + minute * 60_000;
            let user = if n % 2 == 0 { "even" } else { "odd" };
            let keep = filters.since_ms.is_none_or(|since| at >= since)
                && filters.until_ms.is_none_or(|until| at < until)
                && filters.event_type.as_deref().is_none_or(|wanted| wanted == *event_type)
                && filters.method.as_deref().is_none_or(|wanted| wanted == *method)
                && filters.status.is_none_or(|wanted| Some(i64::from(wanted)) == *status)
                && filters.user_id.as_deref().is_none_or(|wanted| wanted == user);
            if !keep {
                continue;
            }
            let counts = buckets.entry(at.div_euclid(bucket_ms) * bucket_ms).or_default();
            match status {
                Some(100..=399) => counts.success += 1,
                Some(401) => counts.failed_login += 1,
                Some(403) => counts.forbidden += 1,
                _ => counts.error += 1,
            }
        }
        buckets.into_iter().map(|(start_ms, counts)| ActivityBucket { start_ms, counts }).collect()
    }

    fn buckets(conn: &Connection, filters: &EventFilters, width: BucketWidth) -> Vec<ActivityBucket> {
        match activity(conn, filters, width).expect("query") {
            ActivityOutcome::Buckets(buckets) => buckets,
            ActivityOutcome::TooManyBuckets => panic!("too many buckets"),
        }
    }

    #[test]
    fn counts_match_counting_every_event_for_any_window_and_filter() {
        let (_dir, conn) = trail();
        let minute = |m: i64| Some(BASE_MS + m * 60_000);
        let windows = [
            (None, None),
            (minute(5), None),
            (None, minute(61)),
            (minute(10), minute(24 * 60 + 6)),
            (minute(60), minute(120)),
        ];
        let selections = [
            EventFilters::default(),
            EventFilters { event_type: Some("T".into()), ..EventFilters::default() },
            EventFilters { method: Some("GET".into()), status: Some(401), ..EventFilters::default() },
            EventFilters { user_id: Some("even".into()), ..EventFilters::default() },
        ];
        for (since_ms, until_ms) in windows {
            for selection in &selections {
                let filters = EventFilters { since_ms, until_ms, ..selection.clone() };
                for width in [BucketWidth::Hour, BucketWidth::Day] {
                    assert_eq!(
                        buckets(&conn, &filters, width),
                        counted_one_by_one(&filters, width),
                        "{filters:?} by {width:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_first_hour_splits_by_outcome_and_a_purge_takes_its_events_back_out() {
        let (_dir, conn) = trail();
        let first = buckets(&conn, &EventFilters::default(), BucketWidth::Hour)[0];
        assert_eq!(first.start_ms, BASE_MS);
        assert_eq!(first.counts, OutcomeCounts { success: 1, failed_login: 1, forbidden: 1, error: 0 });
        conn.execute_batch(
            "UPDATE purge_guard SET purging = 1; DELETE FROM events WHERE uuid IN ('uuid-0', 'uuid-1');
             UPDATE purge_guard SET purging = 0;",
        )
        .expect("purge two");
        let first = buckets(&conn, &EventFilters::default(), BucketWidth::Hour)[0];
        assert_eq!(first.counts, OutcomeCounts { forbidden: 1, ..OutcomeCounts::default() });
    }

    #[test]
    fn the_writer_counts_each_stored_event_once_and_no_duplicate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = open_for_writing(&dir.path().join("audit.db")).expect("open");
        let mut events: Vec<NewEvent> = EVENTS
            .iter()
            .enumerate()
            .map(|(n, (minute, event_type, method, status))| NewEvent {
                event_type: (*event_type).to_owned(),
                method: (*method).to_owned(),
                status: status.and_then(|status| u16::try_from(status).ok()),
                ..new_event(n, BASE_MS + minute * 60_000)
            })
            .collect();
        let mut tx = conn.transaction().expect("begin");
        insert_batch(&mut tx, &events, 0).expect("first batch");
        events.push(new_event(99, BASE_MS));
        insert_batch(&mut tx, &events, 0).expect("the same again, and one more");
        tx.commit().expect("commit");
        let rollup = |conn: &Connection| -> Vec<(i64, String, String, i64, i64)> {
            let mut select = conn.prepare("SELECT * FROM activity_hourly ORDER BY 1, 2, 3, 4").expect("prepare");
            let rows = select
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)))
                .expect("query");
            rows.collect::<Result<_, _>>().expect("rows")
        };
        let counted = rollup(&conn);
        conn.execute_batch(REBUILD_ACTIVITY_SQL).expect("rebuild");
        assert_eq!(counted, rollup(&conn), "the writer's counts are the events' counts");
        assert_eq!(counted.iter().map(|row| row.4).sum::<i64>(), 9);
    }

    /// Every filter combination: the rollup by its key, `events` through an index that holds
    /// every column counted (never a row, never a scan).
    #[test]
    fn whole_hours_come_from_the_rollup_by_its_key_and_counts_from_covering_indexes() {
        let (_dir, conn) = trail();
        let plan = |(sql, values): (String, Vec<Value>)| -> String {
            let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("prepare");
            let rows = statement.query_map(params_from_iter(values), |row| row.get::<_, String>(3)).expect("explain");
            rows.collect::<Result<Vec<_>, _>>().expect("plan").join("; ")
        };
        for combination in 0u32..32 {
            let text = |bit: u32, value: &str| (combination & (1 << bit) != 0).then(|| value.to_owned());
            let filters = EventFilters {
                event_type: text(0, "T"),
                method: text(1, "GET"),
                status: (combination & 4 != 0).then_some(200),
                user_id: text(3, "even"),
                user_email: text(4, "even"),
                ..EventFilters::default()
            };
            let counted = plan(events_sql(&filters, BucketWidth::Hour, BASE_MS + 1, BASE_MS + HOUR_MS));
            let index = match (&filters.user_id, &filters.user_email) {
                (None, None) => "events_by_timestamp (timestamp_ms>? AND timestamp_ms<?)",
                (Some(_), None) => "events_by_user_id_time (user_id=? AND timestamp_ms>? AND timestamp_ms<?)",
                (None, Some(_)) => "events_by_user_email_time (user_email=? AND timestamp_ms>? AND timestamp_ms<?)",
                (Some(_), Some(_)) => "_time (user_",
            };
            // Both users, or a user and a type: the other column from those rows only.
            let both_users = filters.user_id.is_some() && filters.user_email.is_some();
            let user_and_type =
                (filters.user_id.is_some() || filters.user_email.is_some()) && filters.event_type.is_some();
            let covering = !both_users && !user_and_type;
            let reads = if covering { "USING COVERING INDEX events_by_" } else { "USING INDEX events_by_" };
            assert!(counted.contains(reads) && counted.contains(index), "{filters:?}: {counted}");
            if filters.user_id.is_none() && filters.user_email.is_none() {
                let rollup = plan(rollup_sql(&filters, BucketWidth::Day, 1, 2));
                assert!(rollup.contains("SEARCH activity_hourly USING PRIMARY KEY (hour>? AND hour<?)"), "{rollup}");
            }
        }
    }
}
