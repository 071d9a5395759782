//! The behaviour every [`TrailStore`] must have, written once and run against each store
//! (`store_contract!` below instantiates it for SQLite and for PostgreSQL on a throwaway
//! server), so the two cannot quietly differ. A store may make events readable a moment
//! after the acknowledgement (PostgreSQL seals them asynchronously), so reads wait, within
//! a bound, for what was acknowledged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use audit_event::sender::{SENDER_FINISHED_TYPE, SENDER_GAP_TYPE, SENDER_RESUMED_TYPE, SENDER_STOPPED_TYPE};
use audit_event::{AuditEvent, DeliveryGap, IngestReceipt, SeqRange};

use super::activity_plan::{ActivityBucket, ActivityOutcome, BucketWidth, OutcomeCounts, HOUR_MS};
use super::new_event::NewEvent;
use super::page::{PageOutcome, PageRows};
use super::postgres::test_cluster::fresh_database;
use super::postgres::PgStore;
use super::query::{EventFilters, TrailOrder, TrailQuery};
use super::sqlite::SqliteStore;
use super::trail_store::TrailStore;
use super::StoreError;
use crate::chain::link::{canonical_body, digest_from_hex, link_hash, GENESIS};
use crate::chain::signing::TrailSigner;
use crate::completeness::accounting::{SenderActivity, SenderPolicy};

/// A store under test and whatever must live as long as it.
struct Opened {
    store: Arc<dyn TrailStore>,
    _dir: Option<tempfile::TempDir>,
}

fn signer() -> TrailSigner {
    TrailSigner::from_seed([7; 32])
}

async fn open_sqlite() -> Opened {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(&dir.path().join("audit.db"), 64, Some(signer())).expect("open SQLite");
    Opened { store: Arc::new(store), _dir: Some(dir) }
}

async fn open_postgres() -> Opened {
    let url = fresh_database().await;
    let store = PgStore::open(&url, Some(signer())).await.expect("open PostgreSQL");
    Opened { store: Arc::new(store), _dir: None }
}

/// `event-<n>` with the given timestamp and request/identity columns.
fn event(n: usize, timestamp_ms: i64, method: &str, status: u16, user: &str) -> NewEvent {
    let body = format!(
        r#"{{"uuid":"event-{n}","timestamp":{timestamp_ms},"type":"T{}","user_id":"{user}","user_name":"{user}-login","method":"{method}","n":{n}}}"#,
        n % 2
    );
    NewEvent {
        uuid: format!("event-{n}"),
        timestamp_ms,
        event_type: format!("T{}", n % 2),
        db_user_id: None,
        user_email: Some(format!("{user}@example.com")),
        user_id: Some(user.to_owned()),
        user_name: Some(format!("{user}-login")),
        method: method.to_owned(),
        status: Some(status),
        canonical: canonical_body(&body).expect("JSON"),
        body,
    }
}

fn plain(n: usize) -> NewEvent {
    event(n, 1_700_000_000_000 + i64::try_from(n).unwrap_or(0), "GET", 200, "alice")
}

fn query(from: Option<&str>, size: usize) -> TrailQuery {
    TrailQuery { from: from.map(str::to_owned), size, ..TrailQuery::default() }
}

fn page_of(outcome: PageOutcome) -> PageRows {
    match outcome {
        PageOutcome::Page(rows) => rows,
        other => panic!("expected a page, got {other:?}"),
    }
}

fn served(rows: &PageRows) -> Vec<serde_json::Value> {
    rows.events.iter().map(|raw| serde_json::from_str(raw.get()).expect("served JSON")).collect()
}

fn uuids(rows: &PageRows) -> Vec<String> {
    served(rows).iter().map(|event| event["uuid"].as_str().unwrap_or_default().to_owned()).collect()
}

/// The whole readable trail, once it holds `count` events (waits up to 10 s for them).
async fn trail_of(store: &dyn TrailStore, count: usize) -> PageRows {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = page_of(store.page(query(None, 10_000)).await.expect("read"));
        if rows.events.len() >= count || Instant::now() > deadline {
            assert_eq!(rows.events.len(), count, "the readable trail should hold every acknowledged event");
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn ingest_is_idempotent_on_uuid_within_and_across_batches(store: &dyn TrailStore) {
    let first = store.ingest(vec![plain(0), plain(1)], None).await.expect("stored");
    assert_eq!(first, IngestReceipt { accepted: 2, duplicates: 0 });
    let retried = store.ingest(vec![plain(1), plain(2), plain(2)], None).await.expect("stored");
    assert_eq!(retried, IngestReceipt { accepted: 1, duplicates: 2 });
    let rows = trail_of(store, 3).await;
    assert_eq!(uuids(&rows), ["event-0", "event-1", "event-2"]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(trail_of(store, 3).await.events.len(), 3, "no duplicate appeared later");
}

async fn every_event_is_linked_to_the_one_before(store: &dyn TrailStore) {
    store.ingest((0..5).map(plain).collect(), None).await.expect("stored");
    store.ingest((5..9).map(plain).collect(), None).await.expect("stored");
    let rows = trail_of(store, 9).await;
    let mut prev = GENESIS;
    for (index, mut event) in served(&rows).into_iter().enumerate() {
        let link = event.as_object_mut().and_then(|object| object.remove("chain")).expect("a chain link");
        let seq = link["seq"].as_i64().expect("seq");
        assert_eq!(seq, i64::try_from(index).unwrap_or(0) + 1, "seqs run 1, 2, 3, ... without gaps");
        let hash = digest_from_hex(link["hash"].as_str().unwrap_or_default()).expect("hash");
        assert_eq!(digest_from_hex(link["prevHash"].as_str().unwrap_or_default()), Some(prev), "event {seq}");
        let body = serde_json::to_string(&event).expect("body");
        assert_eq!(hash, link_hash(&prev, seq, &canonical_body(&body).expect("JSON")), "event {seq}'s hash");
        prev = hash;
    }
}

async fn pages_follow_the_cursor_both_ways(store: &dyn TrailStore) {
    store.ingest((0..5).map(plain).collect(), None).await.expect("stored");
    trail_of(store, 5).await;
    let first = page_of(store.page(query(None, 2)).await.expect("read"));
    assert_eq!(uuids(&first), ["event-0", "event-1"]);
    assert_eq!(first.next.as_deref(), Some("event-2"));
    let last = page_of(store.page(query(Some("event-3"), 2)).await.expect("read"));
    assert_eq!(uuids(&last), ["event-3", "event-4"]);
    assert_eq!(last.next, None, "the last page has no next");
    let mut newest_first = query(None, 2);
    newest_first.order = TrailOrder::Descending;
    let page = page_of(store.page(newest_first.clone()).await.expect("read"));
    assert_eq!(uuids(&page), ["event-4", "event-3"]);
    newest_first.from = page.next;
    assert_eq!(uuids(&page_of(store.page(newest_first).await.expect("read"))), ["event-2", "event-1"]);
}

async fn a_numbered_page_is_that_page_of_the_cursor_walk(store: &dyn TrailStore) {
    store.ingest((0..7).map(plain).collect(), None).await.expect("stored");
    trail_of(store, 7).await;
    for (order, from, expected) in [
        (TrailOrder::Ascending, None, ["event-4", "event-5"]),
        (TrailOrder::Descending, None, ["event-2", "event-1"]),
        (TrailOrder::Ascending, Some("event-1"), ["event-5", "event-6"]),
    ] {
        let third = TrailQuery { order, skip: 4, ..query(from, 2) };
        assert_eq!(uuids(&page_of(store.page(third).await.expect("read"))), expected, "{order:?} from {from:?}");
    }
    let past_the_end = page_of(store.page(TrailQuery { skip: 7, ..query(None, 2) }).await.expect("read"));
    assert!(past_the_end.events.is_empty() && past_the_end.next.is_none(), "past the end: an empty last page");
}

async fn every_filter_selects_its_events(store: &dyn TrailStore) {
    let base = 1_700_000_000_000;
    store
        .ingest(
            vec![
                event(0, base, "GET", 200, "alice"),
                event(1, base + 10, "POST", 201, "bob"),
                event(2, base + 20, "GET", 404, "bob"),
                event(3, base + 30, "PUT", 200, "carol"),
            ],
            None,
        )
        .await
        .expect("stored");
    trail_of(store, 4).await;
    let cases: [(EventFilters, &[&str]); 8] = [
        (EventFilters { event_type: Some("T1".into()), ..EventFilters::default() }, &["event-1", "event-3"]),
        (EventFilters { user_id: Some("bob".into()), ..EventFilters::default() }, &["event-1", "event-2"]),
        (EventFilters { user_email: Some("carol@example.com".into()), ..EventFilters::default() }, &["event-3"]),
        (EventFilters { user_name: Some("bob-login".into()), ..EventFilters::default() }, &["event-1", "event-2"]),
        (EventFilters { method: Some("GET".into()), ..EventFilters::default() }, &["event-0", "event-2"]),
        (EventFilters { status: Some(200), ..EventFilters::default() }, &["event-0", "event-3"]),
        (EventFilters { since_ms: Some(base + 20), ..EventFilters::default() }, &["event-2", "event-3"]),
        (
            EventFilters { since_ms: Some(base + 10), until_ms: Some(base + 30), ..EventFilters::default() },
            &["event-1", "event-2"],
        ),
    ];
    for (filters, expected) in cases {
        let page = store.page(TrailQuery { filters: filters.clone(), size: 10, ..TrailQuery::default() }).await;
        assert_eq!(uuids(&page_of(page.expect("read"))), expected, "filters {filters:?}");
    }
}

/// A small deterministic generator (xorshift64), so a failing case is the same on every run.
struct Xorshift(u64);

impl Xorshift {
    /// A number below `bound`.
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % u64::try_from(bound).unwrap_or(1)).unwrap_or(0)
    }

    fn pick<'a, T>(&mut self, values: &'a [T]) -> &'a T {
        &values[self.below(values.len())]
    }

    /// `Some(value)` one time in three.
    fn maybe<T>(&mut self, value: impl FnOnce(&mut Self) -> T) -> Option<T> {
        (self.below(3) == 0).then(|| value(self))
    }
}

/// Random filter combinations over a random trail (frequent and rare methods and statuses,
/// a lower-case and a custom method, statuses 0 and 999 and none, timestamps out of seq
/// order), both orders, any page size: following `next` from the start, from any event, and
/// each numbered page return exactly the events a scan of the trail selects, in its order.
/// However a store serves a filter (an index per value, a partial index for rare values, a
/// walk that tests the value on its entries), the answer cannot change.
async fn every_filter_walk_is_the_scan_of_the_events_it_selects(store: &dyn TrailStore) {
    let base = 1_700_000_000_000_i64;
    let methods = ["GET", "GET", "GET", "POST", "PUT", "DELETE", "PATCH", "get", "PURGE"];
    let statuses = [Some(200), Some(200), Some(201), Some(204), Some(404), Some(500), Some(0), Some(999), None];
    let users = ["alice", "bob", "carol"];
    let mut random = Xorshift(0x2545_f491_4f6c_dd1d);
    let events: Vec<NewEvent> = (0..240)
        .map(|n| {
            let timestamp_ms = base + i64::try_from(random.below(100)).unwrap_or(0) * 1000;
            let (method, user) = (*random.pick(&methods), *random.pick(&users));
            NewEvent { status: *random.pick(&statuses), ..event(n, timestamp_ms, method, 200, user) }
        })
        .collect();
    for batch in events.chunks(40) {
        store.ingest(batch.to_vec(), None).await.expect("stored");
    }
    // The trail's order is the store's (commit order); the scan follows it.
    let trail = uuids(&trail_of(store, events.len()).await);
    let by_uuid: std::collections::HashMap<&str, &NewEvent> =
        events.iter().map(|event| (event.uuid.as_str(), event)).collect();
    let selects = |filters: &EventFilters, event: &NewEvent| {
        filters.since_ms.is_none_or(|since| event.timestamp_ms >= since)
            && filters.until_ms.is_none_or(|until| event.timestamp_ms < until)
            && filters.event_type.as_ref().is_none_or(|wanted| *wanted == event.event_type)
            && filters.method.as_ref().is_none_or(|wanted| *wanted == event.method)
            && filters.status.is_none_or(|wanted| Some(wanted) == event.status)
            && filters.user_id.as_ref().is_none_or(|wanted| Some(wanted) == event.user_id.as_ref())
            && filters.user_email.as_ref().is_none_or(|wanted| Some(wanted) == event.user_email.as_ref())
            && filters.user_name.as_ref().is_none_or(|wanted| Some(wanted) == event.user_name.as_ref())
    };
    let (mut selecting_rounds, mut numbered_rounds) = (0, 0);
    for round in 0..150 {
        let at = |random: &mut Xorshift| base + i64::try_from(random.below(100)).unwrap_or(0) * 1000;
        let filters = EventFilters {
            event_type: random.maybe(|r| r.pick(&["T0", "T1", "T9"]).to_string()),
            user_id: random.maybe(|r| r.pick(&["alice", "bob", "nobody"]).to_string()),
            user_email: random.maybe(|r| format!("{}@example.com", r.pick(&users))),
            user_name: random.maybe(|r| format!("{}-login", r.pick(&users))),
            method: random
                .maybe(|r| r.pick(&["GET", "POST", "PUT", "DELETE", "PATCH", "get", "PURGE", "HEAD"]).to_string()),
            status: random.maybe(|r| *r.pick(&[200_u16, 201, 204, 404, 500, 0, 999, 302])),
            since_ms: random.maybe(at),
            until_ms: random.maybe(at),
            ..EventFilters::default()
        };
        let order = *random.pick(&[TrailOrder::Ascending, TrailOrder::Descending]);
        let size = 1 + random.below(9);
        let mut walk: Vec<&str> = trail.iter().map(String::as_str).collect();
        if order == TrailOrder::Descending {
            walk.reverse();
        }
        let case = format!("round {round}: {filters:?} {order:?} size {size}");
        // From a cursor (any event, selected or not) the walk starts at it, inclusive.
        let start = random.below(walk.len());
        for from in [None, Some(walk[start])] {
            let skipped = from.map_or(0, |_| start);
            let expected: Vec<&str> =
                walk[skipped..].iter().copied().filter(|uuid| selects(&filters, by_uuid[uuid])).collect();
            let mut query = TrailQuery { filters: filters.clone(), order, size, ..query(from, size) };
            let mut followed: Vec<String> = Vec::new();
            for _ in 0..=walk.len() {
                let page = page_of(store.page(query.clone()).await.expect("read"));
                assert!(page.events.len() <= size, "{case}: a page holds at most its size");
                followed.extend(uuids(&page));
                match page.next {
                    Some(next) => query.from = Some(next),
                    None => break,
                }
            }
            assert_eq!(followed, expected, "{case}, following next from {from:?}");
        }
        let expected: Vec<&str> = walk.iter().copied().filter(|uuid| selects(&filters, by_uuid[uuid])).collect();
        selecting_rounds += usize::from(!expected.is_empty());
        numbered_rounds += usize::from(expected.len() > size);
        let skip = size * (1 + random.below(3));
        let numbered = TrailQuery { filters: filters.clone(), order, size, skip, ..TrailQuery::default() };
        let page = uuids(&page_of(store.page(numbered).await.expect("read")));
        let wanted: Vec<&str> = expected.iter().skip(skip).take(size).copied().collect();
        assert_eq!(page, wanted, "{case}, the page {skip} events in");
    }
    // Not a vacuous check: most rounds select events, many of them more than a page.
    assert!(selecting_rounds >= 60 && numbered_rounds >= 40, "{selecting_rounds} and {numbered_rounds} of 150");
}

async fn activity_counts_each_hour_by_outcome(store: &dyn TrailStore) {
    let hour = 472_222 * HOUR_MS;
    store
        .ingest(
            vec![
                event(0, hour, "GET", 200, "alice"),
                event(1, hour + 10, "POST", 401, "bob"),
                event(2, hour + HOUR_MS - 1, "GET", 403, "bob"),
                event(3, hour + HOUR_MS, "PUT", 500, "carol"),
                event(4, hour + 2 * HOUR_MS + 5, "GET", 302, "alice"),
            ],
            None,
        )
        .await
        .expect("stored");
    trail_of(store, 5).await;
    let counts = |success, failed_login, forbidden, error| OutcomeCounts { success, failed_login, forbidden, error };
    let buckets = |outcome: ActivityOutcome| match outcome {
        ActivityOutcome::Buckets(buckets) => buckets,
        ActivityOutcome::TooManyBuckets => panic!("too many buckets"),
    };
    let all = buckets(store.activity(EventFilters::default(), BucketWidth::Hour).await.expect("activity"));
    assert_eq!(
        all,
        [
            ActivityBucket { start_ms: hour, counts: counts(1, 1, 1, 0) },
            ActivityBucket { start_ms: hour + HOUR_MS, counts: counts(0, 0, 0, 1) },
            ActivityBucket { start_ms: hour + 2 * HOUR_MS, counts: counts(1, 0, 0, 0) },
        ]
    );
    let bob_late = EventFilters { user_id: Some("bob".into()), since_ms: Some(hour + 5), ..EventFilters::default() };
    let filtered = buckets(store.activity(bob_late, BucketWidth::Day).await.expect("activity"));
    let day = hour - hour.rem_euclid(24 * HOUR_MS);
    assert_eq!(filtered, [ActivityBucket { start_ms: day, counts: counts(0, 1, 1, 0) }]);
}

/// The buckets of `events` that `filters` selects, counted one by one: what `activity` must say.
fn counted_one_by_one(events: &[NewEvent], filters: &EventFilters, width: BucketWidth) -> Vec<ActivityBucket> {
    let bucket_ms = width.hours() * HOUR_MS;
    let mut buckets = std::collections::BTreeMap::<i64, OutcomeCounts>::new();
    let selected = events.iter().filter(|event| {
        filters.since_ms.is_none_or(|since| event.timestamp_ms >= since)
            && filters.until_ms.is_none_or(|until| event.timestamp_ms < until)
            && filters.event_type.as_ref().is_none_or(|wanted| *wanted == event.event_type)
            && filters.method.as_ref().is_none_or(|wanted| *wanted == event.method)
            && filters.status.is_none_or(|wanted| Some(wanted) == event.status)
            && filters.user_id.as_ref().is_none_or(|wanted| Some(wanted) == event.user_id.as_ref())
            && filters.user_email.as_ref().is_none_or(|wanted| Some(wanted) == event.user_email.as_ref())
            && filters
                .user_name
                .as_ref()
                .is_none_or(|wanted| event.body.contains(&format!(r#""user_name":"{wanted}""#)))
    });
    for event in selected {
        let counts = buckets.entry(event.timestamp_ms.div_euclid(bucket_ms) * bucket_ms).or_default();
        match event.status {
            Some(100..=399) => counts.success += 1,
            Some(401) => counts.failed_login += 1,
            Some(403) => counts.forbidden += 1,
            _ => counts.error += 1,
        }
    }
    buckets.into_iter().map(|(start_ms, counts)| ActivityBucket { start_ms, counts }).collect()
}

/// Every window (aligned or not, so rollup and counted edges both take part) and every
/// filter, before and after a purge, against counting the events one by one.
async fn activity_is_exact_for_any_window_and_filter_and_follows_a_purge(store: &dyn TrailStore) {
    let hour = 472_222 * HOUR_MS;
    let shapes = [("GET", 200), ("POST", 401), ("GET", 403), ("PUT", 500), ("DELETE", 302), ("GET", 404)];
    let users = ["alice", "bob", "carol"];
    // Three early events (the purge takes them), then a spread over two days.
    let mut events: Vec<NewEvent> =
        (0..3).map(|n| event(n, hour - 3 * HOUR_MS + 1000 * n as i64, "GET", 200, "bob")).collect();
    events.extend((3..40).map(|n| {
        let (method, status) = shapes[n % shapes.len()];
        event(n, hour + (n as i64 * 7919 * 60_000) % (50 * HOUR_MS), method, status, users[n % users.len()])
    }));
    store.ingest(events.clone(), None).await.expect("stored");
    trail_of(store, events.len()).await;
    activity_matches(store, hour, &events).await;
    assert_eq!(store.purge(hour - HOUR_MS, 100).await.expect("purge"), 3);
    activity_matches(store, hour, &events[3..]).await;
}

async fn activity_matches(store: &dyn TrailStore, hour: i64, stored: &[NewEvent]) {
    let at = |minutes: i64| Some(hour + minutes * 60_000);
    let windows =
        [(None, None), (at(0), None), (at(7), None), (None, at(300)), (at(61), at(24 * 60 + 59)), (at(5), at(50))];
    let selections = [
        EventFilters::default(),
        EventFilters { event_type: Some("T1".into()), ..EventFilters::default() },
        EventFilters { method: Some("GET".into()), status: Some(403), ..EventFilters::default() },
        EventFilters { user_id: Some("bob".into()), ..EventFilters::default() },
        EventFilters { user_name: Some("alice-login".into()), ..EventFilters::default() },
        EventFilters {
            user_email: Some("carol@example.com".into()),
            method: Some("PUT".into()),
            ..EventFilters::default()
        },
    ];
    for (since_ms, until_ms) in windows {
        for selection in &selections {
            let filters = EventFilters { since_ms, until_ms, ..selection.clone() };
            for width in [BucketWidth::Hour, BucketWidth::Day] {
                let answer = match store.activity(filters.clone(), width).await.expect("activity") {
                    ActivityOutcome::Buckets(buckets) => buckets,
                    ActivityOutcome::TooManyBuckets => panic!("too many buckets"),
                };
                assert_eq!(answer, counted_one_by_one(stored, &filters, width), "{filters:?} by {width:?}");
            }
        }
    }
}

async fn retention_purges_the_oldest_and_the_checkpoint_names_the_anchor(store: &dyn TrailStore) {
    let day = 86_400_000;
    let mut events: Vec<NewEvent> = (0..3).map(|n| event(n, 10 * day, "GET", 200, "a")).collect();
    events.extend((3..5).map(|n| event(n, 100 * day, "GET", 200, "a")));
    store.ingest(events, None).await.expect("stored");
    trail_of(store, 5).await;
    let before = store.checkpoint().await.expect("checkpoint").expect("the trail grew: a new checkpoint");
    assert_eq!((before.last_seq, before.anchor_seq), (5, 0));
    assert_eq!(store.checkpoint().await.expect("checkpoint"), None, "nothing changed: no new checkpoint");

    assert_eq!(store.purge(50 * day, 2).await.expect("purge"), 2, "at most the limit per purge");
    assert_eq!(store.purge(50 * day, 100).await.expect("purge"), 1);
    assert_eq!(store.purge(50 * day, 100).await.expect("purge"), 0);
    assert_eq!(uuids(&trail_of(store, 2).await), ["event-3", "event-4"]);
    assert!(matches!(store.page(query(Some("event-0"), 10)).await.expect("read"), PageOutcome::ExpiredFrom));
    assert!(matches!(store.page(query(Some("nowhere"), 10)).await.expect("read"), PageOutcome::UnknownFrom));

    let checkpoints = store.checkpoints(0, 100).await.expect("checkpoints");
    let last = checkpoints.last().expect("the purges signed checkpoints");
    assert_eq!((last.last_seq, last.anchor_seq), (5, 3), "the newest checkpoint names the anchor");
    assert_eq!(checkpoints.iter().map(|c| c.number).collect::<Vec<_>>(), (1..=3).collect::<Vec<i64>>());
    let verifier = signer().verifier();
    for checkpoint in &checkpoints {
        let signature = crate::chain::link::from_hex(&checkpoint.signature).expect("hex");
        let message = crate::chain::checkpoint::signed_message(checkpoint);
        assert!(verifier.verifies(&message, &signature), "checkpoint {} is signed", checkpoint.number);
    }
    assert_eq!(store.gauges().await.expect("gauges").purged_events, 3);

    store.ingest(vec![plain(9)], None).await.expect("stored");
    let rows = trail_of(store, 3).await;
    let newest = served(&rows).pop().expect("an event");
    assert_eq!(newest["chain"]["seq"], 6, "seqs keep growing after a purge");
}

async fn a_fresh_store_is_healthy_and_has_no_tokens(store: &dyn TrailStore) {
    store.health().await.expect("healthy");
    assert!(store.active_tokens().await.expect("tokens").is_empty());
    assert!(store.checkpoints(0, 10).await.expect("checkpoints").is_empty());
    assert_eq!(store.checkpoint().await.expect("checkpoint"), None, "an empty trail needs no checkpoint");
}

async fn shutdown_keeps_what_was_acknowledged_and_refuses_more(store: &dyn TrailStore) {
    store.ingest((0..3).map(plain).collect(), None).await.expect("stored");
    store.shutdown().await.expect("clean stop");
    assert!(matches!(store.ingest(vec![plain(7)], None).await, Err(StoreError::WriterStopped)));
    assert!(store.health().await.is_err(), "a stopped store is not healthy");
}

const SENDER: &str = "AAAAAAAAAAAAAAAAAAAAAA";

/// No hole is old enough and no sender silent long enough to record.
const PATIENT: SenderPolicy =
    SenderPolicy { hole_grace_ms: i64::MAX, silence_ms: i64::MAX, started_at_ms: 0, forget_stopped_ms: i64::MAX };
/// Every hole is overdue at once; nobody is silent.
const HOLES_DUE: SenderPolicy = SenderPolicy { hole_grace_ms: 0, ..PATIENT };
/// Every sender is silent at once.
const ALL_SILENT: SenderPolicy = SenderPolicy { silence_ms: -1, ..PATIENT };

/// `SENDER`'s events numbered `numbers` (event `event-<n>` at time 1000 * n), reporting
/// `captured`; no numbers is a heartbeat.
async fn from_sender(store: &dyn TrailStore, numbers: impl IntoIterator<Item = u64>, captured: u64) -> IngestReceipt {
    report_from_sender(store, numbers, captured, false).await
}

/// [`from_sender`], the report saying the sender is shutting down when `stopping`.
async fn report_from_sender(
    store: &dyn TrailStore,
    numbers: impl IntoIterator<Item = u64>,
    captured: u64,
    stopping: bool,
) -> IngestReceipt {
    let numbers: Vec<u64> = numbers.into_iter().collect();
    let at = |n: u64| i64::try_from(n).unwrap_or(0) * 1000;
    let rows = numbers.iter().map(|&n| event(usize::try_from(n).unwrap_or(0), at(n), "GET", 200, "alice")).collect();
    let activity = SenderActivity {
        id: SENDER.into(),
        captured,
        reported_at_ms: 1_800_000_000_000,
        heartbeat_ms: 1000,
        numbered: numbers.into_iter().map(|n| Some((n, at(n)))).collect(),
        named_lost: Vec::new(),
        stopping,
    };
    store.ingest(rows, Some(activity)).await.expect("stored")
}

/// The collector's own records in the trail, once the trail holds `total` events.
async fn records_in(store: &dyn TrailStore, total: usize) -> Vec<AuditEvent> {
    served(&trail_of(store, total).await)
        .into_iter()
        .filter(|event| event["type"].as_str().is_some_and(|kind| kind.starts_with("AuditSidecar::")))
        .map(|mut event| {
            event.as_object_mut().map(|object| object.remove("chain"));
            serde_json::from_value(event).expect("a record is an event")
        })
        .collect()
}

fn gap_of(record: &AuditEvent) -> &DeliveryGap {
    record.gap.as_ref().expect("a record has a gap")
}

fn types_of(records: &[AuditEvent]) -> Vec<&str> {
    records.iter().map(|record| record.event_type.as_str()).collect()
}

async fn a_hole_filled_in_time_is_no_record_and_one_left_open_is_one_gap(store: &dyn TrailStore) {
    from_sender(store, 1..=10, 10).await;
    from_sender(store, 21..=30, 30).await;
    assert_eq!(store.check_senders(PATIENT).await.expect("checked"), 0, "within the grace");
    from_sender(store, 11..=20, 30).await;
    assert_eq!(store.check_senders(HOLES_DUE).await.expect("checked"), 0, "11-20 came in time: no hole");
    from_sender(store, 41..=50, 50).await;
    trail_of(store, 40).await;
    assert_eq!(store.check_senders(HOLES_DUE).await.expect("checked"), 1, "31-40 never came");
    assert_eq!(store.check_senders(HOLES_DUE).await.expect("checked"), 0, "recorded once");
    let records = records_in(store, 41).await;
    assert_eq!(types_of(&records), [SENDER_GAP_TYPE]);
    let gap = gap_of(&records[0]);
    assert_eq!((gap.lost_events, gap.sender.as_deref()), (10, Some(SENDER)));
    assert_eq!(gap.seqs, Some(vec![SeqRange { first: 31, last: 40 }]));
}

async fn a_silent_sender_is_recorded_stopped_with_its_counts_then_resumed(store: &dyn TrailStore) {
    from_sender(store, 1..=10, 10).await;
    let retried = from_sender(store, 1..=10, 10).await;
    assert_eq!(retried.accepted, 0, "a retry stores nothing and counts nothing twice");
    from_sender(store, 11..=12, 15).await;
    trail_of(store, 12).await;
    assert_eq!(store.check_senders(PATIENT).await.expect("checked"), 0, "heard just now");
    assert_eq!(store.check_senders(ALL_SILENT).await.expect("checked"), 1);
    assert_eq!(store.check_senders(ALL_SILENT).await.expect("checked"), 0, "stopped once");
    from_sender(store, [], 15).await;
    let records = records_in(store, 14).await;
    assert_eq!(types_of(&records), [SENDER_STOPPED_TYPE, SENDER_RESUMED_TYPE]);
    let stopped = gap_of(&records[0]);
    assert_eq!((stopped.captured, stopped.delivered, stopped.lost_events), (Some(15), Some(12), 3));
    assert_eq!(stopped.seqs, Some(vec![SeqRange { first: 13, last: 15 }]));
    assert_eq!(stopped.first_lost_at, "1970-01-01T00:00:12.000+00:00", "after the last delivered event");
    assert!(stopped.unknown_until.is_some() && stopped.last_heard_at.is_some());
    assert_eq!(gap_of(&records[1]).captured, Some(15));
}

async fn a_sender_that_says_it_stops_is_finished_not_silent(store: &dyn TrailStore) {
    from_sender(store, 1..=3, 3).await;
    report_from_sender(store, 4..=5, 5, true).await;
    report_from_sender(store, 4..=5, 5, true).await;
    trail_of(store, 6).await;
    assert_eq!(store.check_senders(ALL_SILENT).await.expect("checked"), 0, "finished: never silent");
    let records = records_in(store, 6).await;
    assert_eq!(types_of(&records), [SENDER_FINISHED_TYPE], "one record, the copy is no news");
    let finished = gap_of(&records[0]);
    assert_eq!((finished.captured, finished.delivered, finished.lost_events), (Some(5), Some(5), 0));
    assert_eq!((finished.unknown_until.as_ref(), finished.seqs.as_ref()), (None, None));
}

/// Shutting down, the filter sends a copy of the batch on the wire with the final report;
/// the original (and a heartbeat sent before it) carries the report it had when sent and
/// can be committed after the copy. Neither stores anything new: no second record.
async fn a_finished_senders_older_calls_arriving_late_are_no_news(store: &dyn TrailStore) {
    from_sender(store, 1..=3, 3).await;
    report_from_sender(store, 4..=5, 5, true).await;
    from_sender(store, 4..=5, 5).await;
    from_sender(store, [], 5).await;
    // Committed after them: once it is readable, so is every record they called for.
    store.ingest(vec![plain(99)], None).await.expect("stored");
    let records = records_in(store, 7).await;
    assert_eq!(types_of(&records), [SENDER_FINISHED_TYPE], "one terminal record per sender");
    assert_eq!(store.check_senders(ALL_SILENT).await.expect("checked"), 0, "finished: never silent");
}

async fn a_lost_last_batch_is_a_gap_while_the_sender_lives(store: &dyn TrailStore) {
    from_sender(store, 1..=10, 12).await;
    assert_eq!(store.check_senders(HOLES_DUE).await.expect("checked"), 0, "11-12 may still be queued behind a batch");
    from_sender(store, [], 12).await;
    trail_of(store, 10).await;
    assert_eq!(store.check_senders(PATIENT).await.expect("checked"), 0, "within the grace");
    assert_eq!(store.check_senders(HOLES_DUE).await.expect("checked"), 1, "the heartbeat counted 11-12");
    from_sender(store, [], 14).await;
    from_sender(store, 13..=14, 14).await;
    assert_eq!(store.check_senders(HOLES_DUE).await.expect("checked"), 0, "13-14 came: nothing missing");
    let records = records_in(store, 13).await;
    assert_eq!(types_of(&records), [SENDER_GAP_TYPE]);
    assert_eq!(gap_of(&records[0]).seqs, Some(vec![SeqRange { first: 11, last: 12 }]));
    assert_eq!(gap_of(&records[0]).last_lost_at, "2027-01-15T08:00:00.000+00:00", "the heartbeat's time");
}

async fn a_stopped_sender_is_forgotten_after_the_retention_keeping_its_records(store: &dyn TrailStore) {
    from_sender(store, 1..=3, 5).await;
    trail_of(store, 3).await;
    assert_eq!(store.check_senders(ALL_SILENT).await.expect("checked"), 1);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let forget_now = SenderPolicy { forget_stopped_ms: 0, ..PATIENT };
    assert_eq!(store.check_senders(forget_now).await.expect("checked"), 0, "forgetting records nothing");
    from_sender(store, [], 5).await;
    assert_eq!(store.check_senders(PATIENT).await.expect("checked"), 0);
    let records = records_in(store, 4).await;
    assert_eq!(types_of(&records), [SENDER_STOPPED_TYPE], "the stop stays; heard again it is a new sender");
    assert_eq!(gap_of(&records[0]).lost_events, 2);
}

/// Events `event-0` … `event-9` with these paths (`event-7` has none), `event-8` by bob.
fn with_paths() -> Vec<NewEvent> {
    const PATHS: [Option<&str>; 10] = [
        Some("/pacticipants/Foo"),
        Some("/pacticipants/Bar"),
        Some("/pacticipants/Foo/versions/1"),
        Some("/pacticipants/foo"),
        Some("/pacticipants/Fo%o"),
        Some("/pacticipants/FooX"),
        Some("/pacticipants/Fo_o/x"),
        None,
        Some("/pacticipants/Foo/labels/x"),
        Some("/other"),
    ];
    PATHS
        .iter()
        .enumerate()
        .map(|(n, path)| {
            let user = if n == 8 { "bob" } else { "alice" };
            let mut row = event(n, 1_700_000_000_000 + i64::try_from(n).unwrap_or(0), "GET", 200, user);
            let mut body: serde_json::Value = serde_json::from_str(&row.body).expect("JSON");
            if let Some(path) = path {
                body["payload"] = serde_json::json!({ "path": path, "method": "GET" });
            }
            row.body = body.to_string();
            row.canonical = canonical_body(&row.body).expect("JSON");
            row
        })
        .collect()
}

async fn a_path_prefix_selects_literally_and_its_bounded_pages_miss_nothing(store: &dyn TrailStore) {
    store.ingest(with_paths(), None).await.expect("stored");
    trail_of(store, 10).await;
    let prefixed = |prefix: &str| EventFilters { path_prefix: Some(prefix.to_owned()), ..EventFilters::default() };
    let one_page = |filters: EventFilters| TrailQuery { filters, size: 100, ..TrailQuery::default() };
    for (filters, expected) in [
        (prefixed("/pacticipants/Foo"), &["event-0", "event-2", "event-5", "event-8"][..]),
        // `%` and `_` are characters of the path, not LIKE's wildcards; case counts.
        (prefixed("/pacticipants/Fo%"), &["event-4"]),
        (prefixed("/pacticipants/Fo_"), &["event-6"]),
        (prefixed("/pacticipants/f"), &["event-3"]),
        (EventFilters { user_id: Some("bob".into()), ..prefixed("/pacticipants/Foo") }, &["event-8"]),
    ] {
        let rows = page_of(store.page(one_page(filters.clone())).await.expect("read"));
        assert_eq!(uuids(&rows), expected, "{filters:?}");
        assert_eq!(rows.next, None, "{filters:?}");
    }
    // Pages of one examining two events each: short (even empty) pages whose `next` resumes
    // after what they examined, and following `next` finds every match once, in order.
    for (order, expected) in [
        (TrailOrder::Ascending, ["event-0", "event-2", "event-5", "event-8"]),
        (TrailOrder::Descending, ["event-8", "event-5", "event-2", "event-0"]),
    ] {
        let mut from = None;
        let (mut found, mut short_with_next) = (Vec::new(), 0);
        for _ in 0..20 {
            let asked = TrailQuery {
                from: from.clone(),
                filters: prefixed("/pacticipants/Foo"),
                order,
                size: 1,
                examine_at_most: Some(2),
                ..TrailQuery::default()
            };
            let rows = page_of(store.page(asked).await.expect("read"));
            found.extend(uuids(&rows));
            if rows.events.is_empty() && rows.next.is_some() {
                short_with_next += 1;
            }
            from = rows.next;
            if from.is_none() {
                break;
            }
        }
        assert_eq!(found, expected, "{order:?}");
        assert!(short_with_next > 0, "{order:?}: some page examined its two events and found no match");
    }
    let numbered = TrailQuery { skip: 1, ..one_page(prefixed("/pacticipants/Foo")) };
    assert!(store.page(numbered).await.is_err(), "a numbered page of a path prefix is refused");
}

/// Runs every check above against the store `$open` makes, in a module named `$name`.
macro_rules! store_contract {
    ($name:ident, $open:ident) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn ingest_is_idempotent_on_uuid_within_and_across_batches() {
                super::ingest_is_idempotent_on_uuid_within_and_across_batches(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn every_event_is_linked_to_the_one_before() {
                super::every_event_is_linked_to_the_one_before(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn pages_follow_the_cursor_both_ways() {
                super::pages_follow_the_cursor_both_ways(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_numbered_page_is_that_page_of_the_cursor_walk() {
                super::a_numbered_page_is_that_page_of_the_cursor_walk(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn every_filter_selects_its_events() {
                super::every_filter_selects_its_events(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn every_filter_walk_is_the_scan_of_the_events_it_selects() {
                super::every_filter_walk_is_the_scan_of_the_events_it_selects(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_path_prefix_selects_literally_and_its_bounded_pages_miss_nothing() {
                super::a_path_prefix_selects_literally_and_its_bounded_pages_miss_nothing(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn activity_counts_each_hour_by_outcome() {
                super::activity_counts_each_hour_by_outcome(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn activity_is_exact_for_any_window_and_filter_and_follows_a_purge() {
                super::activity_is_exact_for_any_window_and_filter_and_follows_a_purge(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn retention_purges_the_oldest_and_the_checkpoint_names_the_anchor() {
                super::retention_purges_the_oldest_and_the_checkpoint_names_the_anchor(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_fresh_store_is_healthy_and_has_no_tokens() {
                super::a_fresh_store_is_healthy_and_has_no_tokens(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_hole_filled_in_time_is_no_record_and_one_left_open_is_one_gap() {
                super::a_hole_filled_in_time_is_no_record_and_one_left_open_is_one_gap(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_silent_sender_is_recorded_stopped_with_its_counts_then_resumed() {
                super::a_silent_sender_is_recorded_stopped_with_its_counts_then_resumed(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_sender_that_says_it_stops_is_finished_not_silent() {
                super::a_sender_that_says_it_stops_is_finished_not_silent(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_finished_senders_older_calls_arriving_late_are_no_news() {
                super::a_finished_senders_older_calls_arriving_late_are_no_news(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_lost_last_batch_is_a_gap_while_the_sender_lives() {
                super::a_lost_last_batch_is_a_gap_while_the_sender_lives(&*$open().await.store).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_stopped_sender_is_forgotten_after_the_retention_keeping_its_records() {
                super::a_stopped_sender_is_forgotten_after_the_retention_keeping_its_records(&*$open().await.store)
                    .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn shutdown_keeps_what_was_acknowledged_and_refuses_more() {
                super::shutdown_keeps_what_was_acknowledged_and_refuses_more(&*$open().await.store).await;
            }
        }
    };
}

store_contract!(sqlite, open_sqlite);
store_contract!(postgres, open_postgres);
