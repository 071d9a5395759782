//! The chart's hourly rollup on SQLite, `activity_hourly`: one row per (hour, type, method,
//! status) with its event count, so whole hours of a window are summed from a few hundred
//! rows per hour whatever the traffic ([`super::activity`] reads it). The writer adds each
//! batch's events in the transaction that stores them ([`count_stored`]: one upsert per
//! distinct key of the batch, not one per event; a per-row trigger did the same at half the
//! insert rate), and a trigger takes purged events back out (the purge is off the ingest
//! path; the table and that trigger are in `schema.sql`). Also here: the rebuild the bench's
//! trail generator runs.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::super::activity_plan::HOUR_MS;
use super::super::new_event::NewEvent;
use super::super::StoreError;

/// Rebuilds the rollup from the stored events, for tools that fill `events` themselves
/// (the bench's trail generator).
pub const REBUILD_ACTIVITY_SQL: &str = "
    DELETE FROM activity_hourly;
    INSERT INTO activity_hourly (hour, type, method, status, events)
        SELECT timestamp_ms / 3600000, type, method, IFNULL(status, -1), count(*)
        FROM events GROUP BY 1, 2, 3, 4;";

/// Adds `stored` (events the batch inserted, duplicates left out) to the rollup, in the
/// caller's transaction. The hour is `timestamp_ms / HOUR_MS` truncated, as the rebuild and the
/// purge trigger compute it.
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
