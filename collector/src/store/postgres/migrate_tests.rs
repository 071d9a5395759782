//! A SQLite trail moved up to PostgreSQL is the same trail: `verify` passes on the copy
//! with the same public key, a consumer's saved cursor still works (and a purged one is
//! still "expired"), tokens still authenticate, seqs continue; a non-empty target is refused.
//! And a PostgreSQL trail of version 8 brought to version 9 in place keeps its cursors
//! without the uuid index, and loses the rollup rows retention had zeroed.

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
    // Until it is sealed the new event is not in the trail, so not a cursor a page starts from.
    while !matches!(postgres.page(from(&uuid(10))).await.expect("read"), PageOutcome::Page(_))
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

/// A version 8 trail (the uuid index, a rollup row retention zeroed) brought to version 9:
/// the uuid index is gone, a cursor still finds its event among others of the same
/// millisecond, the zero row is gone, the activity counts are what they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_8_trail_upgraded_in_place_finds_its_cursors_without_a_uuid_index() {
    use super::schema::{self, SCHEMA_V1, SCHEMA_VERSION, UPGRADES};
    let url = fresh_database().await;
    let pool = schema::pool(&url).expect("pool");
    let client = pool.get().await.expect("connect");
    client.batch_execute(SCHEMA_V1).await.expect("version 1");
    for upgrade in &UPGRADES[..7] {
        client.batch_execute(upgrade).await.expect("up to version 8");
    }
    client
        .batch_execute(
            "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (8);
             INSERT INTO trail_uuids (uuid, timestamp_ms) SELECT 'event-' || n, 7200000 FROM generate_series(1, 40) n;
             INSERT INTO events (seq, uuid, timestamp_ms, type, user_id, method, status, ingested_at_ms, body,
                                 chain_prev, chain_hash)
             SELECT n, 'event-' || n, 7200000, 'T', 'u1', 'GET', 200, 0, '{}', sha256(n::text::bytea),
                    sha256(n::text::bytea)
             FROM generate_series(1, 40) n;
             UPDATE chain_head SET seq = 40;
             INSERT INTO activity_hourly VALUES (1, 'T', 'GET', 200, 0);
             INSERT INTO activity_user_id_hourly VALUES (1, 'u1', 'T', 'GET', 200, 0);",
        )
        .await
        .expect("a version 8 trail");
    drop(client);
    schema::migrate(&pool).await.expect("upgrade");
    let client = pool.get().await.expect("connect");
    let version: i32 = client.query_one("SELECT version FROM schema_version", &[]).await.expect("version").get(0);
    assert_eq!(version, SCHEMA_VERSION);
    let by_uuid: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
             WHERE i.indrelid = 'events'::regclass AND a.attname = 'uuid'",
            &[],
        )
        .await
        .expect("indexes")
        .get(0);
    assert_eq!(by_uuid, 0, "no index of events leads with the uuid");
    let zero_rows: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM activity_hourly WHERE events = 0)
                  + (SELECT count(*) FROM activity_user_id_hourly WHERE events = 0)",
            &[],
        )
        .await
        .expect("rollups")
        .get(0);
    assert_eq!(zero_rows, 0, "the rows retention zeroed before the upgrade are gone");
    let from = TrailQuery { from: Some("event-23".to_owned()), size: 2, ..TrailQuery::default() };
    let page = super::page::read_page(&pool, &from).await.expect("read");
    let PageOutcome::Page(rows) = page else { panic!("expected a page, got {page:?}") };
    assert_eq!(rows.events.len(), 2);
    let unknown = TrailQuery { from: Some("event-41".to_owned()), ..TrailQuery::default() };
    assert!(matches!(super::page::read_page(&pool, &unknown).await.expect("read"), PageOutcome::UnknownFrom));
}

/// Retention takes a purged hour's events out of every rollup, and the rows it brings to
/// zero go with them (version 8 kept them at zero, for ever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_the_rollup_rows_it_brings_to_zero() {
    use crate::store::test_support::new_event as plain_event;
    let url = fresh_database().await;
    let store = PgStore::open(&url, None).await.expect("open");
    let with_users = |n: usize, timestamp_ms: i64| NewEvent {
        user_id: Some("u1".to_owned()),
        user_email: Some("a@x".to_owned()),
        ..plain_event(n, timestamp_ms)
    };
    // Two events in hour 0, one in hour 2.
    let events = vec![with_users(1, 1_000), with_users(2, 2_000), with_users(3, 7_300_000)];
    assert_eq!(store.ingest(events, None).await.expect("ingest").accepted, 3);
    let deadline = Instant::now() + Duration::from_secs(10);
    let sealed = |outcome: PageOutcome| matches!(outcome, PageOutcome::Page(rows) if rows.events.len() == 3);
    while !sealed(store.page(TrailQuery { size: 100, ..TrailQuery::default() }).await.expect("read")) {
        assert!(Instant::now() < deadline, "the events were not sealed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(store.purge(3_600_000, 100).await.expect("purge"), 2, "hour 0's two events");
    let pool = super::schema::pool(&url).expect("pool");
    let client = pool.get().await.expect("connect");
    for rollup in ["activity_hourly", "activity_user_id_hourly", "activity_user_email_hourly"] {
        let rows =
            client.query(&format!("SELECT hour, events FROM {rollup} ORDER BY hour"), &[]).await.expect("rollup");
        let hours: Vec<(i64, i64)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
        assert_eq!(hours, [(2, 1)], "{rollup} keeps only hours that still have events");
    }
    store.shutdown().await.expect("stop");
}

/// Retention forgets a purged event's uuid 30 days past the newest purged event, but never the
/// uuid of an event still in the trail, however old its timestamp: found by (timestamp, uuid)
/// since `events` has no uuid index (version 9), it stays a duplicate when retried.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_keeps_the_uuid_of_an_old_event_still_in_the_trail() {
    use crate::store::test_support::new_event as plain_event;
    let url = fresh_database().await;
    let store = PgStore::open(&url, None).await.expect("open");
    // In seq order: 10, 100 and 200 days, then 1 day (timestamps come from the senders).
    let events =
        vec![plain_event(0, 10 * DAY), plain_event(1, 100 * DAY), plain_event(2, 200 * DAY), plain_event(3, DAY)];
    assert_eq!(store.ingest(events, None).await.expect("ingest").accepted, 4);
    let deadline = Instant::now() + Duration::from_secs(10);
    let sealed = |outcome: PageOutcome| matches!(outcome, PageOutcome::Page(rows) if rows.events.len() == 4);
    while !sealed(store.page(TrailQuery { size: 100, ..TrailQuery::default() }).await.expect("read")) {
        assert!(Instant::now() < deadline, "the events were not sealed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Purges events 0 and 1 (event 2 is newer than 150 days); of the uuids older than 70 days
    // (100 - 30), event 0's is in no table any more and goes, event 3's is still in `events`.
    assert_eq!(store.purge(150 * DAY, 100).await.expect("purge"), 2);
    let pool = super::schema::pool(&url).expect("pool");
    let client = pool.get().await.expect("connect");
    let kept: Vec<String> = client
        .query("SELECT uuid FROM trail_uuids ORDER BY uuid", &[])
        .await
        .expect("uuids")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(kept, ["event-1", "event-2", "event-3"], "event 0's uuid forgotten, event 3's kept");
    let retried = store.ingest(vec![plain_event(3, DAY), plain_event(1, 100 * DAY)], None).await.expect("ingest");
    assert_eq!((retried.accepted, retried.duplicates), (0, 2), "still duplicates");
    store.shutdown().await.expect("stop");
}
