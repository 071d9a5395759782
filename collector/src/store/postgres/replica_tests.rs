//! What only several replicas on one PostgreSQL can show: one trail whichever replica
//! ingests, one sealer at a time, and a sealer that lost its lease sealing nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::sealer::{seal_batch, take_lease, Sealed};
use super::test_cluster::fresh_database;
use super::{schema, PgStore};
use crate::store::reader::PageOutcome;
use crate::store::test_support::new_event;
use crate::store::trail_query::TrailQuery;
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
    let receipt = crate::store::postgres::ingest::ingest(&pool, &[new_event(1, 0)]).await.expect("ingest");
    assert_eq!(receipt.accepted, 1);
    assert_eq!(seal_batch(&pool, stale).await.expect("seal"), Sealed::LostLease);
    let sealed: i64 = client.query_one("SELECT count(*) FROM events", &[]).await.expect("count").get(0);
    assert_eq!(sealed, 0, "the stale sealer's transaction changed nothing");
    assert_eq!(seal_batch(&pool, current).await.expect("seal"), Sealed::Events(1));
}
