//! Activity over time on SQLite: events per hour or per day (UTC), split by outcome, for the
//! viewer's chart (`GET /audit/activity`). [`activity`] is the one query function; the shared
//! [`WindowPlan`] says which part of a window comes from where.
//!
//! Counting rows at query time would cost a scan of every event in the window (10M events,
//! seconds). So whole hours of a window are summed from the hourly rollups
//! ([`super::activity_rollup`]), which hold a few hundred rows per hour whatever the traffic:
//! `activity_hourly`, or for a chart of one user (`userUuid` or `user_email`)
//! `activity_user_hourly`, one key prefix per hour of the window. The partial hours at the
//! edges of `since`/`until` are summed from the minute rollup (`activity_minutely`, at most
//! 59 minutes of rows each), and only the partial minutes left at the ends are counted from
//! `events_by_timestamp`, which carries type, method and status, so they are counted from
//! the index alone and the counts are exact for any window. A user's edges take their seq
//! range from that index (split into runs when events stored far apart fall in one edge)
//! and then the user's events in it from `(user_id, seq)` or `(user_email, seq)`, so they
//! read that user's rows of at most two hours (no per-user
//! minute rollup: it would cost the writer an upsert per user and minute of each batch). The
//! user name, or both user filters at once, are not in a rollup: those charts are counted
//! from that user's events (`schema.sql` says what each costs).

use std::collections::BTreeMap;

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection};

use super::super::activity_plan::{
    outcome_of, whole_units, ActivityOutcome, BucketWidth, OutcomeCounts, WindowPlan, HOUR_MS, MINUTE_MS,
};
use super::super::query::EventFilters;
use super::super::StoreError;
use super::activity_rollup::{BY_USER_EMAIL, BY_USER_ID};

/// The outcome sums of a `SELECT` whose rows have a `status` and a count (`n`); a missing
/// status is -1 in the rollup and NULL in `events`, both errors.
const OUTCOME_SUMS: &str = "sum(CASE WHEN status BETWEEN 100 AND 399 THEN n ELSE 0 END),
     sum(CASE WHEN status = 401 THEN n ELSE 0 END),
     sum(CASE WHEN status = 403 THEN n ELSE 0 END),
     sum(n)";

/// The seq range of the events of `[?1, ?2)` and how many there are, from the timestamp
/// index alone (its entries carry the rowid): where a user's events of a window's edge lie.
const SEQ_RANGE_OF_WINDOW_SQL: &str = "SELECT min(seq), max(seq), count(*) FROM events INDEXED BY events_by_timestamp
     WHERE timestamp_ms >= ?1 AND timestamp_ms < ?2";

/// Every seq of the events of `[?1, ?2)`, from the same index: read only when the range
/// above is far wider than its events.
const SEQS_OF_WINDOW_SQL: &str =
    "SELECT seq FROM events INDEXED BY events_by_timestamp WHERE timestamp_ms >= ?1 AND timestamp_ms < ?2";

/// How many seqs of other times a user's edge may span before its seq range is split into
/// runs: events stored far apart in seq but stamped in one edge (a batch delivered hours
/// late) would otherwise make the edge read that user's rows of everything stored between
/// them (at 10M, 710 ms for one user's window whose edges spanned 9M seqs).
const EDGE_SEQ_SLACK: i64 = 10_000;

/// The most seqs an edge's split reads into memory (8 bytes each): an edge holding more keeps
/// its one seq range (slower, bounded memory).
const EDGE_SEQS_READ_AT_MOST: i64 = 1_000_000;

/// The hours the per-user rollup holds: `[first, last]`, each found at an end of its key.
const USER_ROLLUP_HOURS_SQL: &str =
    "SELECT (SELECT min(hour) FROM activity_user_hourly), (SELECT max(hour) FROM activity_user_hourly)";

/// The one user filter a chart can be summed for from `activity_user_hourly`: its kind, the
/// column of `events` it matches, and the value.
#[derive(Debug, Clone, Copy)]
struct RolledUpUser<'a> {
    kind: i64,
    column: &'static str,
    value: &'a str,
}

impl<'a> RolledUpUser<'a> {
    /// `Some` when the filters name exactly one of `user_id`, `user_email` and no user name
    /// (the cases [`WindowPlan::with_user_rollup`] sums from the rollup).
    fn of(filters: &'a EventFilters) -> Option<RolledUpUser<'a>> {
        match (&filters.user_id, &filters.user_email, &filters.user_name) {
            (Some(id), None, None) => Some(RolledUpUser { kind: BY_USER_ID, column: "user_id", value: id }),
            (None, Some(email), None) => Some(RolledUpUser { kind: BY_USER_EMAIL, column: "user_email", value: email }),
            _ => None,
        }
    }
}

/// Events per bucket of `width` for the events `filters` selects, every part of the window
/// (rollup hours, minutes, edges) read in one read transaction: one moment of the trail, so a
/// batch committed meanwhile is counted in all of them or in none.
pub fn activity(conn: &Connection, filters: &EventFilters, width: BucketWidth) -> Result<ActivityOutcome, StoreError> {
    let read = conn.unchecked_transaction()?;
    let outcome = counted_activity(&read, filters, width, EDGE_SEQ_SLACK)?;
    read.finish()?;
    Ok(outcome)
}

/// [`activity`], a user's edges split into seq runs at gaps wider than `slack`.
fn counted_activity(
    conn: &Connection,
    filters: &EventFilters,
    width: BucketWidth,
    slack: i64,
) -> Result<ActivityOutcome, StoreError> {
    let plan = WindowPlan::with_user_rollup(filters);
    let user = RolledUpUser::of(filters);
    let mut buckets: BTreeMap<i64, OutcomeCounts> = BTreeMap::new();
    if let Some((first_hour, last_hour)) = plan.rollup_hours {
        match user {
            None => collect(conn, rollup_sql(filters, width, first_hour, last_hour), &mut buckets)?,
            Some(user) => {
                // Only the hours the rollup holds: an open window would be millions of seeks.
                let held: (Option<i64>, Option<i64>) =
                    conn.prepare_cached(USER_ROLLUP_HOURS_SQL)?.query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
                if let (Some(oldest), Some(newest)) = held {
                    let (first, last) = (first_hour.max(oldest), last_hour.min(newest.saturating_add(1)));
                    if first < last {
                        collect(conn, user_rollup_sql(filters, width, user, first, last), &mut buckets)?;
                    }
                }
            }
        }
    }
    let any_user = filters.user_id.is_some() || filters.user_email.is_some() || filters.user_name.is_some();
    for (since, until) in plan.counted {
        match user {
            // A partial hour: its whole minutes from the minute rollup, and only what is left
            // (under a minute at each end) counted from `events`.
            None if !any_user => {
                let minutes = whole_units(since, until, MINUTE_MS);
                if let Some((first_minute, last_minute)) = minutes.whole {
                    collect(conn, minute_rollup_sql(filters, width, first_minute, last_minute), &mut buckets)?;
                }
                for (since, until) in minutes.rest {
                    collect(conn, events_sql(filters, width, since, until), &mut buckets)?;
                }
            }
            None => collect(conn, events_sql(filters, width, since, until), &mut buckets)?,
            Some(user) => {
                for seqs in edge_seq_runs(conn, (since, until), slack)? {
                    collect(conn, user_edge_sql(filters, width, user, (since, until), seqs), &mut buckets)?;
                }
            }
        }
    }
    Ok(outcome_of(buckets, width))
}

/// The seq ranges `[first, last]` that hold the events of `[since, until)`: one, unless it
/// would span more than `slack` seqs of other times; then the runs of their sorted seqs, split
/// at every gap wider than `slack` (read from the index: one seq per event of the edge, at
/// most [`EDGE_SEQS_READ_AT_MOST`] of them).
fn edge_seq_runs(conn: &Connection, (since, until): (i64, i64), slack: i64) -> Result<Vec<(i64, i64)>, StoreError> {
    let (first, last, count): (Option<i64>, Option<i64>, i64) = conn
        .prepare_cached(SEQ_RANGE_OF_WINDOW_SQL)?
        .query_row(params![since, until], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    let (Some(first), Some(last)) = (first, last) else {
        return Ok(Vec::new());
    };
    if last - first + 1 - count <= slack || count > EDGE_SEQS_READ_AT_MOST {
        return Ok(vec![(first, last)]);
    }
    let mut select = conn.prepare_cached(SEQS_OF_WINDOW_SQL)?;
    let mut seqs =
        select.query_map(params![since, until], |row| row.get::<_, i64>(0))?.collect::<Result<Vec<_>, _>>()?;
    seqs.sort_unstable();
    let mut runs = vec![(first, first)];
    for seq in seqs {
        match runs.last_mut() {
            Some((_, end)) if seq - *end - 1 <= slack => *end = seq,
            _ => runs.push((seq, seq)),
        }
    }
    Ok(runs)
}

/// The equality filters the rollups and `events` share, as `AND +column = ?n` clauses: the
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

/// `SELECT bucket, outcome sums` over `rows`, bucketed by `column` (hours or milliseconds)
/// in buckets of `unit` of them.
fn grouped(rows: &str, column: &str, unit: i64) -> String {
    format!(
        "SELECT ({column} - (({column} % {unit}) + {unit}) % {unit}) / {unit}, {OUTCOME_SUMS} FROM ({rows}) GROUP BY 1"
    )
}

/// The rollup's counts of hours `[first_hour, last_hour)`, per bucket: a range of its key.
fn rollup_sql(filters: &EventFilters, width: BucketWidth, first_hour: i64, last_hour: i64) -> (String, Vec<Value>) {
    let mut values = vec![Value::Integer(first_hour), Value::Integer(last_hour)];
    let mut sql = String::from("SELECT hour, status, events AS n FROM activity_hourly WHERE hour >= ?1 AND hour < ?2");
    equality_clauses(filters, &mut sql, &mut values);
    (grouped(&sql, "hour", width.hours()), values)
}

/// The minute rollup's counts of minutes `[first_minute, last_minute)`, per bucket: a range
/// of its key (at most two hours of minutes: a window's partial hours).
fn minute_rollup_sql(
    filters: &EventFilters,
    width: BucketWidth,
    first_minute: i64,
    last_minute: i64,
) -> (String, Vec<Value>) {
    let mut values = vec![Value::Integer(first_minute), Value::Integer(last_minute)];
    let mut sql =
        String::from("SELECT minute, status, events AS n FROM activity_minutely WHERE minute >= ?1 AND minute < ?2");
    equality_clauses(filters, &mut sql, &mut values);
    (grouped(&sql, "minute", width.hours() * HOUR_MS / MINUTE_MS), values)
}

/// One user's counts of hours `[first_hour, last_hour)` from the per-user rollup, per
/// bucket: each hour of the range is one search of its key (hour, kind, user), so the cost
/// follows the window's hours and that user's rows in them, never the other users'.
fn user_rollup_sql(
    filters: &EventFilters,
    width: BucketWidth,
    user: RolledUpUser<'_>,
    first_hour: i64,
    last_hour: i64,
) -> (String, Vec<Value>) {
    let mut values = vec![
        Value::Integer(first_hour),
        Value::Integer(last_hour),
        Value::Integer(user.kind),
        Value::Text(user.value.to_owned()),
    ];
    let mut sql = String::from(
        "WITH RECURSIVE hours (at) AS (SELECT ?1 UNION ALL SELECT at + 1 FROM hours WHERE at + 1 < ?2)
         SELECT hour, status, events AS n FROM hours CROSS JOIN activity_user_hourly
         WHERE hour = at AND kind = ?3 AND user = ?4",
    );
    equality_clauses(filters, &mut sql, &mut values);
    (grouped(&sql, "hour", width.hours()), values)
}

/// The counts of the events of `[since, until)` that `filters` selects, per bucket, read
/// from an index by time (the test below holds every filter combination to it): one that
/// covers the counted columns, or with the user name, or both user filters, that user's
/// events found by a `(column, seq)` index and their rows read.
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
    if let Some(name) = &filters.user_name {
        push("user_name =", Value::Text(name.clone()));
    }
    (grouped(&sql, "timestamp_ms", width.hours() * HOUR_MS), values)
}

/// One user's counts of the events of `[since, until)` (an edge of a window, under an hour,
/// or a window under two), per bucket: that user's events between `seqs` (the window's seq
/// range) through the user's `(column, seq)` index, their rows read for the time and status.
fn user_edge_sql(
    filters: &EventFilters,
    width: BucketWidth,
    user: RolledUpUser<'_>,
    (since, until): (i64, i64),
    (first_seq, last_seq): (i64, i64),
) -> (String, Vec<Value>) {
    let mut values = vec![
        Value::Integer(since),
        Value::Integer(until),
        Value::Text(user.value.to_owned()),
        Value::Integer(first_seq),
        Value::Integer(last_seq),
    ];
    let mut sql = format!(
        "SELECT timestamp_ms, status, 1 AS n FROM events
         WHERE {} = ?3 AND seq BETWEEN ?4 AND ?5 AND +timestamp_ms >= ?1 AND +timestamp_ms < ?2",
        user.column
    );
    equality_clauses(filters, &mut sql, &mut values);
    (grouped(&sql, "timestamp_ms", width.hours() * HOUR_MS), values)
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

    /// (seconds after the epoch's hour 1000, type, method, status): some on a whole minute,
    /// some inside one, so a window's partial minutes hold events too.
    const EVENTS: &[(i64, &str, &str, Option<i64>)] = &[
        (0, "T", "GET", Some(200)),
        (10 * 60 + 30, "T", "GET", Some(401)),
        (59 * 60 + 59, "U", "PUT", Some(403)),
        (60 * 60, "T", "GET", Some(500)),
        (61 * 60 + 20, "T", "POST", Some(201)),
        (90 * 60 + 45, "U", "GET", None),
        ((24 * 60 + 5) * 60, "T", "GET", Some(0)),
        ((24 * 60 + 6) * 60 + 1, "T", "DELETE", Some(404)),
        // Stored last but stamped in the first hour (delivered late): that hour's seqs are
        // two runs.
        (5 * 60 + 5, "U", "GET", Some(200)),
    ];

    const BASE_MS: i64 = 1000 * 24 * HOUR_MS;

    fn trail() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = open_for_writing(&dir.path().join("audit.db")).expect("open");
        for (n, (second, event_type, method, status)) in EVENTS.iter().enumerate() {
            let user = if n % 2 == 0 { "even" } else { "odd" };
            conn.execute(
                "INSERT INTO events (uuid, timestamp_ms, type, method, status, user_id, user_email, ingested_at_ms, body)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 0, '{}')",
                params![format!("uuid-{n}"), BASE_MS + second * 1000, event_type, method, status, user],
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
        for (n, (second, event_type, method, status)) in EVENTS.iter().enumerate() {
            let at = BASE_MS + second * 1000;
            let user = if n % 2 == 0 { "even" } else { "odd" };
            let keep = filters.since_ms.is_none_or(|since| at >= since)
                && filters.until_ms.is_none_or(|until| at < until)
                && filters.event_type.as_deref().is_none_or(|wanted| wanted == *event_type)
                && filters.method.as_deref().is_none_or(|wanted| wanted == *method)
                && filters.status.is_none_or(|wanted| Some(i64::from(wanted)) == *status)
                && filters.user_id.as_deref().is_none_or(|wanted| wanted == user)
                && filters.user_email.as_deref().is_none_or(|wanted| wanted == user);
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
        buckets_with_slack(conn, filters, width, EDGE_SEQ_SLACK)
    }

    fn buckets_with_slack(
        conn: &Connection,
        filters: &EventFilters,
        width: BucketWidth,
        slack: i64,
    ) -> Vec<ActivityBucket> {
        match counted_activity(conn, filters, width, slack).expect("query") {
            ActivityOutcome::Buckets(buckets) => buckets,
            ActivityOutcome::TooManyBuckets => panic!("too many buckets"),
        }
    }

    #[test]
    fn counts_match_counting_every_event_for_any_window_and_filter() {
        let (_dir, conn) = trail();
        let minute = |m: i64| Some(BASE_MS + m * 60_000);
        let second = |s: i64| Some(BASE_MS + s * 1000);
        let windows = [
            (None, None),
            (minute(5), None),
            (None, minute(61)),
            (minute(10), minute(24 * 60 + 6)),
            (minute(60), minute(120)),
            // Partial minutes holding events at both ends, the minutes between them crossing an
            // hour (no whole hour in the window).
            (second(10 * 60 + 15), second(61 * 60 + 30)),
            // A whole hour, partial hours and partial minutes on both sides.
            (second(10 * 60 + 30), second((24 * 60 + 6) * 60 + 2)),
            (second(59 * 60 + 59), second(90 * 60 + 46)),
            // Inside one minute; across one minute's end without a whole minute.
            (second(10 * 60 + 29), second(10 * 60 + 31)),
            (second(59 * 60 + 58), second(60 * 60 + 1)),
            (None, second(61 * 60 + 21)),
            (second(90 * 60 + 45), None),
        ];
        let selections = [
            EventFilters::default(),
            EventFilters { event_type: Some("T".into()), ..EventFilters::default() },
            EventFilters { method: Some("GET".into()), status: Some(401), ..EventFilters::default() },
            EventFilters { user_id: Some("even".into()), ..EventFilters::default() },
            EventFilters { user_email: Some("odd".into()), status: Some(403), ..EventFilters::default() },
            EventFilters { user_id: Some("odd".into()), event_type: Some("U".into()), ..EventFilters::default() },
            EventFilters { user_id: Some("even".into()), user_email: Some("even".into()), ..EventFilters::default() },
        ];
        for (since_ms, until_ms) in windows {
            for selection in &selections {
                let filters = EventFilters { since_ms, until_ms, ..selection.clone() };
                // Slack 0: a user's edge split into seq runs at every gap.
                for (width, slack) in
                    [(BucketWidth::Hour, EDGE_SEQ_SLACK), (BucketWidth::Day, EDGE_SEQ_SLACK), (BucketWidth::Hour, 0)]
                {
                    assert_eq!(
                        buckets_with_slack(&conn, &filters, width, slack),
                        counted_one_by_one(&filters, width),
                        "{filters:?} by {width:?}, slack {slack}"
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
        assert_eq!(first.counts, OutcomeCounts { success: 2, failed_login: 1, forbidden: 1, error: 0 });
        conn.execute_batch(
            "UPDATE purge_guard SET purging = 1; DELETE FROM events WHERE uuid IN ('uuid-0', 'uuid-1');
             UPDATE purge_guard SET purging = 0;",
        )
        .expect("purge two");
        let left = OutcomeCounts { success: 1, forbidden: 1, ..OutcomeCounts::default() };
        let first = buckets(&conn, &EventFilters::default(), BucketWidth::Hour)[0];
        assert_eq!(first.counts, left);
        // The same hour from the minute rollup (a window starting inside the hour).
        let unaligned = EventFilters { since_ms: Some(BASE_MS + 5_000), ..EventFilters::default() };
        let first = buckets(&conn, &unaligned, BucketWidth::Hour)[0];
        assert_eq!(first.counts, left);
        // The per-user rollup lost the same two events: it equals one rebuilt from what is left.
        let per_user = |conn: &Connection| -> Vec<(i64, i64, String, i64)> {
            let mut select = conn
                .prepare(
                    "SELECT hour, kind, user, events FROM activity_user_hourly WHERE events > 0 ORDER BY 1, 2, 3, 4",
                )
                .expect("prepare");
            let rows = select.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)));
            rows.expect("query").collect::<Result<_, _>>().expect("rows")
        };
        let after_purge = per_user(&conn);
        conn.execute_batch(REBUILD_ACTIVITY_SQL).expect("rebuild");
        assert_eq!(after_purge, per_user(&conn));
        let even = EventFilters { user_id: Some("even".into()), ..EventFilters::default() };
        assert_eq!(buckets(&conn, &even, BucketWidth::Hour)[0].counts, left);
    }

    #[test]
    fn the_writer_counts_each_stored_event_once_and_no_duplicate() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = open_for_writing(&dir.path().join("audit.db")).expect("open");
        let mut events: Vec<NewEvent> = EVENTS
            .iter()
            .enumerate()
            .map(|(n, (second, event_type, method, status))| NewEvent {
                event_type: (*event_type).to_owned(),
                method: (*method).to_owned(),
                status: status.and_then(|status| u16::try_from(status).ok()),
                user_id: Some(if n % 2 == 0 { "even" } else { "odd" }.to_owned()),
                user_email: (n % 3 != 0).then(|| format!("user{n}@example.com")),
                ..new_event(n, BASE_MS + second * 1000)
            })
            .collect();
        let mut tx = conn.transaction().expect("begin");
        insert_batch(&mut tx, &events, 0).expect("first batch");
        events.push(new_event(99, BASE_MS));
        insert_batch(&mut tx, &events, 0).expect("the same again, and one more");
        tx.commit().expect("commit");
        let rollups = |conn: &Connection| -> Vec<String> {
            let mut rows = Vec::new();
            for sql in [
                "SELECT * FROM activity_hourly ORDER BY 1, 2, 3, 4",
                "SELECT * FROM activity_minutely ORDER BY 1, 2, 3, 4",
                "SELECT * FROM activity_user_hourly ORDER BY 1, 2, 3, 4, 5, 6",
            ] {
                let mut select = conn.prepare(sql).expect("prepare");
                let columns = select.column_count();
                let found = select
                    .query_map([], |row| {
                        (0..columns)
                            .map(|i| row.get::<_, Value>(i).map(|v| format!("{v:?}")))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .expect("query");
                rows.extend(found.map(|row| row.expect("row").join(",")));
            }
            rows
        };
        let counted = rollups(&conn);
        conn.execute_batch(REBUILD_ACTIVITY_SQL).expect("rebuild");
        assert_eq!(counted, rollups(&conn), "the writer's counts are the events' counts");
        let total: i64 = conn.query_row("SELECT sum(events) FROM activity_hourly", [], |r| r.get(0)).expect("sum");
        let per_user: i64 =
            conn.query_row("SELECT sum(events) FROM activity_user_hourly", [], |r| r.get(0)).expect("sum");
        assert_eq!((total, per_user), (10, 9 + 6), "each event once, and once per user column it has");
    }

    /// Commits, through `writer`, one event in the window's first whole hour and one in the
    /// minutes of its partial last hour, with the rollups counting them, in one transaction.
    fn write_a_late_batch(writer: &mut Connection) {
        let tx = writer.transaction().expect("begin");
        for (n, at) in [BASE_MS + 3 * MINUTE_MS, BASE_MS + 24 * HOUR_MS + 1000].into_iter().enumerate() {
            tx.execute(
                "INSERT INTO events (uuid, timestamp_ms, type, method, status, ingested_at_ms, body)
                 VALUES (?1, ?2, 'T', 'GET', 200, 0, '{}')",
                params![format!("late-{n}"), at],
            )
            .expect("insert");
        }
        tx.execute_batch(REBUILD_ACTIVITY_SQL).expect("rollups");
        tx.commit().expect("commit");
    }

    #[test]
    fn a_chart_counts_one_moment_of_the_trail_even_when_a_batch_commits_between_its_statements() {
        let (dir, conn) = trail();
        let path = dir.path().join("audit.db");
        // Whole hours from the hourly rollup, then the partial last hour's minutes.
        let window = EventFilters {
            since_ms: Some(BASE_MS),
            until_ms: Some(BASE_MS + 24 * HOUR_MS + 30 * MINUTE_MS),
            ..EventFilters::default()
        };
        let before = buckets(&conn, &window, BucketWidth::Day);
        let mut reader = crate::store::sqlite::schema::open_for_reading(&path).expect("reader");
        // When the minute-rollup statement starts (the hourly rollup's statement has read),
        // another connection commits the batch.
        let writer = std::sync::Arc::new(std::sync::Mutex::new((conn, false)));
        let trigger = std::sync::Arc::clone(&writer);
        let on_statement = move |event: rusqlite::trace::TraceEvent<'_>| {
            if let rusqlite::trace::TraceEvent::Stmt(_, sql) = event {
                if sql.contains("FROM activity_minutely") {
                    let mut writer = trigger.lock().expect("lock");
                    let (conn, written) = &mut *writer;
                    if !*written {
                        write_a_late_batch(conn);
                        *written = true;
                    }
                }
            }
        };
        reader.trace_v2(rusqlite::trace::TraceEventCodes::SQLITE_TRACE_STMT, Some(on_statement)).expect("trace");
        let charted = match activity(&reader, &window, BucketWidth::Day).expect("chart") {
            ActivityOutcome::Buckets(buckets) => buckets,
            ActivityOutcome::TooManyBuckets => panic!("too many buckets"),
        };
        drop(reader);
        let (conn, written) = &*writer.lock().expect("lock");
        assert!(written, "the batch was committed while the chart was read");
        let after = buckets(conn, &window, BucketWidth::Day);
        assert_ne!(before, after, "the batch is in the window");
        assert_eq!(charted, before, "the chart is the trail before the batch, in every part");
    }

    /// Every filter combination: a rollup by its key, `events` through an index that holds
    /// every column counted, or for one user that user's `(column, seq)` index within the
    /// edge's seq range; never a scan of `events`.
    #[test]
    fn whole_hours_come_from_a_rollup_by_its_key_and_counts_from_indexes() {
        let (_dir, conn) = trail();
        let plan = |(sql, values): (String, Vec<Value>)| -> String {
            let mut statement = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("prepare");
            let rows = statement.query_map(params_from_iter(values), |row| row.get::<_, String>(3)).expect("explain");
            rows.collect::<Result<Vec<_>, _>>().expect("plan").join("; ")
        };
        for sql in [SEQ_RANGE_OF_WINDOW_SQL, SEQS_OF_WINDOW_SQL] {
            let seqs = plan((sql.to_owned(), vec![Value::Integer(0), Value::Integer(1)]));
            assert!(
                seqs.contains("USING COVERING INDEX events_by_timestamp (timestamp_ms>? AND timestamp_ms<?)"),
                "{seqs}"
            );
        }
        let held = plan((USER_ROLLUP_HOURS_SQL.to_owned(), Vec::new()));
        assert!(!held.contains("SCAN activity_user_hourly"), "{held}");
        for combination in 0u32..64 {
            let text = |bit: u32, value: &str| (combination & (1 << bit) != 0).then(|| value.to_owned());
            let filters = EventFilters {
                event_type: text(0, "T"),
                method: text(1, "GET"),
                status: (combination & 4 != 0).then_some(200),
                user_id: text(3, "even"),
                user_email: text(4, "even"),
                user_name: text(5, "even"),
                ..EventFilters::default()
            };
            let edge = (BASE_MS + 1, BASE_MS + HOUR_MS);
            match RolledUpUser::of(&filters) {
                Some(user) => {
                    let counted = plan(user_edge_sql(&filters, BucketWidth::Hour, user, edge, (1, 9)));
                    let index = format!("USING INDEX events_by_{0} ({0}=? AND seq>? AND seq<?)", user.column);
                    assert!(counted.contains(&index), "{filters:?}: {counted}");
                    let rollup = plan(user_rollup_sql(&filters, BucketWidth::Day, user, 1, 2));
                    let key = "SEARCH activity_user_hourly USING PRIMARY KEY (hour=? AND kind=? AND user=?)";
                    assert!(rollup.contains(key), "{filters:?}: {rollup}");
                }
                None if filters.user_id.is_none() && filters.user_email.is_none() && filters.user_name.is_none() => {
                    let counted = plan(events_sql(&filters, BucketWidth::Hour, edge.0, edge.1));
                    let index = "USING COVERING INDEX events_by_timestamp (timestamp_ms>? AND timestamp_ms<?)";
                    assert!(counted.contains(index), "{filters:?}: {counted}");
                    let rollup = plan(rollup_sql(&filters, BucketWidth::Day, 1, 2));
                    assert!(
                        rollup.contains("SEARCH activity_hourly USING PRIMARY KEY (hour>? AND hour<?)"),
                        "{rollup}"
                    );
                    let minutes = plan(minute_rollup_sql(&filters, BucketWidth::Hour, 1, 2));
                    assert!(
                        minutes.contains("SEARCH activity_minutely USING PRIMARY KEY (minute>? AND minute<?)"),
                        "{minutes}"
                    );
                }
                None => {
                    // The user name, or both user filters: that user's events by an index.
                    let counted = plan(events_sql(&filters, BucketWidth::Hour, edge.0, edge.1));
                    assert!(counted.contains("SEARCH events USING INDEX events_by_user_"), "{filters:?}: {counted}");
                }
            }
        }
    }
}
