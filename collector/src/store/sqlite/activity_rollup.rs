//! The chart's rollups on SQLite: `activity_hourly`, one row per (hour, type, method,
//! status) with its event count, so whole hours of a window are summed from a few hundred
//! rows per hour whatever the traffic; `activity_minutely`, the same per minute, so the
//! partial hours at a window's edges are summed from at most 59 minutes of rows each and only
//! the partial minutes are counted from `events`; and `activity_user_hourly`, the hourly
//! counts per user (by `user_id` and by `user_email`) for a chart of one user
//! ([`super::activity`] reads all three).
//! The writer adds each batch's events in the transaction that stores them
//! ([`count_stored`]: one upsert per distinct key of the batch, not one per event; a per-row
//! trigger did the same at half the insert rate), and triggers take purged events back out
//! (the purge is off the ingest path; the tables and the triggers are in `schema.sql`). Also
//! here: the rebuild the bench's trail generator and the upgrades to versions 16 and 17 run.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{params, Connection};

use super::super::activity_plan::{HOUR_MS, MINUTE_MS};
use super::super::new_event::NewEvent;
use super::super::StoreError;

/// `activity_user_hourly.kind` of the counts by `user_id` (the `userUuid` filter).
pub const BY_USER_ID: i64 = 1;
/// `activity_user_hourly.kind` of the counts by `user_email`.
pub const BY_USER_EMAIL: i64 = 2;

/// The SQL that fills the per-user rollup from the stored events: one grouped pass over
/// `events` per kind (a literal, so [`REBUILD_ACTIVITY_SQL`] is built from the same text).
macro_rules! fill_user_activity_sql {
    () => {
        "INSERT INTO activity_user_hourly (hour, kind, user, type, method, status, events)
            SELECT timestamp_ms / 3600000, 1, user_id, type, method, IFNULL(status, -1), count(*)
            FROM events WHERE user_id IS NOT NULL GROUP BY 1, 3, 4, 5, 6;
        INSERT INTO activity_user_hourly (hour, kind, user, type, method, status, events)
            SELECT timestamp_ms / 3600000, 2, user_email, type, method, IFNULL(status, -1), count(*)
            FROM events WHERE user_email IS NOT NULL GROUP BY 1, 3, 4, 5, 6;"
    };
}

/// Fills the empty per-user rollup from the stored events (the upgrade to version 16 runs it
/// once over the whole trail).
pub const FILL_USER_ACTIVITY_SQL: &str = fill_user_activity_sql!();

/// The SQL that fills the minute rollup from the stored events: one grouped pass over the
/// timestamp index (a literal, so [`REBUILD_ACTIVITY_SQL`] is built from the same text).
macro_rules! fill_minute_activity_sql {
    () => {
        "INSERT INTO activity_minutely (minute, type, method, status, events)
            SELECT timestamp_ms / 60000, type, method, IFNULL(status, -1), count(*)
            FROM events GROUP BY 1, 2, 3, 4;"
    };
}

/// Fills the empty minute rollup from the stored events (the upgrade to version 17 runs it
/// once over the whole trail).
pub const FILL_MINUTE_ACTIVITY_SQL: &str = fill_minute_activity_sql!();

/// Rebuilds every rollup from the stored events, for tools that fill `events` themselves
/// (the bench's trail generator).
pub const REBUILD_ACTIVITY_SQL: &str = concat!(
    "DELETE FROM activity_hourly;
    INSERT INTO activity_hourly (hour, type, method, status, events)
        SELECT timestamp_ms / 3600000, type, method, IFNULL(status, -1), count(*)
        FROM events GROUP BY 1, 2, 3, 4;
    DELETE FROM activity_minutely;",
    fill_minute_activity_sql!(),
    "DELETE FROM activity_user_hourly;",
    fill_user_activity_sql!()
);

/// One rollup row's key without the user: (hour or minute, type, method, status).
type Key<'a> = (i64, &'a str, &'a str, i64);

/// Adds `stored` (events the batch inserted, duplicates left out) to every rollup, in the
/// caller's transaction. The hour is `timestamp_ms / HOUR_MS` truncated and the minute
/// `timestamp_ms / MINUTE_MS`, as the rebuild and the purge triggers compute them. A batch
/// arrives within a second or so of its events, so its minutes are about as few as its
/// hours: the minute rollup costs about what the hourly one does, a few upserts a batch.
pub fn count_stored<'a>(conn: &Connection, stored: impl Iterator<Item = &'a NewEvent>) -> Result<(), StoreError> {
    let mut tally: HashMap<Key<'a>, i64> = HashMap::new();
    let mut by_minute: HashMap<Key<'a>, i64> = HashMap::new();
    // In the per-user rollup's key order, so its upserts walk its pages once, in order.
    let mut by_user: BTreeMap<(i64, i64, &'a str, &'a str, &'a str, i64), i64> = BTreeMap::new();
    for event in stored {
        let key = (
            event.timestamp_ms / HOUR_MS,
            event.event_type.as_str(),
            event.method.as_str(),
            event.status.map_or(-1, i64::from),
        );
        *tally.entry(key).or_default() += 1;
        let (hour, event_type, method, status) = key;
        *by_minute.entry((event.timestamp_ms / MINUTE_MS, event_type, method, status)).or_default() += 1;
        if let Some(user_id) = &event.user_id {
            *by_user.entry((hour, BY_USER_ID, user_id.as_str(), event_type, method, status)).or_default() += 1;
        }
        if let Some(email) = &event.user_email {
            *by_user.entry((hour, BY_USER_EMAIL, email.as_str(), event_type, method, status)).or_default() += 1;
        }
    }
    let mut upsert = conn.prepare_cached(
        "INSERT INTO activity_hourly (hour, type, method, status, events) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (hour, type, method, status) DO UPDATE SET events = events + excluded.events",
    )?;
    for ((hour, event_type, method, status), count) in tally {
        upsert.execute(params![hour, event_type, method, status, count])?;
    }
    let mut upsert = conn.prepare_cached(
        "INSERT INTO activity_minutely (minute, type, method, status, events) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (minute, type, method, status) DO UPDATE SET events = events + excluded.events",
    )?;
    for ((minute, event_type, method, status), count) in by_minute {
        upsert.execute(params![minute, event_type, method, status, count])?;
    }
    let mut upsert = conn.prepare_cached(
        "INSERT INTO activity_user_hourly (hour, kind, user, type, method, status, events)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (hour, kind, user, type, method, status) DO UPDATE SET events = events + excluded.events",
    )?;
    for ((hour, kind, user, event_type, method, status), count) in by_user {
        upsert.execute(params![hour, kind, user, event_type, method, status, count])?;
    }
    Ok(())
}
