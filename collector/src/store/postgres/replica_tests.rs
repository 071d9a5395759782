//! What only several replicas on one PostgreSQL can show: one trail whichever replica
//! ingests, one sealer at a time, and a sealer that lost its lease sealing nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::sealer::{seal_batch, take_lease, Sealed};
use super::test_cluster::fresh_database;
use super::{schema, PgStore};
use crate::store::page::PageOutcome;
use crate::store::query::TrailQuery;
use crate::store::test_support::new_event;
use crate::store::trail_store::TrailStore;

async fn sealed_uuids(store: &dyn TrailStore, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let outcome = store.page(TrailQuery { size: 100_000, ..TrailQuery::default() }).await.expect("read");
        let PageOutcome::Page(rows) = outcome else { panic!("a page") };
        let uuids: Vec<String> = rows
            .events
            .iter()
            .map(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).expect("JSON"))
            .map(|event| format!("event-{}", event["n"]))
            .collect();
        if uuids.len() >= count || Instant::now() > deadline {
            return uuids;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_ingesting_at_once_make_one_trail_with_each_event_once() {
    let url = fresh_database().await;
    let mut replicas: Vec<Arc<PgStore>> = Vec::new();
    for _ in 0..3 {
        replicas.push(Arc::new(PgStore::open(&url, None).await.expect("open")));
    }
    let mut sends = Vec::new();
    for (index, replica) in replicas.iter().enumerate() {
        for round in 0..10 {
            let replica = Arc::clone(replica);
            // Every batch also repeats events another replica sends: retries across replicas.
            let first = (index * 10 + round) * 20;
            let batch: Vec<_> = (first..first + 30).map(|n| new_event(n % 600, 0)).collect();
            sends.push(tokio::spawn(async move { replica.ingest(batch, None).await.expect("stored") }));
        }
    }
    let mut accepted = 0;
    for send in sends {
        accepted += send.await.expect("task").accepted;
    }
    assert_eq!(accepted, 600, "each distinct uuid is accepted exactly once, whichever replica got it");
    for replica in &replicas {
        let mut uuids = sealed_uuids(replica.as_ref(), 600).await;
        assert_eq!(uuids.len(), 600, "every replica reads the whole trail");
        uuids.sort();
        uuids.dedup();
        assert_eq!(uuids.len(), 600, "no event twice");
    }
    let pool = schema::pool(&url).expect("pool");
    let client = pool.get().await.expect("connect");
    let row = client.query_one("SELECT count(*), min(seq), max(seq) FROM events", &[]).await.expect("count");
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1), row.get::<_, i64>(2)), (600, 1, 600), "seqs 1..600");
    // Sealed now, retried on each replica: still duplicates (`trail_uuids` decides; `events`
    // has no uuid index of its own since version 9).
    for replica in &replicas {
        let retried = replica.ingest((0..30).map(|n| new_event(n, 0)).collect(), None).await.expect("stored");
        assert_eq!((retried.accepted, retried.duplicates), (0, 30), "a sealed event retried is a duplicate");
    }
    let count: i64 = client.query_one("SELECT count(*) FROM events", &[]).await.expect("count").get(0);
    assert_eq!(count, 600, "no event twice");
    for replica in &replicas {
        replica.shutdown().await.expect("stop");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealer_whose_lease_was_taken_over_seals_nothing() {
    let url = fresh_database().await;
    let pool = schema::pool(&url).expect("pool");
    schema::migrate(&pool).await.expect("schema");
    let stale = take_lease(&pool, "stale").await.expect("lease").expect("a free lease is taken");
    assert_eq!(take_lease(&pool, "other").await.expect("lease"), None, "a held lease is not taken");
    // The stale holder stops renewing; its lease runs out and another replica takes it.
    let client = pool.get().await.expect("connect");
    client.execute("UPDATE sealer_lease SET expires_at = now() - interval '1 second'", &[]).await.expect("expire");
    let current = take_lease(&pool, "other").await.expect("lease").expect("an expired lease is taken");
    assert!(current > stale, "each lease has a higher epoch");

    let store = PgStore::open(&url, None).await.expect("open");
    store.shutdown().await.expect("stop its own sealer; only the two holders above seal");
    let receipt = crate::store::postgres::ingest::ingest(&pool, &[new_event(1, 0)], None).await.expect("ingest");
    assert_eq!(receipt.accepted, 1);
    assert_eq!(seal_batch(&pool, stale).await.expect("seal"), Sealed::LostLease);
    let sealed: i64 = client.query_one("SELECT count(*) FROM events", &[]).await.expect("count").get(0);
    assert_eq!(sealed, 0, "the stale sealer's transaction changed nothing");
    assert_eq!(seal_batch(&pool, current).await.expect("seal"), Sealed::Events(1));
}

/// `SENDER`'s events numbered `numbers`, as one batch reporting `captured`.
fn numbered_batch(
    numbers: std::ops::RangeInclusive<u64>,
    captured: u64,
) -> (Vec<crate::store::NewEvent>, crate::completeness::accounting::SenderActivity) {
    let rows = numbers.clone().map(|n| new_event(usize::try_from(n).unwrap_or(0), 0)).collect();
    let activity = crate::completeness::accounting::SenderActivity {
        id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
        captured,
        reported_at_ms: 0,
        heartbeat_ms: 1000,
        numbered: numbers.map(|n| Some((n, 0))).collect(),
        named_lost: Vec::new(),
        stopping: false,
    };
    (rows, activity)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_senders_batches_on_several_replicas_are_accounted_once_and_its_hole_recorded_once() {
    use crate::completeness::accounting::SenderPolicy;
    let url = fresh_database().await;
    let replicas = [
        Arc::new(PgStore::open(&url, None).await.expect("open")),
        Arc::new(PgStore::open(&url, None).await.expect("open")),
    ];
    // The same batch reaches both replicas at once (a retry racing its first attempt),
    // then the sender's later batches go one to each; 21-30 never arrive.
    let racing: Vec<_> = replicas
        .iter()
        .map(|replica| {
            let replica = Arc::clone(replica);
            let (rows, activity) = numbered_batch(1..=10, 40);
            tokio::spawn(async move { replica.ingest(rows, Some(activity)).await.expect("stored").accepted })
        })
        .collect();
    let mut accepted = 0;
    for send in racing {
        accepted += send.await.expect("task");
    }
    for (replica, numbers) in [(&replicas[1], 11..=20), (&replicas[0], 31..=40)] {
        let (rows, activity) = numbered_batch(numbers, 40);
        accepted += replica.ingest(rows, Some(activity)).await.expect("stored").accepted;
    }
    assert_eq!(accepted, 30, "each event stored once");
    assert_eq!(sealed_uuids(replicas[0].as_ref(), 30).await.len(), 30);
    let due = SenderPolicy { hole_grace_ms: 0, silence_ms: i64::MAX, started_at_ms: 0, forget_stopped_ms: i64::MAX };
    let mut checks = Vec::new();
    for round in 0..6 {
        let replica = Arc::clone(&replicas[round % 2]);
        checks.push(tokio::spawn(async move { replica.check_senders(due).await.expect("checked") }));
    }
    let mut recorded = 0;
    for check in checks {
        recorded += check.await.expect("task");
    }
    assert_eq!(recorded, 1, "one record of the hole, whichever replicas checked");
    let pool = schema::pool(&url).expect("pool");
    let client = pool.get().await.expect("connect");
    let row = client.query_one("SELECT delivered, contiguous FROM senders", &[]).await.expect("the sender");
    assert_eq!((row.get::<_, i64>(0), row.get::<_, i64>(1)), (30, 40), "delivered counted once; 21-30 recorded");
    let gaps: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM events WHERE type = 'AuditSidecar::SenderGap')
                  + (SELECT count(*) FROM unsequenced WHERE type = 'AuditSidecar::SenderGap')",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(gaps, 1);
    for replica in &replicas {
        replica.shutdown().await.expect("stop");
    }
}
