//! What writing each event once at a position could get wrong, shown not to happen: a
//! position whose transaction rolled back is a hole the sealer skips (never sealed, never
//! waited for); an ingest transaction still open with a position holds the sealer back
//! rather than being overtaken by later positions, and so does one prepared (two-phase);
//! a long transaction in another database of the same server does not hold it back;
//! retention takes the rollup rows it brings to zero away; a chart is of one moment even
//! when a seal commits between its statements.

use super::ingest_rows::insert_events;
use super::sealer::{high_water, seal_at_least, seal_batch, take_lease, Sealed};
use super::test_cluster::fresh_database;
use super::{chain, ingest, schema};
use crate::store::test_support::new_event;

/// (seq, position, uuid) of every sealed event, in seq order.
async fn sealed(client: &deadpool_postgres::Client) -> Vec<(i64, i64, String)> {
    client
        .query("SELECT s.seq, s.position, e.uuid FROM event_seals s JOIN events e USING (position) ORDER BY s.seq", &[])
        .await
        .expect("seals")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_whose_transaction_rolled_back_is_a_hole_that_is_skipped_never_sealed() {
    let url = fresh_database().await;
    let pool = schema::pool(&url).expect("pool");
    schema::migrate(&pool).await.expect("schema");
    let mut client = pool.get().await.expect("connect");
    let doomed = client.transaction().await.expect("begin");
    assert_eq!(insert_events(&doomed, &[new_event(1, 0)], 0).await.expect("insert"), [true]);
    doomed.rollback().await.expect("rolled back: position 1 is a hole");
    let later: Vec<_> = (2..4).map(|n| new_event(n, 0)).collect();
    assert_eq!(ingest::ingest(&pool, &later, None).await.expect("ingest").accepted, 2);

    let epoch = take_lease(&pool, "sealer").await.expect("lease").expect("a free lease");
    assert_eq!(seal_at_least(&pool, epoch, 2).await.expect("seal"), 2);
    let expected = [(1, 2, "event-2".to_owned()), (2, 3, "event-3".to_owned())];
    assert_eq!(sealed(&client).await, expected, "seqs 1 and 2 at positions 2 and 3: the hole has no seq");
    let head: i64 = client.query_one("SELECT position FROM chain_head", &[]).await.expect("head").get(0);
    assert_eq!(head, 3);

    // The rolled-back uuid was never taken: sent again, it is a new event, sealed after them.
    assert_eq!(ingest::ingest(&pool, &[new_event(1, 0)], None).await.expect("ingest").accepted, 1);
    assert_eq!(seal_at_least(&pool, epoch, 1).await.expect("seal"), 1);
    assert_eq!(sealed(&client).await.last(), Some(&(3, 4, "event-1".to_owned())));
    assert_eq!(seal_batch(&pool, epoch).await.expect("seal"), Sealed::Events(0), "nothing sealed twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_transaction_still_open_holds_the_sealer_back_instead_of_being_overtaken() {
    let url = fresh_database().await;
    let pool = schema::pool(&url).expect("pool");
    schema::migrate(&pool).await.expect("schema");
    let mut slow_client = pool.get().await.expect("connect");
    let slow = slow_client.transaction().await.expect("begin");
    insert_events(&slow, &[new_event(1, 0)], 0).await.expect("position 1, not committed yet");
    assert_eq!(ingest::ingest(&pool, &[new_event(2, 0)], None).await.expect("ingest").accepted, 1, "position 2");

    let epoch = take_lease(&pool, "sealer").await.expect("lease").expect("a free lease");
    // While position 1's transaction is open, the high water is not known: the sealer
    // renews its lease and numbers nothing, not even the committed position 2.
    assert_eq!(high_water(&pool).await.expect("high water"), None, "position 1 may still commit");
    assert_eq!(seal_batch(&pool, epoch).await.expect("seal"), Sealed::Events(0));
    let observer = pool.get().await.expect("connect");
    let seals: i64 = observer.query_one("SELECT count(*) FROM event_seals", &[]).await.expect("count").get(0);
    assert_eq!(seals, 0, "position 2 committed, but is not sealed before position 1");

    slow.commit().await.expect("commit position 1");
    assert_eq!(seal_at_least(&pool, epoch, 2).await.expect("seal"), 2);
    let expected = [(1, 1, "event-1".to_owned()), (2, 2, "event-2".to_owned())];
    assert_eq!(sealed(&observer).await, expected, "both, in position order");
}

/// A plain connection to `url` (not pooled), its connection task running.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_transaction_in_another_database_of_the_server_does_not_hold_sealing_back() {
    let url = fresh_database().await;
    let pool = schema::pool(&url).expect("pool");
    schema::migrate(&pool).await.expect("schema");
    // Another application's batch job on the same server: a writing transaction (it has an
    // id) older than every high water below, open throughout.
    let other = connect(&fresh_database().await).await;
    other.batch_execute("BEGIN; SELECT pg_current_xact_id()").await.expect("a long transaction elsewhere");
    assert_eq!(ingest::ingest(&pool, &[new_event(1, 0), new_event(2, 0)], None).await.expect("ingest").accepted, 2);

    assert_eq!(high_water(&pool).await.expect("high water"), Some(2), "it cannot hold a position here");
    let epoch = take_lease(&pool, "sealer").await.expect("lease").expect("a free lease");
    assert_eq!(seal_batch(&pool, epoch).await.expect("seal"), Sealed::Events(2));
    other.batch_execute("ROLLBACK").await.expect("the batch job ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepared_transaction_holding_a_position_holds_the_sealer_back_one_elsewhere_does_not() {
    let url = fresh_database().await;
    let pool = schema::pool(&url).expect("pool");
    schema::migrate(&pool).await.expect("schema");
    let gid = format!("audit-test-{}", url.rsplit('/').next().unwrap_or_default());
    // Prepared in another database: its backend has let its id go; it is still running.
    let other = connect(&fresh_database().await).await;
    other.batch_execute("BEGIN; SELECT pg_current_xact_id()").await.expect("begin elsewhere");
    other.batch_execute(&format!("PREPARE TRANSACTION '{gid}-elsewhere'")).await.expect("prepared elsewhere");
    // Prepared here, holding position 1: only the prepared list shows it now.
    let here = pool.get().await.expect("connect");
    here.batch_execute("BEGIN").await.expect("begin");
    insert_events(&here, &[new_event(1, 0)], 0).await.expect("position 1");
    here.batch_execute(&format!("PREPARE TRANSACTION '{gid}'")).await.expect("prepared here");
    assert_eq!(ingest::ingest(&pool, &[new_event(2, 0)], None).await.expect("ingest").accepted, 1, "position 2");

    assert_eq!(high_water(&pool).await.expect("high water"), None, "position 1 may still commit");
    here.batch_execute(&format!("COMMIT PREPARED '{gid}'")).await.expect("commit position 1");
    let epoch = take_lease(&pool, "sealer").await.expect("lease").expect("a free lease");
    assert_eq!(seal_at_least(&pool, epoch, 2).await.expect("seal"), 2, "the one prepared elsewhere holds nothing");
    let observer = pool.get().await.expect("connect");
    let expected = [(1, 1, "event-1".to_owned()), (2, 2, "event-2".to_owned())];
    assert_eq!(sealed(&observer).await, expected, "both, in position order");
    other.batch_execute(&format!("ROLLBACK PREPARED '{gid}-elsewhere'")).await.expect("ends elsewhere");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_the_rollup_rows_it_brings_to_zero() {
    let url = fresh_database().await;
    let pool = schema::pool(&url).expect("pool");
    schema::migrate(&pool).await.expect("schema");
    let user = |mut event: crate::store::NewEvent, id: &str| {
        event.user_id = Some(id.to_owned());
        event.user_email = Some(format!("{id}@example.com"));
        event
    };
    // Hour 0 holds two events of one user; hour 5 one event of another.
    let events = vec![
        user(new_event(1, 1_000), "old"),
        user(new_event(2, 2_000), "old"),
        user(new_event(3, 5 * 3_600_000), "new"),
    ];
    assert_eq!(ingest::ingest(&pool, &events, None).await.expect("ingest").accepted, 3);
    let epoch = take_lease(&pool, "sealer").await.expect("lease").expect("a free lease");
    assert_eq!(seal_at_least(&pool, epoch, 3).await.expect("seal"), 3);
    let client = pool.get().await.expect("connect");
    let rows = |table: &'static str| {
        let client = &client;
        async move {
            let sql = format!("SELECT hour, events FROM {table} ORDER BY hour");
            client
                .query(&sql, &[])
                .await
                .expect("rollup")
                .iter()
                .map(|row| (row.get(0), row.get(1)))
                .collect::<Vec<(i64, i64)>>()
        }
    };
    for table in ["activity_hourly", "activity_user_id_hourly", "activity_user_email_hourly"] {
        assert_eq!(rows(table).await, [(0, 2), (5, 1)], "{table} counts at sealing");
    }
    assert_eq!(chain::purge(&pool, 3_600_000, 100, None).await.expect("purge"), 2);
    for table in ["activity_hourly", "activity_user_id_hourly", "activity_user_email_hourly"] {
        assert_eq!(rows(table).await, [(5, 1)], "{table}: hour 0 went with its last events, no zero row stays");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chart_counts_one_moment_of_the_trail_even_when_a_seal_commits_between_its_statements() {
    use crate::store::activity_plan::{ActivityOutcome, BucketWidth};
    use crate::store::query::EventFilters;
    let url = fresh_database().await;
    let pool = schema::pool(&url).expect("pool");
    schema::migrate(&pool).await.expect("schema");
    // X in a whole hour of the window (summed from the rollup), Y in its partial first hour
    // (counted from `events`): the chart reads them in two statements.
    let (x, y) = (new_event(1, 5_400_000), new_event(2, 2_700_000));
    assert_eq!(ingest::ingest(&pool, &[x, y], None).await.expect("ingest").accepted, 2);
    // The sealer's writes for both, by hand, in a transaction that keeps the chart's second
    // statement (it reads `chain_head`) waiting until they commit; its first one has run.
    let mut sealer_client = pool.get().await.expect("connect");
    let sealing = sealer_client.transaction().await.expect("begin");
    sealing.batch_execute("LOCK TABLE chain_head IN ACCESS EXCLUSIVE MODE").await.expect("lock the head");
    sealing
        .batch_execute(
            "INSERT INTO event_seals (seq, position, chain_prev, chain_hash)
                 VALUES (1, 1, '\\x00', '\\x01'), (2, 2, '\\x01', '\\x02');
             UPDATE chain_head SET seq = 2, position = 2 WHERE id = 1;",
        )
        .await
        .expect("seal both");
    let filters = EventFilters { since_ms: Some(1_800_000), until_ms: Some(10_800_000), ..EventFilters::default() };
    let chart_pool = pool.clone();
    let chart = tokio::spawn(async move {
        super::activity::activity(&chart_pool, &filters, BucketWidth::Hour).await.expect("activity")
    });
    let observer = pool.get().await.expect("connect");
    let mut waiting = 0_i64;
    for _ in 0..500 {
        waiting = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .expect("waiting")
            .get(0);
        if waiting > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(waiting, 1, "the chart waits for the head's lock");
    sealing.commit().await.expect("the seal commits");
    let ActivityOutcome::Buckets(buckets) = chart.await.expect("chart task") else { panic!("too many buckets") };
    let counted: i64 = buckets.iter().map(|bucket| bucket.counts.total()).sum();
    assert!(
        counted == 0 || counted == 2,
        "the chart mixes two moments: {counted} of the 2 sealed together, {buckets:?}"
    );
}
