//! The migration that makes the trail tamper-evident (listed in `schema::MIGRATIONS`).
//!
//! - `events.chain_prev` / `events.chain_hash`: each event's link (32-byte SHA-256 BLOBs).
//!   NULL only on events stored before this migration, until the writer links them at
//!   start-up (`chain_linking::link_unchained_events`).
//! - `chain_anchor`: one row, the last event retention purged and its hash, where the kept
//!   chain starts.
//! - `checkpoints`: the signed checkpoints; never updated or deleted.
//! - `purge_guard` and the triggers: events cannot be updated at all (their chain columns
//!   can be written once), and can be deleted only while `purge_guard.purging` is 1. The
//!   retention purge sets it and clears it again inside its own transaction, so no other
//!   connection ever sees it set. A flag in a table rather than TEMP triggers, because a
//!   TEMP trigger exists only on the connection that made it: it would not stop the
//!   `sqlite3` shell or any other program that opens the file. This guards against
//!   mistakes; against someone who edits the file on purpose (and can drop triggers) the
//!   defence is the signed checkpoints, which `audit-collector verify` checks.
//!   The UPDATE triggers name their columns (`UPDATE OF ...`), so a later migration may
//!   still fill a column it adds.

/// The SQL of the migration.
pub const CHAIN_MIGRATION: &str = "
    ALTER TABLE events ADD COLUMN chain_prev BLOB;
    ALTER TABLE events ADD COLUMN chain_hash BLOB;
    CREATE TABLE chain_anchor (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        hash BLOB NOT NULL,
        purged_at_ms INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE checkpoints (
        number INTEGER PRIMARY KEY,
        last_seq INTEGER NOT NULL,
        last_hash BLOB NOT NULL,
        anchor_seq INTEGER NOT NULL,
        anchor_hash BLOB NOT NULL,
        issued_at_ms INTEGER NOT NULL,
        prev_checkpoint_hash BLOB NOT NULL,
        key_id TEXT NOT NULL,
        signature BLOB NOT NULL
    ) STRICT;
    CREATE TABLE purge_guard (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        purging INTEGER NOT NULL CHECK (purging IN (0, 1))
    ) STRICT;
    INSERT INTO purge_guard (id, purging) VALUES (1, 0);
    CREATE TRIGGER events_content_is_immutable
    BEFORE UPDATE OF seq, uuid, timestamp_ms, type, db_user_id, user_email, method, status, ingested_at_ms, body ON events
    BEGIN SELECT RAISE(ABORT, 'audit events are immutable: the trail has no update path'); END;
    CREATE TRIGGER events_chain_is_written_once
    BEFORE UPDATE OF chain_prev, chain_hash ON events WHEN OLD.chain_hash IS NOT NULL
    BEGIN SELECT RAISE(ABORT, 'an event''s chain link is written once and never changed'); END;
    CREATE TRIGGER events_are_deleted_only_by_retention
    BEFORE DELETE ON events WHEN (SELECT purging FROM purge_guard WHERE id = 1) IS NOT 1
    BEGIN SELECT RAISE(ABORT, 'audit events are deleted only by the retention purge'); END;
    CREATE TRIGGER checkpoints_are_immutable BEFORE UPDATE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are immutable'); END;
    CREATE TRIGGER checkpoints_are_never_deleted BEFORE DELETE ON checkpoints
    BEGIN SELECT RAISE(ABORT, 'checkpoints are never deleted'); END;
    CREATE TRIGGER anchor_moves_only_in_a_purge_insert BEFORE INSERT ON chain_anchor
    WHEN (SELECT purging FROM purge_guard WHERE id = 1) IS NOT 1
    BEGIN SELECT RAISE(ABORT, 'the retention anchor is written only by the retention purge'); END;
    CREATE TRIGGER anchor_moves_only_in_a_purge_update BEFORE UPDATE ON chain_anchor
    WHEN (SELECT purging FROM purge_guard WHERE id = 1) IS NOT 1
    BEGIN SELECT RAISE(ABORT, 'the retention anchor is written only by the retention purge'); END;
    CREATE TRIGGER anchor_is_never_deleted BEFORE DELETE ON chain_anchor
    BEGIN SELECT RAISE(ABORT, 'the retention anchor is never deleted'); END;
";

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use crate::store::sqlite::schema::open_for_writing;
    use crate::store::sqlite::write_sql::purge_batch;
    use crate::store::test_support::new_event;

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
}
