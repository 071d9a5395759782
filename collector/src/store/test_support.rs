//! Test fixtures shared by the store's unit tests: a database holding events inserted as a
//! collector before the hash chain stored them (no chain links), for linking and paging tests,
//! and events as the writer takes them.

use rusqlite::{params, Connection};

use super::new_event::NewEvent;
use super::sqlite::schema::open_for_writing;

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

/// The event `event-<n>` as the writer takes it, with body and canonical form `{"n":<n>}`.
pub fn new_event(n: usize, timestamp_ms: i64) -> NewEvent {
    let body = format!(r#"{{"n":{n}}}"#);
    NewEvent {
        uuid: format!("event-{n}"),
        timestamp_ms,
        event_type: "T".to_owned(),
        db_user_id: None,
        user_email: None,
        user_id: None,
        method: "GET".to_owned(),
        status: None,
        canonical: body.clone().into_bytes(),
        body,
    }
}
