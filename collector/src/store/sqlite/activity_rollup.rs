//! The chart's hourly rollup on SQLite, `activity_hourly`: one row per (hour, type, method,
//! status) with its event count, so whole hours of a window are summed from a few hundred
//! rows per hour whatever the traffic ([`super::activity`] reads it). The writer adds each
//! batch's events in the transaction that stores them ([`count_stored`]: one upsert per
//! distinct key of the batch, not one per event; a per-row trigger did the same at half the
//! insert rate), and a trigger takes purged events back out (the purge is off the ingest
//! path). Also here: the migrations that made the rollup and its covering indexes, and the
//! rebuild the bench's trail generator runs.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::super::activity_plan::HOUR_MS;
use super::super::new_event::NewEvent;
use super::super::StoreError;

/// The schema migration that adds the rollup, fills it from the events already stored, and
/// keeps it in step with every insert and every retention delete.
pub const ACTIVITY_MIGRATION: &str = "
    CREATE TABLE activity_hourly (
        hour INTEGER NOT NULL,
        type TEXT NOT NULL,
        method TEXT NOT NULL,
        status INTEGER NOT NULL,
        events INTEGER NOT NULL,
        PRIMARY KEY (hour, type, method, status)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO activity_hourly (hour, type, method, status, events)
        SELECT timestamp_ms / 3600000, type, method, IFNULL(status, -1), count(*)
        FROM events GROUP BY 1, 2, 3, 4;
    CREATE TRIGGER events_count_activity AFTER INSERT ON events BEGIN
        INSERT INTO activity_hourly (hour, type, method, status, events)
        VALUES (new.timestamp_ms / 3600000, new.type, new.method, IFNULL(new.status, -1), 1)
        ON CONFLICT (hour, type, method, status) DO UPDATE SET events = events + 1;
    END;
    CREATE TRIGGER events_uncount_activity AFTER DELETE ON events BEGIN
        UPDATE activity_hourly SET events = events - 1
        WHERE hour = old.timestamp_ms / 3600000 AND type = old.type AND method = old.method
          AND status = IFNULL(old.status, -1);
    END;";

/// Migration 9: the rollup is counted by the writer per batch ([`count_stored`]), so the
/// per-row insert trigger of [`ACTIVITY_MIGRATION`] goes; the purge's trigger stays.
pub const ACTIVITY_COUNTED_BY_WRITER_MIGRATION: &str = "DROP TRIGGER events_count_activity;";

/// Migration 10: every count `activity` takes from `events` reads an index only, never a
/// row (whose leaf holds the event's body: one random page read per event when cold).
/// - `events_by_timestamp` (retention's range, `since` pages' first seq) gains status,
///   method and type: the partial hours at a window's edges, with or without a type, method
///   or status filter. It stays one index, appended at its right edge on ingest as before,
///   with wider entries.
/// - one (user column, time) index per user filter, with the same three columns: a user's
///   chart reads that user's events of the window and nothing else. These two are new work
///   for every insert (docs/viewer.md weighs it); the `(user column, seq)` indexes stay,
///   because pages walk them in the trail's order.
pub const ACTIVITY_COVERING_INDEXES_MIGRATION: &str = "
    DROP INDEX events_by_timestamp;
    CREATE INDEX events_by_timestamp ON events (timestamp_ms, status, method, type);
    CREATE INDEX events_by_user_id_time ON events (user_id, timestamp_ms, status, method, type);
    CREATE INDEX events_by_user_email_time ON events (user_email, timestamp_ms, status, method, type);";

/// Migration 12: the `(user column, time)` indexes of migration 11 without `type`. With it
/// (tens of bytes an entry) the two indexes took the raw insert loop to about half its rate;
/// without it, about three quarters (docs/viewer.md). A user's chart filtered by type as well
/// reads the rows of that user's events in the window, still not the trail.
pub const ACTIVITY_NARROW_USER_INDEXES_MIGRATION: &str = "
    DROP INDEX events_by_user_id_time;
    DROP INDEX events_by_user_email_time;
    CREATE INDEX events_by_user_id_time ON events (user_id, timestamp_ms, status, method);
    CREATE INDEX events_by_user_email_time ON events (user_email, timestamp_ms, status, method);";

/// Rebuilds the rollup from the stored events, for tools that fill `events` themselves
/// (the bench's trail generator).
pub const REBUILD_ACTIVITY_SQL: &str = "
    DELETE FROM activity_hourly;
    INSERT INTO activity_hourly (hour, type, method, status, events)
        SELECT timestamp_ms / 3600000, type, method, IFNULL(status, -1), count(*)
        FROM events GROUP BY 1, 2, 3, 4;";

/// Adds `stored` (events the batch inserted, duplicates left out) to the rollup, in the
/// caller's transaction. The hour is `timestamp_ms / HOUR_MS` truncated, as the migration's
/// backfill and the purge trigger compute it.
pub fn count_stored<'a>(conn: &Connection, stored: impl Iterator<Item = &'a NewEvent>) -> Result<(), StoreError> {
    let mut tally: HashMap<(i64, &str, &str, i64), i64> = HashMap::new();
    for event in stored {
        let key = (
            event.timestamp_ms / HOUR_MS,
            event.event_type.as_str(),
            event.method.as_str(),
            event.status.map_or(-1, i64::from),
        );
        *tally.entry(key).or_default() += 1;
    }
    let mut upsert = conn.prepare_cached(
        "INSERT INTO activity_hourly (hour, type, method, status, events) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (hour, type, method, status) DO UPDATE SET events = events + excluded.events",
    )?;
    for ((hour, event_type, method, status), count) in tally {
        upsert.execute(params![hour, event_type, method, status, count])?;
    }
    Ok(())
}
