//! Back-pressure on a real PostgreSQL: with sealing stopped (another holder took the lease),
//! ingest past the bound refuses a batch that carries events with the typed error and
//! stores nothing of it, not even its sender's accounting; a heartbeat and a batch of gap
//! records still go in; once a live sealer has sealed the queue, the refused batch is
//! accepted when sent again, and every event is in the trail exactly once. A refused sender
//! is not recorded as lost or silent, and a cursor of an event still waiting is "not readable
//! yet", not unknown.

use std::time::{Duration, Instant};

use audit_event::DELIVERY_GAP_TYPE;

use super::test_cluster::fresh_database;
use super::{schema, PgStore};
use crate::completeness::accounting::SenderActivity;
use crate::store::test_support::new_event;
use crate::store::trail_store::TrailStore;
use crate::store::{NewEvent, StoreError};

/// A valid sender id (16 bytes in base64url: the last character carries 2 bits, here 0), as
/// the records the check writes name it.
const SENDER: &str = "BBBBBBBBBBBBBBBBBBBBBA";

/// `SENDER`'s events numbered `numbers` (uuids `event-<n>`), reporting `captured`.
fn numbered(numbers: std::ops::RangeInclusive<u64>, captured: u64) -> (Vec<NewEvent>, SenderActivity) {
    let rows = numbers.clone().map(|n| new_event(usize::try_from(n).unwrap_or(0), 0)).collect();
    (rows, activity(captured, numbers.map(|n| Some((n, 0))).collect()))
}

fn activity(captured: u64, numbered: Vec<Option<(u64, i64)>>) -> SenderActivity {
    SenderActivity {
        id: SENDER.into(),
        captured,
        reported_at_ms: 0,
        heartbeat_ms: 1000,
        numbered,
        named_lost: Vec::new(),
        stopping: false,
    }
}

/// Stops sealing for the test: a holder that seals nothing takes the lease under a new epoch
/// (the replica's sealer finds its epoch gone and waits for the lease to expire: an hour).
/// Returns that epoch.
async fn stall_sealing(client: &deadpool_postgres::Client) -> i64 {
    client
        .query_one(
            "UPDATE sealer_lease SET epoch = epoch + 1, holder = 'stalled-by-test', expires_at = now() + interval '1 hour'
             WHERE id = 1 RETURNING epoch",
            &[],
        )
        .await
        .expect("take the lease")
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_bound_a_batch_is_refused_whole_a_heartbeat_is_not_and_sealing_lets_it_in_again() {
    let url = fresh_database().await;
    let replica = PgStore::open(&url, None).await.expect("open").with_max_unsealed_events(10);
    let pool = schema::pool(&url).expect("pool");
    let client = pool.get().await.expect("connection");
    stall_sealing(&client).await;
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.expect(sql).get::<_, i64>(0) }
    };

    // Up to the bound nothing changes: 11 events go in, one past the bound of 10.
    let (rows, sender) = numbered(1..=11, 11);
    let receipt = replica.ingest(rows, Some(sender)).await.expect("under the bound: accepted");
    assert_eq!(receipt.accepted, 11);

    // Past it, the next batch is refused, and nothing of it is stored: not its events, not
    // their uuids (a retry must not be taken for a duplicate), not its sender's numbers.
    let (rows, sender) = numbered(12..=13, 13);
    let refused = replica.ingest(rows.clone(), Some(sender.clone())).await;
    assert!(
        matches!(refused, Err(StoreError::SealingBehind { unsealed: 11, bound: 10 })),
        "past the bound: {refused:?}"
    );
    let stored = "SELECT (SELECT count(*) FROM unsequenced WHERE uuid IN ('event-12', 'event-13'))
                       + (SELECT count(*) FROM trail_uuids WHERE uuid IN ('event-12', 'event-13'))";
    assert_eq!(count(stored).await, 0, "nothing of the refused batch was stored");
    assert_eq!(count("SELECT delivered FROM senders").await, 11, "the refused numbers were not accounted");
    assert_eq!(count("SELECT captured FROM senders").await, 11, "nor its report");

    // A heartbeat is how a sender says what it holds: taken whatever the queue.
    let heartbeat = replica.ingest(Vec::new(), Some(activity(13, Vec::new()))).await.expect("a heartbeat goes in");
    assert_eq!((heartbeat.accepted, heartbeat.duplicates), (0, 0));
    assert_eq!(count("SELECT captured FROM senders").await, 13, "the heartbeat's report is stored");
    // So is a batch whose only events are a filter's gap records: how losses get reported.
    let mut gap = new_event(100, 0);
    gap.event_type = DELIVERY_GAP_TYPE.to_owned();
    assert_eq!(replica.ingest(vec![gap], None).await.expect("a gap record goes in").accepted, 1);

    // A live sealer again (the stuck lease ends): it seals the queue, and the refused
    // batch, sent again, goes in.
    client.execute("UPDATE sealer_lease SET expires_at = '-infinity' WHERE id = 1", &[]).await.expect("free");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let sealing = replica.gauges().await.expect("gauges").sealing.expect("sealing gauges");
        assert_eq!(sealing.max_unsealed_events, 10);
        if sealing.lease_live && sealing.unsealed_events == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the queue was not sealed within 15 s: {sealing:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let receipt = replica.ingest(rows, Some(sender)).await.expect("the sealer caught up: accepted again");
    assert_eq!((receipt.accepted, receipt.duplicates), (2, 0));
    assert_eq!(count("SELECT delivered FROM senders").await, 13, "each number accounted once");

    let deadline = Instant::now() + Duration::from_secs(15);
    while count("SELECT count(*) FROM unsequenced").await > 0 {
        assert!(Instant::now() < deadline, "the retried batch was not sealed within 15 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let trail = client.query("SELECT uuid FROM events ORDER BY seq", &[]).await.expect("trail");
    let mut uuids: Vec<String> = trail.iter().map(|row| row.get(0)).collect();
    uuids.sort();
    let mut expected: Vec<String> = (1..=13).chain([100]).map(|n| format!("event-{n}")).collect();
    expected.sort();
    assert_eq!(uuids, expected, "every accepted event in the trail exactly once, nothing else");
    replica.shutdown().await.expect("stop");
}

/// A sender whose batch the collector refuses is alive and still holds those numbers: the
/// collector must not record them as lost (`SenderGap` from its heartbeat's count) nor the
/// sender as fallen silent (`SenderStopped`) because of its own refusals. Here the heartbeat
/// that counted 12-13 and the last accepted call are an hour old (set back in the table, not
/// waited for), and 12-13 were just refused: a check with a 10-minute grace records nothing.
/// Once refusals stop, the clocks run again: the same numbers still missing past the grace
/// are recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_sender_is_neither_recorded_as_losing_what_it_retries_nor_as_silent() {
    use crate::completeness::accounting::SenderPolicy;
    use crate::completeness::ledger::PendingRange;
    use audit_event::sender::{SENDER_GAP_TYPE, SENDER_STOPPED_TYPE};

    let url = fresh_database().await;
    let replica = PgStore::open(&url, None).await.expect("open").with_max_unsealed_events(10);
    let pool = schema::pool(&url).expect("pool");
    let client = pool.get().await.expect("connection");
    let epoch = stall_sealing(&client).await;
    let (rows, sender) = numbered(1..=11, 11);
    assert_eq!(replica.ingest(rows, Some(sender)).await.expect("under the bound").accepted, 11);
    // The worker's heartbeat counts 12-13, queued in it and not yet sent, and its gap record
    // names 20-25 (dropped): 12-19 is a hole below them, 12-13 also beyond the count.
    replica.ingest(Vec::new(), Some(activity(13, Vec::new()))).await.expect("a heartbeat goes in");
    let mut gap = new_event(100, 0);
    gap.event_type = DELIVERY_GAP_TYPE.to_owned();
    let dropped = PendingRange {
        range: audit_event::SeqRange { first: 20, last: 25 },
        first_at_ms: 0,
        last_at_ms: 0,
        seen_at_ms: 0,
    };
    let reported = SenderActivity { named_lost: vec![dropped], ..activity(25, vec![None]) };
    replica.ingest(vec![gap], Some(reported)).await.expect("a gap record goes in");
    let an_hour_ago = "UPDATE senders SET last_heard_ms = last_heard_ms - 3600000,
                              claimed_seen_at_ms = claimed_seen_at_ms - 3600000;
                       UPDATE sender_pending SET seen_at_ms = seen_at_ms - 3600000";
    client.batch_execute(an_hour_ago).await.expect("an hour ago");

    let (rows, sender) = numbered(12..=13, 13);
    let refused = replica.ingest(rows, Some(sender)).await;
    assert!(matches!(refused, Err(StoreError::SealingBehind { .. })), "past the bound: {refused:?}");

    let policy =
        SenderPolicy { hole_grace_ms: 600_000, silence_ms: 600_000, started_at_ms: 0, forget_stopped_ms: i64::MAX };
    let recorded = |event_type: &'static str| {
        let client = &client;
        async move {
            let sql = "SELECT count(*) FROM unsequenced WHERE type = $1";
            client.query_one(sql, &[&event_type]).await.expect("records").get::<_, i64>(0)
        }
    };
    assert_eq!(super::senders::check_senders(&pool, epoch, policy).await.expect("check"), 0, "nothing recorded");
    assert_eq!((recorded(SENDER_GAP_TYPE).await, recorded(SENDER_STOPPED_TYPE).await), (0, 0));

    client.batch_execute(an_hour_ago).await.expect("an hour later, nothing came");
    assert!(super::senders::check_senders(&pool, epoch, policy).await.expect("check") > 0);
    let recorded_now = (recorded(SENDER_GAP_TYPE).await, recorded(SENDER_STOPPED_TYPE).await);
    assert_eq!(recorded_now, (1, 1), "silent since the refusals ended: 12-19 lost, then the stop");
    replica.shutdown().await.expect("stop");
}

/// A cursor naming an acknowledged event that still waits for the sealer is "not readable
/// yet", never "no event with this uuid was stored" (a 404 that a consumer would take as a
/// loss, and that ends `tail`); once sealed, the page starts at it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cursor_of_an_event_waiting_for_the_sealer_is_not_readable_yet_not_unknown() {
    use crate::store::page::PageOutcome;
    use crate::store::query::TrailQuery;

    let url = fresh_database().await;
    let replica = PgStore::open(&url, None).await.expect("open");
    let pool = schema::pool(&url).expect("pool");
    let client = pool.get().await.expect("connection");
    stall_sealing(&client).await;
    assert_eq!(replica.ingest(vec![new_event(1, 0)], None).await.expect("acknowledged").accepted, 1);
    let from = |uuid: &str| TrailQuery { from: Some(uuid.to_owned()), size: 10, ..TrailQuery::default() };
    let waiting = replica.page(from("event-1")).await.expect("read");
    assert!(matches!(waiting, PageOutcome::NotYetReadableFrom), "acknowledged, not sealed: {waiting:?}");
    let unknown = replica.page(from("event-2")).await.expect("read");
    assert!(matches!(unknown, PageOutcome::UnknownFrom), "never stored: {unknown:?}");

    client.execute("UPDATE sealer_lease SET expires_at = '-infinity' WHERE id = 1", &[]).await.expect("free");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match replica.page(from("event-1")).await.expect("read") {
            PageOutcome::Page(rows) => {
                assert_eq!(rows.events.len(), 1, "the page starts at the cursor");
                break;
            }
            PageOutcome::NotYetReadableFrom => {}
            other => panic!("sealed or waiting, never {other:?}"),
        }
        assert!(Instant::now() < deadline, "event-1 was not sealed within 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    replica.shutdown().await.expect("stop");
}
