//! Test fixtures shared by the store's unit tests: events as the writer takes them, and a
//! SQLite trail of them for the paging tests.

use rusqlite::Connection;

use super::new_event::NewEvent;
use super::sqlite::schema::open_for_writing;
use super::sqlite::write_sql::insert_batch;

/// A fresh database in a temporary folder with `count` events, `event-0`, `event-1`, ...,
/// stored (and linked) as the writer stores them.
pub fn trail(count: usize) -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut conn = open_for_writing(&dir.path().join("audit.db")).expect("open");
    let events: Vec<NewEvent> = (0..count).map(|n| new_event(n, 0)).collect();
    let mut tx = conn.transaction().expect("begin");
    insert_batch(&mut tx, &events, 0).expect("insert");
    tx.commit().expect("commit");
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
        user_name: None,
        method: "GET".to_owned(),
        status: None,
        canonical: body.clone().into_bytes(),
        body,
    }
}
