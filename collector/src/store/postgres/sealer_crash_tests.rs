//! A sealer that dies in the middle of moving a batch (its backend terminated while its
//! one move statement runs, as a lost host or a `kill -9` would end it) loses nothing and
//! duplicates nothing: PostgreSQL rolls the transaction back, the events wait where they
//! were, and the next lease holder seals each of them exactly once, seqs 1..n, one chain.

use std::time::{Duration, Instant};

use super::sealer::{seal_batch, take_lease, Sealed};
use super::test_cluster::fresh_database;
use super::{ingest, schema};
use crate::store::test_support::new_event;

/// The pid of the backend whose sealing move waits for a lock, once there is one (10 s at most).
async fn blocked_sealer_pid(client: &deadpool_postgres::Client) -> Option<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let row = client
            .query_opt(
                "SELECT pid FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO events%'",
                &[],
            )
            .await
            .expect("pg_stat_activity");
        if let Some(row) = row {
            return Some(row.get(0));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealer_killed_inside_its_move_loses_nothing_and_the_next_one_seals_each_event_once() {
    let url = fresh_database().await;
    let pool = schema::pool(&url).expect("pool");
    schema::migrate(&pool).await.expect("schema");
    let events: Vec<_> = (0..50).map(|n| new_event(n, 0)).collect();
    assert_eq!(ingest::ingest(&pool, &events, None).await.expect("ingest").accepted, 50);

    // The doomed sealer has its own pool: its connection does not come back.
    let doomed_pool = schema::pool(&url).expect("pool");
    let doomed_epoch = take_lease(&doomed_pool, "doomed").await.expect("lease").expect("a free lease");
    // Hold `events` so the sealer's move statement (lease renewed, head locked, links
    // computed) waits inside its transaction: the middle of a batch, deterministically.
    let mut holder = pool.get().await.expect("connect");
    let hold = holder.transaction().await.expect("begin");
    hold.batch_execute("LOCK TABLE events IN EXCLUSIVE MODE").await.expect("lock events");
    let doomed = tokio::spawn(async move { seal_batch(&doomed_pool, doomed_epoch).await });
    let observer = pool.get().await.expect("connect");
    let pid = blocked_sealer_pid(&observer).await.expect("the sealer waits inside its move statement");
    let terminated: bool =
        observer.query_one("SELECT pg_terminate_backend($1)", &[&pid]).await.expect("terminate").get(0);
    assert!(terminated, "the sealer's backend was terminated");
    let outcome = doomed.await.expect("task");
    assert!(outcome.is_err(), "the killed sealer's batch failed: {outcome:?}");
    hold.rollback().await.expect("release events");

    let state = observer
        .query_one(
            "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM unsequenced), (SELECT seq FROM chain_head)",
            &[],
        )
        .await
        .expect("state");
    let state: (i64, i64, i64) = (state.get(0), state.get(1), state.get(2));
    assert_eq!(state, (0, 50, 0), "(sealed, waiting, head) after the kill: nothing of the batch stayed, nothing went");

    // Its lease runs out; the next replica takes it and seals the same events.
    observer.execute("UPDATE sealer_lease SET expires_at = now() - interval '1 second'", &[]).await.expect("expire");
    let next = take_lease(&pool, "next").await.expect("lease").expect("the expired lease is taken");
    assert_eq!(seal_batch(&pool, next).await.expect("seal"), Sealed::Events(50));
    assert_eq!(seal_batch(&pool, next).await.expect("seal"), Sealed::Events(0), "nothing is left to seal twice");

    let sealed = observer
        .query_one(
            "SELECT count(*), count(DISTINCT uuid), min(seq), max(seq), (SELECT count(*) FROM unsequenced),
                    (SELECT seq FROM chain_head),
                    (SELECT count(*) FROM events a JOIN events b ON b.seq = a.seq + 1 WHERE b.chain_prev <> a.chain_hash)
             FROM events",
            &[],
        )
        .await
        .expect("sealed");
    let sealed: (i64, i64, i64, i64, i64, i64, i64) =
        (sealed.get(0), sealed.get(1), sealed.get(2), sealed.get(3), sealed.get(4), sealed.get(5), sealed.get(6));
    assert_eq!(
        sealed,
        (50, 50, 1, 50, 0, 50, 0),
        "(events, distinct uuids, first seq, last seq, waiting, head, broken links): each event once, seqs 1..50, one chain"
    );
}
