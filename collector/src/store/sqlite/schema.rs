//! Opening connections: the pragmas every connection needs, then the schema (`schema.sql`,
//! one file, its version kept in `PRAGMA user_version`). A database of another version is
//! refused rather than written with assumptions that may not hold, with what to do: a newer
//! one needs the newer collector, an older one (from a development build before the schema
//! was one file) is brought up to date by [`LAST_MIGRATING_BUILD`].

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::super::StoreError;
use super::activity_rollup::{FILL_MINUTE_ACTIVITY_SQL, FILL_USER_ACTIVITY_SQL};

/// How long a connection waits for a lock before it reports `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL pages (4 KiB each) after which a commit checkpoints the WAL into the database.
pub const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// The writer connection's page cache, in KiB.
pub const WRITER_CACHE_KIB: i64 = 32 * 1024;

/// The schema of a new database, all of it (`schema.sql` beside this file).
const SCHEMA: &str = include_str!("schema.sql");

/// The version [`SCHEMA`] is, kept in `PRAGMA user_version`. 13 was the version the
/// thirteen migrations of the builds before it arrived at; 14 added `user_name` as a column
/// generated from the body; 15 makes it a plain column that ingest fills; 16 counts a user's
/// chart in a rollup instead of two `(user, timestamp)` indexes; 17 adds the minute rollup
/// for the edges of a chart's window.
const SCHEMA_VERSION: i64 = 17;

/// What brings a version 16 database to 17: the minute rollup and its purge trigger (as
/// `schema.sql` has them); [`FILL_MINUTE_ACTIVITY_SQL`] then fills it from the stored events,
/// one grouped pass over the trail (time grows with the trail).
const UPGRADE_16_TO_17: &str = "CREATE TABLE activity_minutely (
        minute INTEGER NOT NULL,
        type TEXT NOT NULL,
        method TEXT NOT NULL,
        status INTEGER NOT NULL,
        events INTEGER NOT NULL,
        PRIMARY KEY (minute, type, method, status)
    ) STRICT, WITHOUT ROWID;
    CREATE TRIGGER events_uncount_minute_activity AFTER DELETE ON events BEGIN
        UPDATE activity_minutely SET events = events - 1
        WHERE minute = old.timestamp_ms / 60000 AND type = old.type AND method = old.method
          AND status = IFNULL(old.status, -1);
    END;";

/// What brings a version 15 database to 16: the two `(user, timestamp, status, method)`
/// indexes go, the per-user rollup and its purge trigger come (as `schema.sql` has them),
/// and the rollup is filled from the stored events, one grouped pass over the trail per
/// kind (time grows with the trail: a full read of `events`, as `verify` does).
const UPGRADE_15_TO_16: &str = "DROP INDEX events_by_user_id_time;
    DROP INDEX events_by_user_email_time;
    CREATE TABLE activity_user_hourly (
        hour INTEGER NOT NULL,
        kind INTEGER NOT NULL CHECK (kind IN (1, 2)),
        user TEXT NOT NULL,
        type TEXT NOT NULL,
        method TEXT NOT NULL,
        status INTEGER NOT NULL,
        events INTEGER NOT NULL,
        PRIMARY KEY (hour, kind, user, type, method, status)
    ) STRICT, WITHOUT ROWID;
    CREATE TRIGGER events_uncount_user_activity AFTER DELETE ON events BEGIN
        UPDATE activity_user_hourly SET events = events - 1
        WHERE hour = old.timestamp_ms / 3600000 AND kind = 1 AND user = old.user_id AND type = old.type
          AND method = old.method AND status = IFNULL(old.status, -1);
        UPDATE activity_user_hourly SET events = events - 1
        WHERE hour = old.timestamp_ms / 3600000 AND kind = 2 AND user = old.user_email AND type = old.type
          AND method = old.method AND status = IFNULL(old.status, -1);
    END;";

/// What brings a version 13 database to 15: GET /audit's `user_name` filter, a column
/// filled once from each stored body (an UPDATE that rewrites every row: minutes per 10M
/// events are to be expected, not measured), its index, and the trigger that keeps it
/// immutable. The UPDATE runs before the trigger exists.
const UPGRADE_13_TO_15: &str = "ALTER TABLE events ADD COLUMN user_name TEXT;
    UPDATE events SET user_name = json_extract(body, '$.user_name');
    CREATE INDEX events_by_user_name ON events (user_name, seq);
    CREATE TRIGGER events_user_name_is_immutable BEFORE UPDATE OF user_name ON events
    BEGIN SELECT RAISE(ABORT, 'audit events are immutable: the trail has no update path'); END;";

/// What brings a version 12 database (the released builds up to 2026-11-30, `make demo`'s
/// data among them) to 13: the final count a sender shutting down reports.
const UPGRADE_12_TO_13: &str = "ALTER TABLE senders ADD COLUMN final_count INTEGER;";

/// What brings a version 14 database (development builds of 2026-12-04 only) to 15: its
/// generated `user_name` and the index on it go, then the step from 13 adds the plain one.
const UPGRADE_14_TO_13: &str = "DROP INDEX events_by_user_name;
    ALTER TABLE events DROP COLUMN user_name;";

/// The last build that brings a database of an older version up to [`SCHEMA_VERSION`] and
/// links events stored before the hash chain existed; an older database is sent to it.
pub const LAST_MIGRATING_BUILD: &str = "49c9d93";

/// The schema version this binary reads and writes.
pub fn current_version() -> i64 {
    SCHEMA_VERSION
}

/// Opens (creating when missing) the database for writing: directory, pragmas, schema.
pub fn open_for_writing(path: &Path) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::CreateDirectory { path: dir.to_path_buf(), source })?;
    }
    let open_error = |source| StoreError::Open { path: path.to_path_buf(), source };
    let mut conn = Connection::open(path).map_err(open_error)?;
    // Pragmas first and outside any transaction: journal_mode and synchronous cannot
    // change inside one.
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(open_error)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NoWal { path: path.to_path_buf(), mode });
    }
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    // FULL, not WAL's usual NORMAL: with NORMAL a commit is not synced to disk until the
    // next checkpoint, so a power loss can undo transactions that already returned. The
    // filter drops its copy of a batch as soon as we answer 200, so an acknowledged event
    // must survive power loss, not only a crash of this process.
    conn.pragma_update(None, "synchronous", "FULL").map_err(open_error)?;
    conn.pragma_update(None, "foreign_keys", "ON").map_err(open_error)?;
    // Checkpoint every ~40 MB of WAL rather than SQLite's 4 MB: a checkpoint copies each
    // page once however many commits rewrote it, and the index leaves that every commit
    // touches are most of what a commit writes, so fewer checkpoints copy far less (ingest
    // +23% alone, bench/results.md). The WAL file stays bounded by this size.
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES).map_err(open_error)?;
    // A 32 MiB page cache for the one writer (SQLite's default is 2 MiB): the index pages
    // inserts land on stay cached instead of being read back from the OS after every
    // checkpoint. Readers keep the default, so memory stays bounded by connection count.
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB).map_err(open_error)?;
    prepare_schema(&mut conn, path)?;
    Ok(conn)
}

/// Opens a read-only connection to a database [`open_for_writing`] has prepared.
pub fn open_for_reading(path: &Path) -> Result<Connection, StoreError> {
    let open_error = |source| StoreError::Open { path: path.to_path_buf(), source };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(open_error)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
    Ok(conn)
}

/// Creates the schema in a new database, or checks that an existing one is at
/// [`SCHEMA_VERSION`] with every event linked; anything else is refused with what to do.
fn prepare_schema(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    // IMMEDIATE: two collectors starting on one new file must not both create the schema.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    match found {
        0 => {
            tx.execute_batch(SCHEMA)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        SCHEMA_VERSION => {}
        12..=16 => {
            let to_16: &[&str] = match found {
                12 => &[UPGRADE_12_TO_13, UPGRADE_13_TO_15, UPGRADE_15_TO_16, FILL_USER_ACTIVITY_SQL],
                13 => &[UPGRADE_13_TO_15, UPGRADE_15_TO_16, FILL_USER_ACTIVITY_SQL],
                14 => &[UPGRADE_14_TO_13, UPGRADE_13_TO_15, UPGRADE_15_TO_16, FILL_USER_ACTIVITY_SQL],
                15 => &[UPGRADE_15_TO_16, FILL_USER_ACTIVITY_SQL],
                _ => &[],
            };
            for step in to_16.iter().chain(&[UPGRADE_16_TO_17, FILL_MINUTE_ACTIVITY_SQL]) {
                tx.execute_batch(step)?;
            }
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        newer if newer > SCHEMA_VERSION => {
            return Err(StoreError::NewerSchema { path: path.to_path_buf(), found, known: SCHEMA_VERSION });
        }
        _ => {
            let (path, build) = (path.to_path_buf(), LAST_MIGRATING_BUILD);
            return Err(StoreError::OlderSchema { path, found, known: SCHEMA_VERSION, build });
        }
    }
    // Linked events form a prefix of the trail in seq order (the writer links every event
    // it stores; the builds that linked older events did so in seq order), so the newest
    // event tells whether any is unlinked.
    let newest_unlinked: bool = tx
        .query_row("SELECT chain_hash IS NULL FROM events ORDER BY seq DESC LIMIT 1", [], |row| row.get(0))
        .optional()?
        .unwrap_or(false);
    if newest_unlinked {
        return Err(StoreError::UnlinkedEvents { path: path.to_path_buf(), build: LAST_MIGRATING_BUILD });
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::write_sql::purge_batch;
    use crate::store::test_support::new_event;
    use crate::store::NewEvent;

    #[test]
    fn a_new_database_gets_wal_full_sync_and_the_current_schema() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nested/dir/audit.db");
        let conn = open_for_writing(&path).expect("opens and creates the directory");
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).expect("mode");
        let sync: i64 = conn.pragma_query_value(None, "synchronous", |r| r.get(0)).expect("sync");
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
        assert_eq!(mode, "wal");
        assert_eq!(sync, 2, "synchronous should be FULL (2)");
        let checkpoint: i64 = conn.pragma_query_value(None, "wal_autocheckpoint", |r| r.get(0)).expect("checkpoint");
        assert_eq!(checkpoint, WAL_AUTOCHECKPOINT_PAGES);
        assert_eq!(version, current_version());
    }

    #[test]
    fn reopening_does_not_migrate_twice() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.db");
        drop(open_for_writing(&path).expect("first open"));
        open_for_writing(&path).expect("second open of the same file");
    }

    #[test]
    fn a_database_from_a_newer_collector_is_refused_with_both_versions() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.db");
        let conn = open_for_writing(&path).expect("open");
        conn.pragma_update(None, "user_version", 99).expect("bump version");
        drop(conn);
        let message = open_for_writing(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("schema version 99") && message.contains("newer"), "{message}");
    }

    /// A current database taken back to version 13's shape (no `user_name`), or to version
    /// 14's (`user_name` generated from the body), holding one event named mallory.
    fn database_of_version(path: &Path, version: i64) {
        let conn = open_for_writing(path).expect("open");
        conn.execute_batch(
            "DROP TRIGGER events_uncount_minute_activity; DROP TABLE activity_minutely;
             DROP TRIGGER events_uncount_user_activity; DROP TABLE activity_user_hourly;
             CREATE INDEX events_by_user_id_time ON events (user_id, timestamp_ms, status, method);
             CREATE INDEX events_by_user_email_time ON events (user_email, timestamp_ms, status, method);
             DROP TRIGGER events_user_name_is_immutable; DROP INDEX events_by_user_name;
             ALTER TABLE events DROP COLUMN user_name",
        )
        .expect("back to version 13's shape");
        if version == 14 {
            conn.execute_batch(
                "ALTER TABLE events ADD COLUMN user_name TEXT
                     GENERATED ALWAYS AS (json_extract(body, '$.user_name')) VIRTUAL;
                 CREATE INDEX events_by_user_name ON events (user_name, seq);",
            )
            .expect("version 14's generated column");
        }
        conn.pragma_update(None, "user_version", version).expect("the version");
        conn.execute(
            "INSERT INTO events (uuid, timestamp_ms, type, method, ingested_at_ms, body, chain_prev, chain_hash)
             VALUES ('u', 0, 'T', 'GET', 0, '{\"user_name\":\"mallory\"}', x'00', x'00')",
            [],
        )
        .expect("an event stored by that version");
    }

    /// After the upgrade: the version, mallory found through the index, and whether
    /// `user_name` is a plain column (not hidden: `table_xinfo` marks generated ones).
    fn upgraded(path: &Path) -> (i64, String, bool) {
        let conn = open_for_writing(path).expect("upgraded");
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
        let name: String = conn
            .query_row(
                "SELECT user_name FROM events INDEXED BY events_by_user_name WHERE user_name = 'mallory'",
                [],
                |r| r.get(0),
            )
            .expect("found");
        let plain: bool = conn
            .query_row("SELECT hidden = 0 FROM pragma_table_xinfo('events') WHERE name = 'user_name'", [], |r| r.get(0))
            .expect("the column");
        let refused = conn.execute("UPDATE events SET user_name = 'eve'", []).is_err();
        (version, name, plain && refused)
    }

    #[test]
    fn a_version_13_database_gains_the_user_name_column_filled_from_the_bodies() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.db");
        database_of_version(&path, 13);
        assert_eq!(upgraded(&path), (17, "mallory".to_owned(), true));
    }

    #[test]
    fn a_version_14_database_trades_its_generated_user_name_for_the_plain_column() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.db");
        database_of_version(&path, 14);
        assert_eq!(upgraded(&path), (17, "mallory".to_owned(), true));
    }

    /// Version 15's schema as it shipped (`testdata/v15_schema.sql`, that build's
    /// `schema.sql`) with events of two users stored: it opens as version 17 with the shape
    /// of a new database and a per-user rollup that counts exactly what is stored.
    #[test]
    fn a_version_15_database_trades_its_user_time_indexes_for_a_filled_user_rollup() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("v15.db");
        let conn = Connection::open(&path).expect("create");
        conn.execute_batch(include_str!("testdata/v15_schema.sql")).expect("version 15's schema");
        conn.pragma_update(None, "user_version", 15).expect("version 15");
        for (n, (user, email, status)) in
            [(Some("7"), Some("a@x"), Some(200)), (Some("7"), None, None), (None, Some("b@x"), Some(401))]
                .into_iter()
                .enumerate()
        {
            conn.execute(
                "INSERT INTO events (uuid, timestamp_ms, type, method, status, user_id, user_email, ingested_at_ms,
                                     body, chain_prev, chain_hash)
                 VALUES (?1, ?2, 'T', 'GET', ?3, ?4, ?5, 0, '{}', x'00', x'00')",
                rusqlite::params![format!("u{n}"), 3_600_000 * 5 + i64::try_from(n).unwrap_or(0), status, user, email],
            )
            .expect("an event stored by version 15");
        }
        drop(conn);
        let upgraded = open_for_writing(&path).expect("a version-15 database opens");
        let version: i64 = upgraded.pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
        assert_eq!(version, 17);
        let new = open_for_writing(&dir.path().join("new.db")).expect("new");
        assert_eq!(shape(&upgraded), shape(&new));
        let mut select = upgraded
            .prepare("SELECT hour, kind, user, status, events FROM activity_user_hourly ORDER BY kind, user, status")
            .expect("prepare");
        let rows: Vec<(i64, i64, String, i64, i64)> = select
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(
            rows,
            vec![
                (5, 1, "7".to_owned(), -1, 1),
                (5, 1, "7".to_owned(), 200, 1),
                (5, 2, "a@x".to_owned(), 200, 1),
                (5, 2, "b@x".to_owned(), 401, 1),
            ]
        );
    }

    /// Version 16's schema as it shipped (`testdata/v16_schema.sql`) with events in two
    /// minutes stored: it opens as version 17 with the shape of a new database and a minute
    /// rollup that counts exactly what is stored.
    #[test]
    fn a_version_16_database_gains_a_filled_minute_rollup() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("v16.db");
        let conn = Connection::open(&path).expect("create");
        conn.execute_batch(include_str!("testdata/v16_schema.sql")).expect("version 16's schema");
        conn.pragma_update(None, "user_version", 16).expect("version 16");
        for (n, (at_ms, status)) in
            [(60_000 * 7, Some(200)), (60_000 * 7 + 59_999, Some(200)), (60_000 * 8, None)].into_iter().enumerate()
        {
            conn.execute(
                "INSERT INTO events (uuid, timestamp_ms, type, method, status, ingested_at_ms, body, chain_prev,
                                     chain_hash)
                 VALUES (?1, ?2, 'T', 'GET', ?3, 0, '{}', x'00', x'00')",
                rusqlite::params![format!("u{n}"), at_ms, status],
            )
            .expect("an event stored by version 16");
        }
        drop(conn);
        let upgraded = open_for_writing(&path).expect("a version-16 database opens");
        let version: i64 = upgraded.pragma_query_value(None, "user_version", |r| r.get(0)).expect("version");
        assert_eq!(version, 17);
        let new = open_for_writing(&dir.path().join("new.db")).expect("new");
        assert_eq!(shape(&upgraded), shape(&new));
        let mut select =
            upgraded.prepare("SELECT minute, status, events FROM activity_minutely ORDER BY 1, 2").expect("prepare");
        let rows: Vec<(i64, i64, i64)> = select
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(rows, vec![(7, 200, 2), (8, -1, 1)]);
    }

    #[test]
    fn a_database_of_an_older_schema_is_refused_with_the_build_that_migrates_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.db");
        let conn = open_for_writing(&path).expect("open");
        conn.pragma_update(None, "user_version", 11).expect("as an older build left it");
        drop(conn);
        let message = open_for_writing(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("schema version 11") && message.contains(LAST_MIGRATING_BUILD), "{message}");
    }

    #[test]
    fn a_trail_with_events_stored_before_the_chain_is_refused_not_served_unlinked() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.db");
        let conn = open_for_writing(&path).expect("open");
        conn.execute(
            "INSERT INTO events (uuid, timestamp_ms, type, method, ingested_at_ms, body)
             VALUES ('old', 0, 'T', 'GET', 0, '{}')",
            [],
        )
        .expect("an event as a collector before the chain stored it");
        drop(conn);
        let message = open_for_writing(&path).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message.contains("no chain link") && message.contains(LAST_MIGRATING_BUILD), "{message}");
    }

    #[test]
    fn the_events_table_is_strict() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = open_for_writing(&dir.path().join("audit.db")).expect("open");
        let wrong_type = conn.execute(
            "INSERT INTO events (uuid, timestamp_ms, type, method, ingested_at_ms, body)
             VALUES ('u', 'not a number', 't', 'GET', 0, '{}')",
            [],
        );
        assert!(wrong_type.is_err(), "a STRICT table refuses text in an INTEGER column");
    }

    fn trail_with_three_events() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.db");
        let mut conn = open_for_writing(&path).expect("open");
        let rows: Vec<_> = (0..3usize).map(|n| new_event(n, i64::try_from(n).unwrap_or_default())).collect();
        let mut tx = conn.transaction().expect("begin");
        crate::store::sqlite::write_sql::insert_batch(&mut tx, &rows, 0).expect("insert");
        tx.commit().expect("commit");
        (dir, path)
    }

    #[test]
    fn a_plain_connection_can_neither_update_nor_delete_events_or_checkpoints() {
        let (_dir, path) = trail_with_three_events();
        let conn = Connection::open(&path).expect("a plain connection, as the sqlite3 shell opens it");
        for sql in [
            "UPDATE events SET body = '{}' WHERE seq = 1",
            "UPDATE events SET user_email = 'x' WHERE seq = 1",
            "UPDATE events SET user_id = 'x' WHERE seq = 1",
            "UPDATE events SET chain_hash = zeroblob(32) WHERE seq = 1",
            "DELETE FROM events WHERE seq = 2",
            "DELETE FROM events",
            "INSERT INTO chain_anchor (id, seq, hash, purged_at_ms) VALUES (1, 1, zeroblob(32), 0)",
        ] {
            let refused = conn.execute(sql, []).map_err(|error| error.to_string());
            assert!(refused.is_err(), "`{sql}` was allowed");
        }
        let count: i64 = conn.query_row("SELECT count(*) FROM events", [], |row| row.get(0)).expect("count");
        assert_eq!(count, 3, "nothing was deleted");
    }

    #[test]
    fn the_retention_purge_deletes_the_oldest_and_records_the_anchor() {
        let (_dir, path) = trail_with_three_events();
        let mut conn = Connection::open(&path).expect("open");
        let tx = conn.transaction().expect("begin");
        assert_eq!(purge_batch(&tx, 2, 10).expect("purge"), 2, "events with timestamps 0 and 1 go");
        tx.commit().expect("commit");
        let anchor: i64 = conn.query_row("SELECT seq FROM chain_anchor", [], |row| row.get(0)).expect("anchor");
        assert_eq!(anchor, 2);
        let guard: i64 = conn.query_row("SELECT purging FROM purge_guard", [], |row| row.get(0)).expect("guard");
        assert_eq!(guard, 0, "the purge closes the window it opened");
        assert!(conn.execute("DELETE FROM events", []).is_err(), "and deleting is refused again");
    }

    /// Retention leaves no user behind in the per-user rollup: a user whose every event was
    /// purged has no row left (not one counting zero), another keeps only its later hour.
    #[test]
    fn the_retention_purge_leaves_no_purged_user_in_the_per_user_rollup() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = open_for_writing(&dir.path().join("audit.db")).expect("open");
        let user = |n: usize, timestamp_ms: i64, id: &str, email: &str| NewEvent {
            user_id: Some(id.to_owned()),
            user_email: Some(email.to_owned()),
            ..new_event(n, timestamp_ms)
        };
        let rows = [user(0, 10, "gone", "gone@x"), user(1, 20, "kept", "kept@x"), user(2, 7_200_000, "kept", "kept@x")];
        let mut tx = conn.transaction().expect("begin");
        crate::store::sqlite::write_sql::insert_batch(&mut tx, &rows, 0).expect("insert");
        assert_eq!(purge_batch(&tx, 3_600_000, 10).expect("purge"), 2, "the two events of hour 0 go");
        tx.commit().expect("commit");
        let mut select =
            conn.prepare("SELECT hour, kind, user, events FROM activity_user_hourly ORDER BY 1, 2").expect("prepare");
        let left: Vec<(i64, i64, String, i64)> = select
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(
            left,
            [(2, 1, "kept".to_owned(), 1), (2, 2, "kept@x".to_owned(), 1)],
            "only the unpurged event's rows"
        );
        let minutes: Vec<(i64, i64)> = conn
            .prepare("SELECT minute, events FROM activity_minutely ORDER BY 1")
            .expect("prepare")
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(minutes, [(120, 1)], "the purged minute's row is gone, not left at zero");
    }

    /// Every object of the schema: each table's columns (with types, defaults and
    /// constraints as `table_xinfo` reports them) and options, each index's columns, each
    /// trigger's SQL with its whitespace folded; sorted by name.
    fn shape(conn: &Connection) -> Vec<String> {
        let mut select = conn
            .prepare("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
            .expect("prepare");
        let objects: Vec<(String, String, Option<String>)> = select
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        let folded = |sql: &str| sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let described = |pragma: &str, name: &str| -> String {
            let mut select = conn.prepare(&format!("SELECT * FROM pragma_{pragma}(?1)")).expect("pragma");
            let columns = select.column_count();
            let rows = select
                .query_map([name], |row| {
                    (0..columns)
                        .map(|index| row.get::<_, rusqlite::types::Value>(index).map(|value| format!("{value:?}")))
                        .collect::<Result<Vec<_>, _>>()
                })
                .expect("query");
            rows.map(|row| row.expect("row").join(",")).collect::<Vec<_>>().join("; ")
        };
        objects
            .into_iter()
            .map(|(kind, name, sql)| {
                let sql = sql.unwrap_or_default();
                match kind.as_str() {
                    "table" => format!(
                        "table {name} strict={} without_rowid={}: {}",
                        sql.contains("STRICT"),
                        sql.contains("WITHOUT ROWID"),
                        described("table_xinfo", &name)
                    ),
                    "index" => {
                        format!("index {name} where={}: {}", sql.contains("WHERE"), described("index_xinfo", &name))
                    }
                    _ => format!("{kind} {name}: {}", folded(&sql)),
                }
            })
            .collect()
    }

    /// The shape the last released build (schema 12) left: version 13's without the
    /// senders' `final_count`. It must open, not be refused: `make demo` continues its data.
    #[test]
    fn a_database_the_twelve_migrations_made_opens_upgraded_and_has_the_shape_of_a_new_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let released = dir.path().join("released.db");
        let conn = Connection::open(&released).expect("create");
        conn.execute_batch(include_str!("testdata/v13_as_migrated.sql")).expect("the schema the migrations left");
        conn.execute_batch("ALTER TABLE senders DROP COLUMN final_count").expect("back to version 12");
        conn.pragma_update(None, "user_version", 12).expect("version 12");
        drop(conn);
        let released = open_for_writing(&released).expect("a version-12 database opens");
        let new = open_for_writing(&dir.path().join("new.db")).expect("new");
        assert_eq!(shape(&released), shape(&new));
    }

    #[test]
    fn a_database_the_thirteen_migrations_made_opens_upgraded_and_has_the_shape_of_a_new_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let migrated = dir.path().join("migrated.db");
        let conn = Connection::open(&migrated).expect("create");
        conn.execute_batch(include_str!("testdata/v13_as_migrated.sql")).expect("the schema the migrations left");
        conn.pragma_update(None, "user_version", 13).expect("version 13");
        drop(conn);
        let mut migrated = open_for_writing(&migrated).expect("a version-13 database opens");
        let new = open_for_writing(&dir.path().join("new.db")).expect("new");
        let shape_of_new = shape(&new);
        assert_eq!(shape_of_new.len(), 36, "every table, index and trigger: {shape_of_new:#?}");
        assert_eq!(shape(&migrated), shape_of_new);
        let mut tx = migrated.transaction().expect("begin");
        crate::store::sqlite::write_sql::insert_batch(&mut tx, &[new_event(1, 0)], 0).expect("stores into it");
        tx.commit().expect("commit");
    }
}
