//! A SQLite trail moved up to PostgreSQL is the same trail: `verify` passes on the copy
//! with the same public key, a consumer's saved cursor still works (and a purged one is
//! still "expired"), tokens still authenticate, seqs continue; a non-empty target is refused.

use std::time::{Duration, Instant};

use super::from_sqlite::{migrate, MigrateError};
use super::test_cluster::fresh_database;
use super::PgStore;
use crate::auth::Scope;
use crate::chain::signing::TrailSigner;
use crate::store::new_event::NewEvent;
use crate::store::page::PageOutcome;
use crate::store::query::TrailQuery;
use crate::store::sqlite::schema::open_for_writing;
use crate::store::sqlite::tokens::insert_token;
use crate::store::sqlite::SqliteStore;
use crate::store::trail_store::TrailStore;
use crate::verify::from_postgres::verify_postgres;
use crate::verify::{verify_database, VerifyError};

const DAY: i64 = 86_400_000;

fn uuid(n: u8) -> String {
    audit_event::event_uuid::encode_event_uuid([n; 16])
}

/// A real audit event (verify checks every filtered-on column against it), as ingest makes it.
fn new_event(n: u8, timestamp_ms: i64) -> NewEvent {
    let event = serde_json::json!({
        "uuid": uuid(n),
        "timestamp": audit_event::timestamp::format_rfc3339_millis(timestamp_ms * 1_000_000),
        "type": "PactBroker::Api::Resources::Pact",
        "db_user_id": null,
        "user_email": "ops@example.com",
        "payload": {"path": "/pacts", "queryString": "", "method": "GET", "userAgent": "test", "referer": null,
                    "params": {"resource_name": "pact"}}
    });
    let body = serde_json::to_vec(&serde_json::json!({ "events": [event] })).expect("JSON");
    crate::batch::parse_batch(&body).expect("a valid event").rows.remove(0)
}

fn first_uuid(outcome: PageOutcome) -> Option<String> {
    let PageOutcome::Page(rows) = outcome else { panic!("expected a page, got {outcome:?}") };
    rows.events
        .first()
        .map(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).expect("JSON"))
        .and_then(|event| event["uuid"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrated_trail_verifies_keeps_its_cursors_and_tokens_and_refuses_a_second_copy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.db");
    let signer = TrailSigner::from_seed([3; 32]);
    let sqlite = SqliteStore::open(&path, 8, Some(TrailSigner::from_seed([3; 32]))).expect("open SQLite");
    let mut events: Vec<_> = (0..3).map(|n| new_event(n, 10 * DAY)).collect();
    events.extend((3..10).map(|n| new_event(n, 100 * DAY)));
    sqlite.ingest(events, None).await.expect("stored");
    assert_eq!(sqlite.purge(50 * DAY, 100).await.expect("purge"), 3);
    insert_token(&open_for_writing(&path).expect("second connection"), "soc", Scope::Read, &[9; 32], 1).expect("token");
    sqlite.shutdown().await.expect("stop; signs the last checkpoint");
    let expected =
        verify_database(&rusqlite::Connection::open(&path).expect("open"), &signer.verifier()).expect("intact");

    let url = fresh_database().await;
    let copied = migrate(&path, &url).await.expect("migrate");
    assert_eq!((copied.events, copied.head_seq, copied.anchor_seq, copied.tokens), (7, 10, 3, 1));
    let report = verify_postgres(&url, &signer.verifier()).await.expect("the copy verifies");
    assert_eq!((report.events, report.first_seq, report.last_seq), (7, Some(4), Some(10)));
    assert_eq!(report.checkpoints, expected.checkpoints);

    let again = migrate(&path, &url).await;
    assert!(matches!(again, Err(MigrateError::TargetNotEmpty(_))), "{again:?}");

    let postgres = PgStore::open(&url, Some(TrailSigner::from_seed([3; 32]))).await.expect("open PostgreSQL");
    let from = |uuid: &str| TrailQuery { from: Some(uuid.to_owned()), size: 2, ..TrailQuery::default() };
    assert_eq!(first_uuid(postgres.page(from(&uuid(5))).await.expect("read")).as_deref(), Some(uuid(5).as_str()));
    assert!(matches!(postgres.page(from(&uuid(1))).await.expect("read"), PageOutcome::ExpiredFrom));
    assert_eq!(postgres.active_tokens().await.expect("tokens").len(), 1);
    assert_eq!(postgres.ingest(vec![new_event(4, 100 * DAY)], None).await.expect("ingest").duplicates, 1);
    postgres.ingest(vec![new_event(10, 100 * DAY)], None).await.expect("ingest");
    let deadline = Instant::now() + Duration::from_secs(10);
    // Until it is sealed the new event is not in the trail, so not a known cursor either.
    while matches!(postgres.page(from(&uuid(10))).await.expect("read"), PageOutcome::UnknownFrom)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    postgres.shutdown().await.expect("stop");
    let report = verify_postgres(&url, &signer.verifier()).await.expect("still intact after new events");
    assert_eq!(report.last_seq, Some(11), "seqs continue from the migrated head");

    // And verify can fail: an event deleted behind the collector's back is found.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    client.execute("DELETE FROM events WHERE seq = 6", &[]).await.expect("tamper");
    let tampered = verify_postgres(&url, &signer.verifier()).await;
    assert!(matches!(tampered, Err(VerifyError::NotIntact(_))), "{tampered:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrated_trail_keeps_its_key_handover_and_its_senders_accounting() {
    use crate::completeness::accounting::{SenderActivity, SenderPolicy};
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.db");
    let (old_key, new_key) = (TrailSigner::from_seed([3; 32]), TrailSigner::from_seed([4; 32]));
    let sqlite = SqliteStore::open(&path, 8, Some(TrailSigner::from_seed([3; 32]))).expect("open SQLite");
    // A sender whose numbers 4-5 never arrived; the hole is not due yet when the trail moves.
    for numbers in [1..=3, 6..=8] {
        let activity = SenderActivity {
            id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
            captured: 8,
            reported_at_ms: 0,
            heartbeat_ms: 1000,
            numbered: numbers.clone().map(|n| Some((n, 0))).collect(),
            named_lost: Vec::new(),
            stopping: false,
        };
        let events = numbers.map(|n| new_event(u8::try_from(n).unwrap_or(0), 100 * DAY)).collect();
        sqlite.ingest(events, Some(activity)).await.expect("stored");
    }
    sqlite.shutdown().await.expect("stop; signs a checkpoint with the old key");
    let conn = open_for_writing(&path).expect("open");
    crate::store::sqlite::chain_store::issue_handover(&conn, &old_key, &new_key.verifier(), 1).expect("hand over");
    drop(conn);

    let url = fresh_database().await;
    let copied = migrate(&path, &url).await.expect("migrate");
    assert_eq!((copied.events, copied.checkpoints, copied.senders), (6, 2, 1));
    verify_postgres(&url, &old_key.verifier()).await.expect("the copy verifies through the handover");

    // The copy goes on under the new key, and the moved accounting records the hole once.
    let postgres = PgStore::open(&url, Some(TrailSigner::from_seed([4; 32]))).await.expect("open PostgreSQL");
    postgres.ingest(vec![new_event(20, 100 * DAY)], None).await.expect("ingest");
    let deadline = Instant::now() + Duration::from_secs(10);
    let sealed = |outcome: PageOutcome| matches!(outcome, PageOutcome::Page(rows) if rows.events.len() == 7);
    while !sealed(postgres.page(TrailQuery { size: 100, ..TrailQuery::default() }).await.expect("read")) {
        assert!(Instant::now() < deadline, "the new event was not sealed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let due = SenderPolicy { hole_grace_ms: 0, silence_ms: i64::MAX, started_at_ms: 0, forget_stopped_ms: i64::MAX };
    assert_eq!(postgres.check_senders(due).await.expect("checked"), 1, "the hole 4-5");
    assert_eq!(postgres.check_senders(due).await.expect("checked"), 0, "once");
    postgres.shutdown().await.expect("stop; signs with the new key");
    let report = verify_postgres(&url, &old_key.verifier()).await.expect("intact, signed by the new key after it");
    assert_eq!((report.events, report.checkpoints.len()), (8, 3));
}
