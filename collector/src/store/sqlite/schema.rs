//! Opening connections: the pragmas every connection needs, then the migrations, whose
//! number is kept in `PRAGMA user_version`. A database newer than this binary is refused
//! rather than written with assumptions that may no longer hold.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::super::StoreError;

/// How long a connection waits for a lock before it reports `SQLITE_BUSY`.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL pages (4 KiB each) after which a commit checkpoints the WAL into the database.
pub const WAL_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// The writer connection's page cache, in KiB.
pub const WRITER_CACHE_KIB: i64 = 32 * 1024;

/// The migrations, in order; migration `n` (1-based) brings the schema to version `n`.
/// Released entries are never edited: a change is a new entry.
const MIGRATIONS: &[&str] = &[
    // 1: the trail. `seq` is the rowid, assigned at commit: the order of GET /audit and its
    // cursor. `body` is the event's canonical JSON, served as stored. The timestamp index
    // serves the retention purge, which would otherwise scan the table every run.
    "CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        timestamp_ms INTEGER NOT NULL,
        type TEXT NOT NULL,
        db_user_id INTEGER,
        user_email TEXT,
        method TEXT NOT NULL,
        status INTEGER,
        ingested_at_ms INTEGER NOT NULL,
        body TEXT NOT NULL
    ) STRICT;
    CREATE INDEX events_by_timestamp ON events (timestamp_ms);",
    // 2: the tamper-evident trail: hash-chain columns, the retention anchor, signed
    // checkpoints, and the triggers that leave no update or delete path (see
    // `chain_migration`).
    super::chain_migration::CHAIN_MIGRATION,
    // 3: the /audit API for security teams.
    // - `user_id`: what PactFlow's `userUuid` filter matches, the event's `user_id` or else
    //   its `db_user_id` as text; generated from the stored body, so ingest is unchanged.
    // - one `(column, seq)` index per equality filter of GET /audit, so a filtered page is a
    //   range search that comes out in seq order (no sort, no full scan).
    // - `expired_events`: the uuids retention purged, filled by a trigger in the purge's
    //   own transaction, so an expired `from` is a 410 and not an unknown 404. It keeps
    //   purged uuids for 30 days of event time after the newest purged one. The same
    //   trigger counts purged events in `purge_count` (the `audit_events_purged_total`
    //   metric, kept across restarts).
    // - `api_tokens`: bearer tokens made by `audit-collector token create`, kept only as
    //   SHA-256 digests; revoked tokens stay listed with their revocation time.
    "ALTER TABLE events ADD COLUMN user_id TEXT
        GENERATED ALWAYS AS (CAST(COALESCE(json_extract(body, '$.user_id'), db_user_id) AS TEXT)) VIRTUAL;
    CREATE INDEX events_by_type ON events (type, seq);
    CREATE INDEX events_by_user_id ON events (user_id, seq);
    CREATE INDEX events_by_user_email ON events (user_email, seq);
    CREATE INDEX events_by_method ON events (method, seq);
    CREATE INDEX events_by_status ON events (status, seq);
    CREATE TABLE expired_events (
        uuid TEXT PRIMARY KEY,
        timestamp_ms INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX expired_events_by_timestamp ON expired_events (timestamp_ms);
    CREATE TRIGGER events_remember_purged AFTER DELETE ON events BEGIN
        INSERT OR IGNORE INTO expired_events (uuid, timestamp_ms) VALUES (old.uuid, old.timestamp_ms);
        DELETE FROM expired_events WHERE timestamp_ms < old.timestamp_ms - 30 * 86400000;
        UPDATE purge_count SET events = events + 1;
    END;
    CREATE TABLE purge_count (events INTEGER NOT NULL) STRICT;
    INSERT INTO purge_count (events) VALUES (0);
    CREATE TABLE api_tokens (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        scope TEXT NOT NULL CHECK (scope IN ('read', 'ingest')),
        digest BLOB NOT NULL UNIQUE,
        created_at_ms INTEGER NOT NULL,
        revoked_at_ms INTEGER
    ) STRICT;
    CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at_ms IS NULL;",
    // 4: `user_id` becomes a plain column that ingest fills from the event it has already
    // parsed. As a generated column over `body`, every insert ran SQLite's JSON parser over
    // the whole body to index it: a third of the raw insert rate (bench/results.md). Old
    // rows are filled once from their bodies; afterwards the column can no longer change,
    // like the rest of an event, and `verify` checks it against the body.
    "DROP INDEX events_by_user_id;
    ALTER TABLE events DROP COLUMN user_id;
    ALTER TABLE events ADD COLUMN user_id TEXT;
    UPDATE events SET user_id = CAST(COALESCE(json_extract(body, '$.user_id'), db_user_id) AS TEXT);
    CREATE INDEX events_by_user_id ON events (user_id, seq);
    CREATE TRIGGER events_user_id_is_immutable BEFORE UPDATE OF user_id ON events
    BEGIN SELECT RAISE(ABORT, 'audit events are immutable: the trail has no update path'); END;",
    // 5: `events_by_seq_time`, so a numbered page (`pageNumber`) finds where it starts by
    // walking this small index instead of the table, whose leaves hold the events' bodies;
    // it carries the timestamp so `since`/`until` are tested on it too. Appended at its
    // right edge on ingest, like the table itself.
    "CREATE INDEX events_by_seq_time ON events (seq, timestamp_ms);",
    // 6: the hourly activity rollup behind GET /audit/activity (see `activity`); its insert
    // trigger is replaced by the writer's per-batch count in 9.
    super::activity_rollup::ACTIVITY_MIGRATION,
    // 7: completeness by the receiver (`senders`): per filter worker (sender), what it last
    // reported, how many of its events are stored, and which of its numbers are accounted
    // for: all up to `contiguous`, and the ranges in `sender_pending` above it (usually
    // none). Holes and silent senders become events of the trail; these tables only keep
    // the accounting that decides when.
    "CREATE TABLE senders (
        id TEXT PRIMARY KEY,
        first_heard_ms INTEGER NOT NULL,
        last_heard_ms INTEGER NOT NULL,
        reported_at_ms INTEGER NOT NULL,
        captured INTEGER NOT NULL,
        heartbeat_ms INTEGER NOT NULL,
        delivered INTEGER NOT NULL,
        stopped_at_ms INTEGER,
        contiguous INTEGER NOT NULL,
        contiguous_at_ms INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE sender_pending (
        sender TEXT NOT NULL REFERENCES senders (id),
        first_seq INTEGER NOT NULL,
        last_seq INTEGER NOT NULL,
        first_at_ms INTEGER NOT NULL,
        last_at_ms INTEGER NOT NULL,
        seen_at_ms INTEGER NOT NULL,
        PRIMARY KEY (sender, first_seq)
    ) STRICT, WITHOUT ROWID;",
    // 8: verification that never overclaims (docs/verifying.md).
    // - `checkpoints.next_public_key`: key rotation; the handover checkpoint, signed by the
    //   old key, names the raw public key that signs every checkpoint after it.
    // - `api_tokens` gains the `admin` scope (signing a checkpoint on demand); SQLite cannot
    //   change a CHECK constraint in place, so the table is rebuilt with its rows.
    "ALTER TABLE checkpoints ADD COLUMN next_public_key BLOB;
    CREATE TABLE api_tokens_with_admin (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        scope TEXT NOT NULL CHECK (scope IN ('read', 'ingest', 'admin')),
        digest BLOB NOT NULL UNIQUE,
        created_at_ms INTEGER NOT NULL,
        revoked_at_ms INTEGER
    ) STRICT;
    INSERT INTO api_tokens_with_admin (id, name, scope, digest, created_at_ms, revoked_at_ms)
        SELECT id, name, scope, digest, created_at_ms, revoked_at_ms FROM api_tokens;
    DROP TABLE api_tokens;
    ALTER TABLE api_tokens_with_admin RENAME TO api_tokens;
    CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE revoked_at_ms IS NULL;",
    // 9: the writer counts the activity rollup per batch; the per-row insert trigger goes.
    super::activity_rollup::ACTIVITY_COUNTED_BY_WRITER_MIGRATION,
    // 10: a lost last batch while its sender runs: the oldest heartbeat count of the sender
    // not yet accounted for (`claimed_upto`, 0 for none; `completeness::ledger::Claim`).
    "ALTER TABLE senders ADD COLUMN claimed_upto INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE senders ADD COLUMN claimed_at_ms INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE senders ADD COLUMN claimed_seen_at_ms INTEGER NOT NULL DEFAULT 0;",
    // 11: indexes that answer GET /audit/activity's counts without reading a row (see
    // `activity`): the timestamp index carries type, method and status, and each user
    // filter gets one by (user, time).
    super::activity_rollup::ACTIVITY_COVERING_INDEXES_MIGRATION,
    // 12: the user filters' (user, time) indexes lose `type`, the widest column: they cost
    // ingest half its raw insert rate with it (docs/viewer.md, "What the indexes cost").
    super::activity_rollup::ACTIVITY_NARROW_USER_INDEXES_MIGRATION,
    // 13: the final count a sender shutting down reported (NULL: it has not said it is
    // stopping); `completeness::accounting` records it as finished once that is accounted for.
    "ALTER TABLE senders ADD COLUMN final_count INTEGER;",
];

/// The schema version this binary migrates to.
pub fn current_version() -> i64 {
    i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX)
}

/// Opens (creating when missing) the database for writing: directory, pragmas, migrations.
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
    migrate(&mut conn, path)?;
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

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let known = current_version();
    // IMMEDIATE: two collectors starting on one file must not both apply a migration.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > known {
        return Err(StoreError::NewerSchema { path: path.to_path_buf(), found, known });
    }
    let applied = usize::try_from(found).unwrap_or(0);
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", i64::try_from(index + 1).unwrap_or(i64::MAX))?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn migration_4_fills_user_id_of_old_rows_from_their_bodies() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.db");
        let mut conn = Connection::open(&path).expect("open");
        let tx = conn.transaction().expect("begin");
        for migration in &MIGRATIONS[..3] {
            tx.execute_batch(migration).expect("migrations 1-3");
        }
        tx.pragma_update(None, "user_version", 3).expect("version 3");
        tx.execute_batch(
            r#"INSERT INTO events (uuid, timestamp_ms, type, db_user_id, method, ingested_at_ms, body) VALUES
               ('a', 0, 'T', 7, 'GET', 0, '{"user_id":"alice","db_user_id":7}'),
               ('b', 0, 'T', 8, 'GET', 0, '{"user_id":null,"db_user_id":8}'),
               ('c', 0, 'T', NULL, 'GET', 0, '{}');"#,
        )
        .expect("rows of a version-3 trail");
        tx.commit().expect("commit");
        drop(conn);
        let conn = open_for_writing(&path).expect("migrates to the current version");
        let mut select = conn.prepare("SELECT user_id FROM events ORDER BY seq").expect("prepare");
        let ids: Vec<Option<String>> =
            select.query_map([], |row| row.get(0)).expect("query").collect::<Result<_, _>>().expect("rows");
        assert_eq!(ids, [Some("alice".to_owned()), Some("8".to_owned()), None]);
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
}
