//! A sender whose batch SQLite's full write queue refused (503 `queue-full`) is alive and
//! retries it: the senders' check must record neither those numbers as lost (from an earlier
//! heartbeat's count) nor the sender as fallen silent because of the refusal; once the
//! refusals stop, its clocks run again.

use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::store::SqliteStore;
use crate::completeness::accounting::{SenderActivity, SenderPolicy};
use crate::store::test_support::new_event;
use crate::store::trail_store::TrailStore;
use crate::store::StoreError;

const SENDER: &str = "CCCCCCCCCCCCCCCCCCCCCA";

/// `SENDER`'s report counting `captured`, with a batch of the events numbered `numbers`.
fn activity(captured: u64, numbers: impl Iterator<Item = u64>) -> SenderActivity {
    SenderActivity {
        id: SENDER.into(),
        captured,
        reported_at_ms: 0,
        heartbeat_ms: 1000,
        numbered: numbers.map(|n| Some((n, 0))).collect(),
        named_lost: Vec::new(),
        stopping: false,
    }
}

/// The heartbeat that counted 12-13 and the last accepted call are set an hour back in the
/// table (not waited for); 12-13 are refused by the full queue now: a check with a 10-minute
/// grace records nothing. An hour later without a call, the stop is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_refused_by_the_full_queue_is_neither_recorded_as_losing_what_it_retries_nor_as_silent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.db");
    let store = SqliteStore::open(&path, 1, None).expect("open");
    let first = (1..=11).map(|n| new_event(n, 0)).collect();
    assert_eq!(store.ingest(first, Some(activity(11, 1..=11))).await.expect("stored").accepted, 11);
    store.ingest(Vec::new(), Some(activity(13, std::iter::empty()))).await.expect("a heartbeat");
    let an_hour_ago = "UPDATE senders SET last_heard_ms = last_heard_ms - 3600000,
                              claimed_seen_at_ms = claimed_seen_at_ms - 3600000;
                       UPDATE sender_pending SET seen_at_ms = seen_at_ms - 3600000;";
    Connection::open(&path).expect("open").execute_batch(an_hour_ago).expect("an hour ago");

    // The writer blocks inside a transaction (another connection holds the write lock) and
    // the queue of one fills: a call then is refused at once, one queued never answers.
    let mut blocker = Connection::open(&path).expect("open blocker");
    let lock = blocker.transaction_with_behavior(TransactionBehavior::Immediate).expect("lock");
    let answered = |outcome: Result<Result<_, StoreError>, _>| outcome.ok().map(|result| result.map(|_| ()));
    let mut filled = false;
    for n in 100..200 {
        let outcome = tokio::time::timeout(Duration::from_millis(50), store.ingest(vec![new_event(n, 0)], None)).await;
        if matches!(answered(outcome), Some(Err(StoreError::QueueFull))) {
            filled = true;
            break;
        }
    }
    assert!(filled, "the queue of one filled behind the blocked writer");
    tokio::time::sleep(Duration::from_millis(200)).await; // the writer is inside its transaction
    let filler = tokio::time::timeout(Duration::from_millis(50), store.ingest(vec![new_event(200, 0)], None)).await;
    assert!(matches!(answered(filler), Some(Err(StoreError::QueueFull))), "still full");
    let refused = store.ingest((12..=13).map(|n| new_event(n, 0)).collect(), Some(activity(13, 12..=13))).await;
    assert!(matches!(refused, Err(StoreError::QueueFull)), "refused: {refused:?}");
    drop(lock);

    let policy =
        SenderPolicy { hole_grace_ms: 600_000, silence_ms: 600_000, started_at_ms: 0, forget_stopped_ms: i64::MAX };
    assert_eq!(store.check_senders(policy).await.expect("check"), 0, "nothing lost, nobody silent");
    Connection::open(&path).expect("open").execute_batch(an_hour_ago).expect("an hour later, nothing came");
    assert_eq!(store.check_senders(policy).await.expect("check"), 1, "silent since the refusal: the stop");
    store.shutdown().await.expect("stop");
}
