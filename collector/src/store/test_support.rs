//! Test fixtures shared by the store's unit tests: a database holding events inserted as a
//! collector before the hash chain stored them (no chain links), for linking and paging tests.

use rusqlite::{params, Connection};

use super::schema::open_for_writing;

/// A fresh database in a temporary folder with `count` unlinked events, `uuid-0`, `uuid-1`, ...
pub fn unlinked_trail(count: usize) -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().expect("temp dir");
    let conn = open_for_writing(&dir.path().join("audit.db")).expect("open");
    for n in 0..count {
        conn.execute(
            "INSERT INTO events (uuid, timestamp_ms, type, method, ingested_at_ms, body)
             VALUES (?1, 0, 'T', 'GET', 0, ?2)",
            params![format!("uuid-{n}"), format!(r#"{{"n":{n}}}"#)],
        )
        .expect("insert");
    }
    (dir, conn)
}
