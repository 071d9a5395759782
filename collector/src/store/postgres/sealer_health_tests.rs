//! A replica's health follows the sealing: with its sealer killed (as a crash would, the
//! lease kept until it expires) it reports that no live sealer holds the lease; with the
//! lease held by a sealer that does not seal, that the backlog is older than the bound;
//! once a live sealer takes over, healthy again. The gauges say the same throughout.

use std::time::{Duration, Instant};

use super::sealer::take_lease;
use super::test_cluster::fresh_database;
use super::{schema, PgStore};
use crate::store::test_support::new_event;
use crate::store::trail_store::TrailStore;
use crate::store::StoreError;

/// Polls `store`'s health (every 100 ms, at most 15 s) until `wanted` says yes; returns it.
async fn health_until(store: &PgStore, wanted: impl Fn(&Result<(), StoreError>) -> bool) -> Result<(), StoreError> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let health = store.health().await;
        if wanted(&health) || Instant::now() > deadline {
            return health;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn stalled_because(health: &Result<(), StoreError>, why: &str) -> bool {
    matches!(health, Err(StoreError::SealingStalled(problem)) if problem.contains(why))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_sealer_makes_the_replica_unhealthy_with_the_reason_until_a_sealer_takes_over() {
    let url = fresh_database().await;
    let replica = PgStore::open(&url, None).await.expect("open").with_backlog_bound(Duration::from_secs(1));
    health_until(&replica, Result::is_ok).await.expect("healthy once its sealer holds the lease");
    let sealing = replica.gauges().await.expect("gauges").sealing.expect("sealing gauges");
    assert_eq!((sealing.lease_live, sealing.oldest_unsealed_ms, sealing.unsealed_events), (true, 0, 0));

    replica.kill_sealer();
    replica.ingest(vec![new_event(1, 0)], None).await.expect("acknowledged without a sealer");
    let health = health_until(&replica, |health| stalled_because(health, "no live sealer holds the lease")).await;
    assert!(stalled_because(&health, "no live sealer holds the lease"), "{health:?}");
    let sealing = replica.gauges().await.expect("gauges").sealing.expect("sealing gauges");
    assert!(!sealing.lease_live && sealing.oldest_unsealed_ms > 0 && sealing.unsealed_events == 1, "{sealing:?}");

    // A holder that renews nothing and seals nothing: the lease is live, the queue is not moving.
    let pool = schema::pool(&url).expect("pool");
    take_lease(&pool, "stuck").await.expect("lease").expect("the expired lease is taken");
    let health = replica.health().await;
    assert!(stalled_because(&health, "more than the 1 s bound"), "{health:?}");
    let sealing = replica.gauges().await.expect("gauges").sealing.expect("sealing gauges");
    assert!(sealing.lease_live && sealing.oldest_unsealed_ms > 1000, "{sealing:?}");

    // A live replica takes the lease when the stuck one's expires, and seals the backlog.
    let rescuer = PgStore::open(&url, None).await.expect("open a second replica");
    health_until(&replica, Result::is_ok).await.expect("healthy again once a live sealer sealed the backlog");
    let sealing = replica.gauges().await.expect("gauges").sealing.expect("sealing gauges");
    assert_eq!((sealing.lease_live, sealing.oldest_unsealed_ms, sealing.unsealed_events), (true, 0, 0));
    rescuer.shutdown().await.expect("stop");
}
