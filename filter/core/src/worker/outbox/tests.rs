//! The outbox driven as delivery drives it: pushes, batches taken at given times, answers.

use super::*;
use audit_event::event_uuid::encode_event_uuid;
use audit_event::{IngestBatch, DELIVERY_GAP_TYPE};

fn limits() -> OutboxLimits {
    OutboxLimits {
        batch_max_events: 3,
        batch_max_bytes: 1000,
        flush_interval_ms: 100,
        buffer_max_events: 6,
        buffer_max_bytes: 10_000,
        initial_backoff_ms: 200,
        max_backoff_ms: 1000,
    }
}

/// A small JSON value standing in for a serialized event, recognisable by `n`.
fn event(n: u32) -> Vec<u8> {
    format!("{{\"n\":{n}}}").into_bytes()
}

fn numbers(batch: &Batch) -> Vec<u64> {
    let value: serde_json::Value = serde_json::from_slice(&batch.body).expect("the batch body is JSON");
    value["events"]
        .as_array()
        .expect("`events` is an array")
        .iter()
        .map(|e| e["n"].as_u64().expect("each event has n"))
        .collect()
}

/// The uuid source for gap records in tests: always the same bytes.
fn uuid() -> [u8; 16] {
    [7; 16]
}

fn outbox_with(count: u32, now_ms: u64) -> Outbox {
    let mut outbox = Outbox::new(limits());
    for n in 1..=count {
        outbox.push(event(n), now_ms);
    }
    outbox
}

#[test]
fn nothing_is_due_before_a_full_batch_or_the_flush_interval() {
    let mut outbox = outbox_with(2, 0);
    assert_eq!(outbox.take_batch(99, uuid), None, "2 events, 99 ms old: not due");
    let batch = outbox.take_batch(100, uuid).expect("due once the oldest event is 100 ms old");
    assert_eq!(numbers(&batch), [1, 2]);
}

#[test]
fn a_full_batch_is_due_at_once_and_carries_at_most_max_events() {
    let mut outbox = outbox_with(5, 0);
    let batch = outbox.take_batch(0, uuid).expect("5 events ≥ batch.maxEvents 3");
    assert_eq!(numbers(&batch), [1, 2, 3]);
    assert_eq!(batch.events, 3);
    assert!(!batch.is_retry);
}

#[test]
fn a_batch_is_due_when_its_bytes_reach_max_bytes_and_never_exceeds_them() {
    let mut outbox = Outbox::new(OutboxLimits { batch_max_bytes: 30, batch_max_events: 100, ..limits() });
    outbox.push(event(1), 0); // 7 bytes
    outbox.push(event(22), 0); // 8 bytes
    assert_eq!(outbox.take_batch(0, uuid), None, "15 bytes < 30");
    outbox.push(event(333), 0); // 9 bytes
    outbox.push(event(4444), 0); // 10 bytes: 34 buffered
    let batch = outbox.take_batch(0, uuid).expect("34 bytes ≥ 30");
    assert!(batch.body.len() <= 30, "body of {} bytes exceeds batch.maxBytes", batch.body.len());
    assert_eq!(numbers(&batch), [1, 22]);
}

#[test]
fn an_event_larger_than_max_bytes_still_goes_out_alone() {
    let mut outbox = Outbox::new(OutboxLimits { batch_max_bytes: 5, buffer_max_bytes: 10_000, ..limits() });
    outbox.push(event(123_456), 0);
    let batch = outbox.take_batch(0, uuid).expect("due: bytes ≥ maxBytes");
    assert_eq!(numbers(&batch), [123_456]);
}

#[test]
fn the_body_is_an_ingest_batch_built_from_the_serialized_bytes() {
    let captured = serde_json::json!({
        "uuid": "16WlpdLpDMzfMYxLTZYXYw", "timestamp": "2019-12-10T09:15:24.864+11:00",
        "type": "Http::Request", "db_user_id": null, "user_email": null,
        "payload": {"path": "/", "queryString": "", "method": "GET", "userAgent": null, "referer": null,
                    "params": {"resource_name": "request"}}
    });
    let mut outbox = Outbox::new(limits());
    outbox.push(serde_json::to_vec(&captured).expect("serializes"), 0);
    let batch = outbox.take_batch(1000, uuid).expect("due");
    let parsed: IngestBatch = serde_json::from_slice(&batch.body).expect("the body is an IngestBatch");
    assert_eq!(parsed.events.len(), 1);
    assert_eq!(parsed.events[0].uuid, "16WlpdLpDMzfMYxLTZYXYw");
}

#[test]
fn only_one_batch_is_in_flight_and_success_releases_the_next_in_order() {
    let mut outbox = outbox_with(5, 0);
    let first = outbox.take_batch(0, uuid).expect("first batch");
    outbox.on_dispatched(7);
    assert!(outbox.awaits_answer(7), "the batch is on the wire as call 7");
    assert!(!outbox.awaits_answer(6), "an answer to another call is not for this batch");
    assert_eq!(outbox.take_batch(1000, uuid), None, "no second batch while the first is in flight");
    outbox.on_success();
    let second = outbox.take_batch(1000, uuid).expect("the rest, once the first is acknowledged");
    assert_eq!((numbers(&first), numbers(&second)), (vec![1, 2, 3], vec![4, 5]));
    outbox.on_success();
    let counters = outbox.counters();
    assert_eq!((counters.captured, counters.sent, counters.buffered_events, counters.buffered_bytes), (5, 5, 0, 0));
    assert_eq!(outbox.take_batch(10_000, uuid), None, "empty");
}

#[test]
fn a_failed_batch_is_kept_and_resent_after_the_backoff() {
    let mut outbox = outbox_with(3, 0);
    let first = outbox.take_batch(0, uuid).expect("full batch");
    let delay = outbox.on_failure(0, 0);
    assert_eq!(delay, 100, "first failure: 200 ms ceiling, jitter 0 → half of it");
    assert_eq!(outbox.take_batch(99, uuid), None, "still backing off");
    let retry = outbox.take_batch(100, uuid).expect("retried after the backoff");
    assert_eq!(retry.body, first.body, "the same events, in the same order");
    assert!(retry.is_retry);
    assert_eq!(outbox.counters().retried, 3);
    outbox.on_success();
    assert_eq!(outbox.counters().sent, 3);
    assert_eq!(outbox.counters().buffered_events, 0);
}

#[test]
fn a_retry_does_not_wait_for_a_full_batch() {
    let mut outbox = outbox_with(1, 0);
    outbox.take_batch(100, uuid).expect("due by age");
    outbox.on_failure(100, 0);
    assert!(outbox.take_batch(200, uuid).is_some(), "a single event is retried as soon as the backoff ends");
}

#[test]
fn backoff_doubles_is_capped_and_resets_after_success() {
    let mut outbox = outbox_with(3, 0);
    let mut fixed_halves = Vec::new();
    let mut now = 0;
    for _ in 0..5 {
        outbox.take_batch(now, uuid).expect("due");
        // With zero jitter the delay is the fixed half of the ceiling.
        fixed_halves.push(outbox.on_failure(now, 0));
        now += 10_000;
    }
    assert_eq!(fixed_halves, [100, 200, 400, 500, 500], "ceilings doubling from 200 ms, capped at 1000 ms");
    outbox.take_batch(now, uuid).expect("due");
    outbox.on_success();
    outbox.push(event(9), now);
    outbox.take_batch(now + 100, uuid).expect("due by age");
    assert_eq!(outbox.on_failure(now, 0), 100, "a success resets the backoff");
}

#[test]
fn jitter_stays_between_half_and_all_of_the_ceiling() {
    let mut seen = std::collections::BTreeSet::new();
    for random in [0, 1, 57, 100, 101, 12_345, u64::MAX] {
        let mut outbox = outbox_with(3, 0);
        outbox.take_batch(0, uuid).expect("due");
        let delay = outbox.on_failure(0, random);
        assert!((100..=200).contains(&delay), "delay {delay} for random {random}");
        seen.insert(delay);
    }
    assert!(seen.contains(&100) && seen.contains(&200), "both ends are reachable: {seen:?}");
}

#[test]
fn backoff_survives_very_many_failures() {
    let mut outbox = outbox_with(3, 0);
    for attempt in 0..200u64 {
        outbox.take_batch(attempt * 10_000, uuid).expect("due");
        let delay = outbox.on_failure(attempt * 10_000, attempt);
        assert!(delay <= 1000, "attempt {attempt}: delay {delay}");
    }
}

#[test]
fn overflow_drops_the_oldest_events_and_counts_them() {
    let mut outbox = outbox_with(6, 10);
    assert_eq!(outbox.push(event(7), 20), PushOutcome::QueuedDroppingOldest);
    assert_eq!(outbox.counters().dropped, 1);
    assert_eq!(outbox.push(event(8), 30), PushOutcome::QueuedDroppingOldest);
    let counters = outbox.counters();
    assert_eq!(counters.dropped, 2);
    assert_eq!(counters.buffered_events, 6, "bounded by buffer.maxEvents");
    let gap = outbox.take_batch(1000, uuid).expect("the gap record goes first");
    assert_eq!(gap.gap, Some(GapWindow { lost_events: 2, first_lost_ms: 20, last_lost_ms: 30 }));
    outbox.on_success();
    assert_eq!(numbers(&outbox.take_batch(1000, uuid).expect("due")), [3, 4, 5], "events 1 and 2 were dropped");
}

#[test]
fn overflow_by_bytes_drops_as_many_old_events_as_needed() {
    let mut outbox = Outbox::new(OutboxLimits { buffer_max_bytes: 20, batch_max_bytes: 20, ..limits() });
    outbox.push(event(1), 0); // 7
    outbox.push(event(2), 0); // 14
    assert_eq!(outbox.push(event(12_345_678), 0), PushOutcome::QueuedDroppingOldest);
    assert_eq!(outbox.counters().dropped, 2, "14 bytes over → both go");
    assert_eq!(outbox.counters().buffered_bytes, 14);
}

#[test]
fn overflow_never_drops_the_batch_on_the_wire() {
    let mut outbox = outbox_with(6, 0);
    let in_flight = outbox.take_batch(0, uuid).expect("due");
    outbox.push(event(7), 0);
    outbox.on_success();
    assert_eq!(outbox.counters().sent, 3, "the in-flight events were sent, not dropped");
    assert_eq!(numbers(&in_flight), [1, 2, 3]);
    assert!(outbox.take_batch(1000, uuid).expect("gap record").gap.is_some());
    outbox.on_success();
    assert_eq!(
        numbers(&outbox.take_batch(1000, uuid).expect("due")),
        [5, 6, 7],
        "event 4 was the oldest not in flight"
    );
}

#[test]
fn overflow_while_backing_off_drops_the_failed_batch_first() {
    let mut outbox = outbox_with(6, 0);
    outbox.take_batch(0, uuid).expect("due");
    outbox.on_failure(0, 0);
    outbox.push(event(7), 1);
    outbox.push(event(8), 1);
    let retry = outbox.take_batch(10_000, uuid).expect("retry due");
    assert_eq!(numbers(&retry), [3, 4, 5], "the oldest (1, 2) were dropped while waiting");
    assert_eq!(outbox.counters().dropped, 2);
}

#[test]
fn an_event_the_collector_would_refuse_is_dropped_not_queued() {
    let mut outbox = Outbox::new(limits());
    let huge = vec![b'x'; MAX_EVENT_BYTES + 1];
    assert_eq!(outbox.push(huge, 5), PushOutcome::TooLarge);
    let counters = outbox.counters();
    assert_eq!((counters.captured, counters.dropped, counters.buffered_events), (1, 1, 0));
    let gap = outbox.take_batch(5, uuid).expect("the drop is reported");
    assert_eq!(gap.gap, Some(GapWindow { lost_events: 1, first_lost_ms: 5, last_lost_ms: 5 }));
}

#[test]
fn an_event_that_could_not_be_serialized_is_counted_and_reported_as_a_gap() {
    let mut outbox = Outbox::new(limits());
    outbox.count_lost(9);
    let counters = outbox.counters();
    assert_eq!((counters.captured, counters.dropped, counters.buffered_events), (1, 1, 0));
    let gap = outbox.take_batch(9, uuid).expect("the loss is reported");
    assert_eq!(gap.gap, Some(GapWindow { lost_events: 1, first_lost_ms: 9, last_lost_ms: 9 }));
}

#[test]
fn answers_without_a_batch_in_flight_change_nothing() {
    let mut outbox = outbox_with(1, 0);
    outbox.on_success();
    assert_eq!(outbox.counters().sent, 0, "a stray success sends nothing");
    assert_eq!(outbox.counters().buffered_events, 1);
}

/// The gap record a batch body carries, if it is one.
fn gap_record(batch: &Batch) -> audit_event::AuditEvent {
    let parsed: IngestBatch = serde_json::from_slice(&batch.body).expect("the body is an IngestBatch");
    assert_eq!(parsed.events.len(), 1, "a gap record travels alone");
    parsed.events.into_iter().next().expect("one event")
}

/// An outbox whose buffer overflowed by `lost` events (at 1000 + n ms) while its first
/// batch kept failing: the collector is down.
fn outbox_after_outage(lost: u32) -> Outbox {
    let mut outbox = outbox_with(6, 0);
    outbox.take_batch(0, uuid).expect("due");
    outbox.on_failure(0, 0);
    for n in 0..lost {
        outbox.push(event(100 + n), 1000 + u64::from(n));
    }
    outbox
}

#[test]
fn after_drops_the_first_success_is_followed_by_a_gap_record() {
    let mut outbox = outbox_after_outage(4);
    let retry = outbox.take_batch(10_000, uuid).expect("retry due");
    assert!(retry.gap.is_none(), "while delivery fails, the oldest events are retried first");
    assert_eq!(outbox.unreported_gap(), 4);
    outbox.on_success();
    let batch = outbox.take_batch(10_000, uuid).expect("the gap record is due at once");
    let record = gap_record(&batch);
    assert_eq!(record.event_type, DELIVERY_GAP_TYPE);
    assert_eq!(record.validate(), Ok(()), "the collector accepts it");
    assert_eq!(record.uuid, encode_event_uuid(uuid()), "a fresh uuid from the source passed in");
    assert_eq!(record.timestamp, "1970-01-01T00:00:10.000+00:00", "timestamp = now");
    let gap = record.gap.expect("the gap");
    assert_eq!(
        (gap.lost_events, gap.first_lost_at.as_str(), gap.last_lost_at.as_str()),
        (4, "1970-01-01T00:00:01.000+00:00", "1970-01-01T00:00:01.003+00:00")
    );
    assert_eq!(outbox.on_success(), Some(GapWindow { lost_events: 4, first_lost_ms: 1000, last_lost_ms: 1003 }));
    assert_eq!((outbox.unreported_gap(), outbox.counters().gap_records), (0, 1));
    let next = outbox.take_batch(10_000, uuid).expect("then the events");
    assert!(next.gap.is_none());
    outbox.on_success();
    assert!(outbox.take_batch(10_000, uuid).is_none_or(|batch| batch.gap.is_none()), "reported once");
}

#[test]
fn a_failed_gap_record_is_resent_unchanged_and_later_drops_go_into_the_next_one() {
    let mut outbox = outbox_after_outage(2);
    outbox.take_batch(10_000, uuid).expect("retry");
    outbox.on_success();
    let first = outbox.take_batch(10_000, uuid).expect("gap record");
    outbox.on_failure(10_000, 0);
    for n in 0..6 {
        outbox.push(event(200 + n), 20_000); // 3 queued + 6 into a buffer of 6: 3 dropped
    }
    let mut other_uuid_called = false;
    let resent = outbox
        .take_batch(30_000, || {
            other_uuid_called = true;
            [9; 16]
        })
        .expect("gap record retry");
    assert_eq!(resent.body, first.body, "same uuid, same count: stored once even if the first try was committed");
    assert!(!other_uuid_called, "no new record while one is on its way");
    assert_eq!(outbox.unreported_gap(), 5, "2 in the frozen record + 3 since");
    assert_eq!(outbox.on_success().map(|gap| gap.lost_events), Some(2));
    let second = outbox.take_batch(30_000, || [9; 16]).expect("the later drops get their own record");
    let record = gap_record(&second);
    assert_eq!(record.gap.map(|gap| gap.lost_events), Some(3));
    assert_eq!(record.uuid, encode_event_uuid([9; 16]));
    outbox.on_success();
    let counters = outbox.counters();
    assert_eq!(
        (counters.dropped, counters.gap_records, outbox.unreported_gap()),
        (5, 2, 0),
        "every dropped event is in exactly one acknowledged gap record"
    );
}

#[test]
fn drops_without_any_failure_are_reported_at_the_next_send() {
    let mut outbox = outbox_with(6, 0);
    outbox.take_batch(0, uuid).expect("a full batch goes on the wire");
    assert_eq!(outbox.push(event(7), 2), PushOutcome::QueuedDroppingOldest);
    assert_eq!(outbox.counters().dropped, 1, "a slow collector: event 4 goes");
    outbox.on_success();
    assert_eq!(outbox.take_batch(2, uuid).and_then(|batch| batch.gap).map(|gap| gap.lost_events), Some(1));
}

#[test]
fn counters_always_add_up() {
    let mut outbox = outbox_after_outage(9);
    let mut now = 10_000;
    while let Some(batch) = outbox.take_batch(now, uuid) {
        if batch.events == 2 {
            outbox.on_rejected(now);
        } else {
            outbox.on_success();
        }
        now += 1;
        let c = outbox.counters();
        assert_eq!(c.captured, c.sent + c.dropped + c.buffered_events as u64, "{c:?}");
    }
    assert_eq!(outbox.unreported_gap(), 0);
}

#[test]
fn a_rejected_batch_is_narrowed_down_to_the_events_the_collector_refuses() {
    let mut outbox = Outbox::new(OutboxLimits { batch_max_events: 8, buffer_max_events: 100, ..limits() });
    for n in 1..=8 {
        outbox.push(event(n), 0);
    }
    let refuses = |batch: &Batch| numbers(batch).contains(&5);
    let mut sent = Vec::new();
    let mut now = 0;
    while let Some(batch) = outbox.take_batch(now, uuid) {
        if batch.gap.is_some() {
            outbox.on_success();
        } else if refuses(&batch) {
            outbox.on_rejected(now);
        } else {
            sent.extend(numbers(&batch));
            outbox.on_success();
        }
        now += 1000;
        assert!(now < 100_000, "narrowing must end");
    }
    assert_eq!(sent, [1, 2, 3, 4, 6, 7, 8], "only the refused event is missing, the order is kept");
    let counters = outbox.counters();
    assert_eq!((counters.dropped, counters.rejected, counters.gap_records), (1, 1, 1), "and it is in a gap record");
    assert!(!outbox.is_delivery_failing(), "a rejection is an answer, not an outage");
}

#[test]
fn the_halving_goes_to_a_single_event_and_drops_only_it() {
    let mut outbox = outbox_with(3, 0);
    outbox.take_batch(0, uuid).expect("due");
    assert_eq!(outbox.on_rejected(0), Rejection::Narrowing { batch_events: 3, next_batch_events: 2 });
    assert_eq!(numbers(&outbox.take_batch(0, uuid).expect("at once, no backoff")), [1, 2]);
    assert_eq!(outbox.on_rejected(0), Rejection::Narrowing { batch_events: 2, next_batch_events: 1 });
    assert_eq!(numbers(&outbox.take_batch(0, uuid).expect("at once")), [1]);
    assert_eq!(outbox.on_rejected(7), Rejection::EventDropped);
    assert_eq!(outbox.counters().buffered_events, 2);
    let gap = outbox.take_batch(7, uuid).expect("the gap record first");
    assert_eq!(gap.gap, Some(GapWindow { lost_events: 1, first_lost_ms: 7, last_lost_ms: 7 }));
}

#[test]
fn a_rejected_gap_record_is_given_up_but_stays_counted() {
    let mut outbox = outbox_with(1, 0);
    outbox.push(vec![b'x'; MAX_EVENT_BYTES + 1], 3);
    outbox.take_batch(3, uuid).expect("gap record");
    assert_eq!(
        outbox.on_rejected(4),
        Rejection::GapRecordDropped(GapWindow { lost_events: 1, first_lost_ms: 3, last_lost_ms: 3 })
    );
    assert_eq!(outbox.counters().dropped, 1);
    assert_eq!(outbox.unreported_gap(), 0, "not resent forever");
    assert!(outbox.take_batch(1000, uuid).is_some_and(|batch| batch.gap.is_none()), "the events go on");
}

#[test]
fn delivery_failing_and_fill_describe_the_trail() {
    let mut outbox = outbox_with(3, 0);
    assert!((outbox.fill() - 0.5).abs() < 1e-9, "3 of 6 events");
    assert!(!outbox.is_delivery_failing());
    outbox.take_batch(0, uuid).expect("due");
    outbox.on_failure(0, 0);
    assert!(outbox.is_delivery_failing(), "the last attempt failed");
    outbox.take_batch(10_000, uuid).expect("retry");
    assert!(outbox.is_delivery_failing(), "still, while the retry is on the wire");
    outbox.on_success();
    assert!(!outbox.is_delivery_failing());
    let bytes_bound = Outbox::new(OutboxLimits { buffer_max_bytes: 14, batch_max_bytes: 14, ..limits() });
    let mut bytes_bound = bytes_bound;
    bytes_bound.push(event(1), 0);
    assert!((bytes_bound.fill() - 0.5).abs() < 1e-9, "7 of 14 bytes is fuller than 1 of 6 events");
}

fn body_numbers(body: &[u8]) -> Vec<u64> {
    numbers(&Batch { body: body.to_vec(), events: 0, is_retry: false, gap: None })
}

#[test]
fn copies_of_everything_carry_every_buffered_event_in_batch_sized_bodies_and_change_nothing() {
    let mut outbox = outbox_with(5, 0);
    let on_the_wire = outbox.take_batch(0, uuid).expect("a full batch is due");
    assert_eq!(numbers(&on_the_wire), [1, 2, 3]);
    let copies = outbox.copies_of_everything();
    let copied: Vec<Vec<u64>> = copies.iter().map(|body| body_numbers(body)).collect();
    assert_eq!(copied, [vec![1, 2, 3], vec![4, 5]], "the batch on the wire too, then the rest, 3 per body");
    assert!(!outbox.is_drained(), "copies release nothing");
    assert!(outbox.take_batch(0, uuid).is_none(), "the tracked batch is still the one in flight");
    outbox.on_success();
    assert_eq!(numbers(&outbox.take_batch(100, uuid).expect("the rest, due")), [4, 5]);
    outbox.on_success();
    assert!(outbox.is_drained());
}

#[test]
fn copies_of_an_empty_outbox_are_one_empty_body_that_carries_the_report() {
    let outbox = Outbox::new(limits());
    assert_eq!(outbox.copies_of_everything(), [b"{\"events\":[]}".to_vec()]);
    assert!(outbox.is_drained());
}

#[test]
fn copies_keep_within_the_batch_byte_limit_and_put_the_gap_record_first() {
    let mut outbox = Outbox::new(OutboxLimits { batch_max_bytes: 25, buffer_max_events: 2, ..limits() });
    for n in 1..=4 {
        outbox.push(event(n), 0); // a buffer of 2: 1 and 2 are dropped
    }
    let record = outbox.take_batch(0, uuid).expect("the gap record goes first");
    assert!(record.gap.is_some());
    let copies = outbox.copies_of_everything();
    let first: IngestBatch = serde_json::from_slice(&copies[0]).expect("an ingest batch");
    assert_eq!(first.events[0].event_type, DELIVERY_GAP_TYPE, "the gap record being delivered is copied first");
    let copied: Vec<Vec<u64>> = copies[1..].iter().map(|body| body_numbers(body)).collect();
    assert_eq!(copied, [vec![3], vec![4]], "two events do not fit in 25 bytes");
    assert!(copies[1..].iter().all(|body| body.len() <= 25));
}

#[test]
fn a_draining_outbox_sends_every_buffered_event_at_once() {
    let mut outbox = outbox_with(2, 0);
    assert_eq!(outbox.take_batch(1, uuid), None, "2 events, 1 ms old: not due");
    outbox.start_draining();
    assert_eq!(numbers(&outbox.take_batch(1, uuid).expect("due when draining")), [1, 2]);
}
