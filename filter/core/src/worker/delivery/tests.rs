//! Delivery driven as the proxy drives it (captures, ticks, answers), against a fake host.

use log::Level;

use super::fake_host::FakeHost;
use super::*;
use crate::worker::failure_policy::Refusal;

const SENDER: &str = "AAAAAAAAAAAAAAAAAAAAAA";

/// Batches of 3 events, due after 100 ms; a buffer of 6; backoff from 200 ms.
fn delivery(failure_policy: &str) -> Delivery {
    let json = format!(
        r#"{{"collector": {{"cluster": "trail", "path": "/v1/events", "authority": "collector", "timeoutMs": 2500}},
            "batch": {{"maxEvents": 3, "flushIntervalMs": 100}},
            "buffer": {{"maxEvents": 6}},
            "retry": {{"initialBackoffMs": 200, "maxBackoffMs": 1000}},
            "failurePolicy": {failure_policy}}}"#
    );
    let config = FilterConfig::from_json(json.as_bytes()).expect("a valid configuration");
    let delivery = Delivery::new(&config, " s3cret ", SENDER.to_owned());
    // Started at 0 ms, its announcement acknowledged (tests then use a host of their own).
    let mut start = FakeHost::default();
    delivery.on_start(&mut start, 0);
    answer_last(&delivery, &mut start, Some(200), 0);
    delivery
}

fn fail_open() -> Delivery {
    delivery("{}")
}

fn capture(delivery: &Delivery, host: &mut FakeHost, n: u32, now_ms: u64) {
    let json = format!("{{\"n\":{n}}}").into_bytes();
    delivery.on_captured(host, &format!("uuid-{n}"), Ok::<_, String>(json), now_ms);
}

/// Answers the last call sent.
fn answer_last(delivery: &Delivery, host: &mut FakeHost, status: Option<u16>, now_ms: u64) {
    let token = host.last_token();
    delivery.on_answer(host, token, status, now_ms);
}

/// The event numbers in a sent body (gap records have none).
fn numbers(body: &[u8]) -> Vec<u64> {
    let value: serde_json::Value = serde_json::from_slice(body).expect("the body is JSON");
    let events = value["events"].as_array().expect("`events` is an array");
    events.iter().filter_map(|event| event["n"].as_u64()).collect()
}

/// The sender's report a body carries.
fn sender_report(body: &[u8]) -> serde_json::Value {
    let value: serde_json::Value = serde_json::from_slice(body).expect("the body is JSON");
    value["sender"].clone()
}

fn is_gap_record(body: &[u8]) -> bool {
    let value: serde_json::Value = serde_json::from_slice(body).expect("the body is JSON");
    value["events"][0]["type"] == audit_event::DELIVERY_GAP_TYPE
}

#[test]
fn a_due_batch_is_posted_to_the_collector_cluster_with_the_ingest_token() {
    let (delivery, mut host) = (fail_open(), FakeHost::default());
    for n in 1..=2 {
        capture(&delivery, &mut host, n, 0);
    }
    delivery.on_tick(&mut host, 50);
    assert!(host.sent.is_empty(), "two events, not yet a flush interval old: nothing due");
    delivery.on_tick(&mut host, 100);
    let call = host.sent.first().expect("due by age");
    assert_eq!(call.cluster, "trail");
    let header = |name: &str| call.headers.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str());
    assert_eq!(
        (header(":method"), header(":path"), header(":authority"), header("content-type"), header("authorization")),
        (Some("POST"), Some("/v1/events"), Some("collector"), Some("application/json"), Some("Bearer s3cret"))
    );
    assert_eq!(call.timeout_ms, 2500, "every dispatch has the configured timeout");
    assert_eq!(numbers(&call.body), [1, 2]);
    assert_eq!(host.last_published().outbox.captured, 2, "each tick publishes the totals");
}

#[test]
fn an_acknowledged_batch_is_followed_at_once_by_the_next_due_one() {
    let (delivery, mut host) = (fail_open(), FakeHost::default());
    for n in 1..=5 {
        capture(&delivery, &mut host, n, 0);
    }
    delivery.on_tick(&mut host, 0);
    assert_eq!(host.sent.len(), 1, "one full batch on the wire");
    delivery.on_tick(&mut host, 1000);
    assert_eq!(host.sent.len(), 1, "never a second batch while one is on the wire");
    answer_last(&delivery, &mut host, Some(200), 1000);
    assert_eq!(host.sent.len(), 2, "the answer flushes the next batch without waiting for a tick");
    assert_eq!(numbers(&host.sent[1].body), [4, 5]);
    let published = host.last_published().outbox;
    assert_eq!((published.sent, published.buffered_events), (3, 2), "the answer publishes the totals");
}

#[test]
fn answers_to_other_calls_are_ignored() {
    let (delivery, mut host) = (fail_open(), FakeHost::default());
    for n in 1..=3 {
        capture(&delivery, &mut host, n, 0);
    }
    delivery.on_tick(&mut host, 0);
    let token = host.last_token();
    delivery.on_answer(&mut host, token + 7, Some(200), 0);
    delivery.on_answer(&mut host, token + 7, None, 0);
    assert_eq!(host.sent.len(), 1, "a stale answer flushes nothing");
    assert!(host.logs.is_empty(), "and logs nothing: {:?}", host.logs);
    assert!(host.published.iter().all(|snapshot| snapshot.outbox.sent == 0), "and sends nothing");
    delivery.on_answer(&mut host, token, Some(200), 0);
    assert_eq!(host.last_published().outbox.sent, 3, "the answer to the call on the wire counts");
    delivery.on_answer(&mut host, token, Some(200), 0);
    assert_eq!(host.last_published().outbox.sent, 3, "a second answer to the same call is stale too");
}

#[test]
fn a_failed_batch_is_kept_and_resent_after_the_backoff() {
    let (delivery, mut host) = (fail_open(), FakeHost::default());
    for n in 1..=3 {
        capture(&delivery, &mut host, n, 0);
    }
    delivery.on_tick(&mut host, 0);
    host.answer_body = "overloaded".into();
    answer_last(&delivery, &mut host, Some(503), 0);
    assert_eq!(
        host.logged(Level::Warn, "batch not delivered (status 503: overloaded); retrying in 100 ms"),
        1,
        "a collector outage is a warning: {:?}",
        host.logs
    );
    assert!(host.last_published().delivery_failing);
    delivery.on_tick(&mut host, 99);
    assert_eq!(host.sent.len(), 1, "still backing off");
    delivery.on_tick(&mut host, 100);
    assert_eq!(host.sent.len(), 2);
    assert_eq!(numbers(&host.sent[1].body), numbers(&host.sent[0].body), "the same events, in the same order");
    assert_eq!(host.logged(Level::Info, "retrying a batch of 3 events"), 1);
    answer_last(&delivery, &mut host, None, 100);
    assert_eq!(host.logged(Level::Warn, "(no response (reset))"), 1, "a reset is a failure too");
}

#[test]
fn configuration_problems_are_errors_and_outages_warnings() {
    let (delivery, mut host) = (fail_open(), FakeHost::default());
    for n in 1..=3 {
        capture(&delivery, &mut host, n, 0);
    }
    delivery.on_tick(&mut host, 0);
    host.answer_body = "no such token".into();
    answer_last(&delivery, &mut host, Some(401), 0);
    assert_eq!(host.logged(Level::Error, "status 401: no such token; the collector refuses this filter's requests"), 1);
    assert_eq!(host.logged(Level::Error, "check the ingest token (`collector.ingestTokenEnv`)"), 1);
    assert_eq!(host.last_published().outbox.buffered_events, 3, "events are kept and retried");

    host.dispatch_error = Some("BadArgument".into());
    delivery.on_tick(&mut host, 10_000);
    assert_eq!(
        host.logged(Level::Error, "dispatch to cluster `trail` failed: BadArgument"),
        1,
        "a cluster Envoy does not know is an operator's problem: {:?}",
        host.logs
    );
    host.dispatch_error = None;
    delivery.on_tick(&mut host, 20_000);
    assert_eq!(host.sent.len(), 2, "the batch that could not be dispatched is retried after its backoff");
    assert_eq!(numbers(&host.sent[1].body), [1, 2, 3]);
}

#[test]
fn a_rejected_batch_is_narrowed_at_once_and_only_the_refused_event_is_dropped() {
    let (delivery, mut host) = (fail_open(), FakeHost::default());
    for n in 1..=3 {
        capture(&delivery, &mut host, n, 0);
    }
    delivery.on_tick(&mut host, 0);
    host.answer_body = "event 2 is invalid".into();
    answer_last(&delivery, &mut host, Some(422), 0);
    assert_eq!(numbers(&host.sent[1].body), [1, 2], "half the batch is sent at once, without a backoff");
    let refuses_event_2 = |body: &[u8]| numbers(body).contains(&2);
    let mut delivered = Vec::new();
    let mut now = 0;
    for _ in 0..20 {
        let Some(call) = host.sent.last().cloned() else { break };
        let status = if refuses_event_2(&call.body) { 422 } else { 200 };
        if status == 200 && !is_gap_record(&call.body) {
            delivered.extend(numbers(&call.body));
        }
        delivery.on_answer(&mut host, call.token, Some(status), now);
        now += 1000;
        if host.last_token() == call.token {
            delivery.on_tick(&mut host, now);
        }
        if host.last_token() == call.token {
            break;
        }
    }
    assert_eq!(delivered, [1, 3], "in order");
    assert_eq!(host.logged(Level::Error, "rejected a batch of 3 events (status 422: event 2 is invalid)"), 1);
    assert_eq!(host.logged(Level::Error, "rejected an event (status 422: event 2 is invalid); it is dropped"), 1);
    let published = host.last_published();
    assert_eq!((published.outbox.dropped, published.outbox.rejected, published.outbox.gap_records), (1, 1, 1));
    assert!(!published.delivery_failing, "a rejection is an answer, not an outage");
}

#[test]
fn drops_are_announced_once_per_run_and_delivery_resuming_is_logged() {
    let (delivery, mut host) = (fail_open(), FakeHost::default());
    for n in 1..=3 {
        capture(&delivery, &mut host, n, 0);
    }
    delivery.on_tick(&mut host, 0);
    answer_last(&delivery, &mut host, Some(503), 0);
    for n in 4..=10 {
        capture(&delivery, &mut host, n, 1_000 + u64::from(n));
    }
    delivery.on_tick(&mut host, 10);
    delivery.on_tick(&mut host, 20);
    let announcement = "events are being dropped (4 so far";
    assert_eq!(host.logged(Level::Warn, announcement), 1, "announced once, not on every tick: {:?}", host.logs);

    delivery.on_tick(&mut host, 10_000);
    answer_last(&delivery, &mut host, Some(200), 10_000);
    let gap_call = host.sent.last().cloned().expect("the gap record follows the first success");
    assert!(is_gap_record(&gap_call.body));
    assert_eq!(host.logged(Level::Info, "sending a gap record (4 events dropped)"), 1);
    delivery.on_answer(&mut host, gap_call.token, Some(200), 10_000);
    assert_eq!(
        host.logged(
            Level::Warn,
            "delivery resumed; a gap record in the trail says 4 events were dropped between \
             1970-01-01T00:00:01.007+00:00 and 1970-01-01T00:00:01.010+00:00"
        ),
        1,
        "{:?}",
        host.logs
    );
    assert_eq!(host.random_ids_taken, 1, "the gap record's uuid comes from the host's randomness");

    answer_last(&delivery, &mut host, Some(503), 10_000);
    for n in 11..=20 {
        capture(&delivery, &mut host, n, 20_000);
    }
    delivery.on_tick(&mut host, 20_000);
    assert_eq!(host.logged(Level::Warn, "events are being dropped"), 2, "a new run of drops is announced again");
}

#[test]
fn an_event_that_cannot_be_buffered_is_logged_and_counted() {
    let (delivery, mut host) = (fail_open(), FakeHost::default());
    delivery.on_captured(&mut host, "uuid-a", Err("key must be a string"), 5);
    assert_eq!(
        host.logged(Level::Error, "could not serialize event uuid-a: key must be a string; counted as dropped"),
        1
    );
    let huge = vec![b'x'; audit_event::event::MAX_EVENT_BYTES + 1];
    delivery.on_captured(&mut host, "uuid-b", Ok::<_, String>(huge), 6);
    assert_eq!(host.logged(Level::Warn, "event uuid-b is larger than the collector accepts; dropped and counted"), 1);
    delivery.on_tick(&mut host, 6);
    let counters = host.last_published().outbox;
    assert_eq!((counters.captured, counters.dropped, counters.buffered_events), (2, 2, 0));
    assert!(host.sent.last().is_some_and(|call| is_gap_record(&call.body)), "both are reported in a gap record");
}

#[test]
fn the_tick_is_the_flush_interval_between_10_and_100_ms() {
    let with_interval = |ms: u64| {
        let config =
            FilterConfig::from_json(format!(r#"{{"batch": {{"flushIntervalMs": {ms}}}}}"#).as_bytes()).expect("valid");
        Delivery::new(&config, "token", SENDER.to_owned()).tick_period().as_millis()
    };
    assert_eq!((with_interval(1), with_interval(40), with_interval(1000)), (10, 40, 100));
}

/// A fail-closed worker whose last delivery attempt failed.
fn fail_closed_and_failing(host: &mut FakeHost) -> Delivery {
    let delivery = delivery(r#"{"mode": "closed"}"#);
    for n in 1..=3 {
        capture(&delivery, host, n, 0);
    }
    delivery.on_tick(host, 0);
    answer_last(&delivery, host, None, 0);
    delivery
}

#[test]
fn fail_closed_refuses_a_mutation_with_a_local_503_while_delivery_fails() {
    let mut host = FakeHost::default();
    let delivery = fail_closed_and_failing(&mut host);
    host.method = Some("PUT".into());
    assert_eq!(delivery.refusal(&mut host), Admission::Refuse(Refusal::CollectorUnreachable));
    let reply = host.local_replies.first().expect("a local reply was sent");
    assert_eq!(reply.status, 503);
    assert!(reply.headers.contains(&("x-audit-sidecar-refused".into(), "audit_collector_unreachable".into())));
    assert!(reply.headers.contains(&("content-type".into(), "application/json".into())));
    assert_eq!(reply.body, crate::worker::failure_policy::refusal_body(Refusal::CollectorUnreachable, "PUT"));
    delivery.on_tick(&mut host, 1);
    assert_eq!(host.last_published().refused, 1, "refusals are counted in the metrics");

    host.method = Some("GET".into());
    assert_eq!(delivery.refusal(&mut host), Admission::Forward, "reads go on");
    assert_eq!(host.local_replies.len(), 1);
}

#[test]
fn fail_closed_forwards_what_it_cannot_refuse_and_says_so() {
    let mut host = FakeHost::default();
    let delivery = fail_closed_and_failing(&mut host);
    host.method = None;
    assert_eq!(delivery.refusal(&mut host), Admission::Forward, "no method, no refusal");
    host.method = Some("DELETE".into());
    host.local_reply_error = Some("BadArgument".into());
    assert_eq!(delivery.refusal(&mut host), Admission::Forward);
    assert_eq!(host.logged(Level::Error, "could not refuse a DELETE request (BadArgument); it is forwarded"), 1);
    delivery.on_tick(&mut host, 1);
    assert_eq!(host.last_published().refused, 0, "nothing was refused");
}

#[test]
fn fail_closed_lets_everything_through_while_delivery_works_and_fail_open_always() {
    let mut host = FakeHost { method: Some("POST".into()), ..FakeHost::default() };
    let closed = delivery(r#"{"mode": "closed"}"#);
    assert_eq!(closed.refusal(&mut host), Admission::Forward, "a healthy trail");
    let open = fail_open();
    for n in 1..=3 {
        capture(&open, &mut host, n, 0);
    }
    open.on_tick(&mut host, 0);
    answer_last(&open, &mut host, None, 0);
    assert_eq!(open.refusal(&mut host), Admission::Forward, "fail-open never refuses");
    assert!(host.local_replies.is_empty());
}

#[test]
fn a_worker_announces_itself_when_it_starts_before_it_captures_anything() {
    let config = FilterConfig::from_json(br#"{"batch": {"flushIntervalMs": 100}}"#).expect("a valid configuration");
    let (delivery, mut host) = (Delivery::new(&config, "t", SENDER.to_owned()), FakeHost::default());
    delivery.on_start(&mut host, 7);
    assert_eq!(host.sent.len(), 1, "the announcement goes at once");
    assert_eq!(numbers(&host.sent[0].body), Vec::<u64>::new());
    let report = sender_report(&host.sent[0].body);
    assert_eq!((report["id"].as_str(), report["captured"].as_u64()), (Some(SENDER), Some(0)));
    assert!(report.get("stopping").is_none());
    delivery.on_tick(&mut host, 50);
    assert_eq!(host.sent.len(), 1, "one call on the wire at a time");

    let (unsent, mut host) = (Delivery::new(&config, "t", SENDER.to_owned()), FakeHost::default());
    host.dispatch_error = Some("BadArgument".into());
    unsent.on_start(&mut host, 0);
    host.dispatch_error = None;
    assert_eq!(host.logged(Level::Error, "heartbeat to cluster"), 1, "{:?}", host.logs);
    assert!(!unsent.holds_for_announcement(|| 1), "no request waits for an announcement that failed");
    unsent.on_tick(&mut host, 99);
    assert!(host.sent.is_empty(), "not before the backoff (100-200 ms after a first failure)");
    unsent.on_tick(&mut host, 200);
    assert_eq!(host.sent.len(), 1, "a failed announcement goes with the first tick after its backoff");
}

#[test]
fn every_call_carries_the_senders_report_and_an_idle_sender_sends_heartbeats() {
    let (delivery, mut host) = (fail_open(), FakeHost::default());
    delivery.on_tick(&mut host, 99);
    assert!(host.sent.is_empty(), "within a flush interval of the announcement");
    delivery.on_tick(&mut host, 100);
    assert_eq!(host.sent.len(), 1, "a worker that never captured anything heartbeats too");
    assert_eq!(sender_report(&host.sent[0].body)["captured"], 0);
    answer_last(&delivery, &mut host, Some(200), 100);
    host.sent.clear();
    assert_eq!(delivery.sender_seq().map(|sender| sender.seq), Some(1), "numbers start at 1");
    for n in 1..=3 {
        capture(&delivery, &mut host, n, 1000);
    }
    delivery.on_tick(&mut host, 1000);
    let batch: serde_json::Value = serde_json::from_slice(&host.sent[0].body).expect("JSON");
    assert_eq!(batch["sender"]["id"], SENDER);
    assert_eq!(batch["sender"]["captured"], 3);
    assert_eq!(batch["sender"]["heartbeatMs"], 200, "a flush interval (100 ms) plus a tick");
    answer_last(&delivery, &mut host, Some(200), 1000);
    delivery.on_tick(&mut host, 1099);
    assert_eq!(host.sent.len(), 1, "no heartbeat within a flush interval of the last report");
    delivery.on_tick(&mut host, 1100);
    assert_eq!(host.sent.len(), 2, "idle for a flush interval: a heartbeat");
    let heartbeat: serde_json::Value = serde_json::from_slice(&host.sent[1].body).expect("JSON");
    assert_eq!(heartbeat["events"], serde_json::json!([]));
    assert_eq!(heartbeat["sender"]["captured"], 3);
    assert_eq!(delivery.sender_seq().map(|sender| sender.seq), Some(4));
    delivery.on_tick(&mut host, 1300);
    assert_eq!(host.sent.len(), 2, "one call on the wire at a time: the heartbeat is unanswered");
    answer_last(&delivery, &mut host, Some(200), 1300);
    delivery.on_tick(&mut host, 1400);
    assert_eq!(host.sent.len(), 3, "the next heartbeat");
}

#[test]
fn a_gap_record_names_the_numbers_its_sender_dropped() {
    let (delivery, mut host) = (fail_open(), FakeHost::default());
    for n in 1..=3 {
        capture(&delivery, &mut host, n, 0);
    }
    delivery.on_tick(&mut host, 0);
    answer_last(&delivery, &mut host, Some(503), 0);
    for n in 4..=12 {
        capture(&delivery, &mut host, n, 10); // a buffer of 6, none on the wire: 1 to 6 are dropped
    }
    delivery.on_tick(&mut host, 1000);
    answer_last(&delivery, &mut host, Some(200), 1000);
    delivery.on_tick(&mut host, 1000);
    let record: serde_json::Value = serde_json::from_slice(&host.sent.last().expect("sent").body).expect("JSON");
    let gap = &record["events"][0]["gap"];
    assert_eq!(gap["lostEvents"], 6, "{record}");
    assert_eq!(gap["sender"], SENDER);
    assert_eq!(gap["seqs"], serde_json::json!([{"first": 1, "last": 6}]));
}

#[test]
fn shutting_down_sends_what_is_buffered_even_before_it_is_due() {
    let (delivery, mut host) = (fail_open(), FakeHost::default());
    capture(&delivery, &mut host, 1, 50);
    delivery.on_tick(&mut host, 60);
    assert!(host.sent.is_empty(), "one event, 10 ms old: not due");
    assert_eq!(delivery.on_done(&mut host, 60), Shutdown::Delivering, "until it is acknowledged");
    assert_eq!(host.sent.len(), 1, "on_done sends it");
    assert_eq!(numbers(&host.sent[0].body), [1]);
    let report = sender_report(&host.sent[0].body);
    assert_eq!((report["captured"].as_u64(), report["stopping"].as_bool()), (Some(1), Some(true)), "the final report");
}

#[test]
fn shutting_down_with_nothing_buffered_sends_the_final_report_and_is_finished() {
    let (delivery, mut host) = (fail_open(), FakeHost::default());
    capture(&delivery, &mut host, 1, 0);
    delivery.on_tick(&mut host, 100);
    answer_last(&delivery, &mut host, Some(200), 100);
    assert_eq!(delivery.on_done(&mut host, 150), Shutdown::Finished);
    let last = host.sent.last().expect("a call");
    assert!(numbers(&last.body).is_empty(), "no events left");
    assert_eq!(sender_report(&last.body)["captured"], 1, "the final report");
    assert_eq!(host.finished_shutdowns, 0, "on_done's answer says it: no proxy_done needed");
}

#[test]
fn shutting_down_copies_the_batch_on_the_wire_and_the_rest_then_delivers_them_and_finishes_once() {
    let (delivery, mut host) = (fail_open(), FakeHost::default());
    for n in 1..=5 {
        capture(&delivery, &mut host, n, 0);
    }
    delivery.on_tick(&mut host, 0);
    assert_eq!(numbers(&host.sent[0].body), [1, 2, 3], "a full batch on the wire");
    let on_the_wire = host.last_token();
    assert_eq!(delivery.on_done(&mut host, 5), Shutdown::Delivering);
    let published = host.last_published();
    assert_eq!((published.outbox.buffered_events, published.outbox.buffered_bytes), (0, 0), "no longer counted");
    assert_eq!(published.outbox.captured, 5, "the counters still are");
    let copies: Vec<Vec<u64>> = host.sent[1..].iter().map(|call| numbers(&call.body)).collect();
    assert_eq!(copies, [vec![1, 2, 3], vec![4, 5]], "everything, in batch-sized calls, without waiting");
    assert!(host.sent[1..].iter().all(|call| sender_report(&call.body)["captured"] == 5));

    // Envoy runs on (the plugin was replaced): the tracked delivery goes on as usual.
    delivery.on_answer(&mut host, on_the_wire, Some(200), 10);
    assert_eq!(numbers(&host.sent.last().expect("sent").body), [4, 5], "the rest follows the acknowledgement");
    assert_eq!(host.finished_shutdowns, 0, "4 and 5 are not acknowledged yet");
    answer_last(&delivery, &mut host, Some(200), 20);
    assert_eq!(host.finished_shutdowns, 1, "drained: the host is told");
    delivery.on_tick(&mut host, 500);
    answer_last(&delivery, &mut host, Some(200), 500);
    assert_eq!(host.finished_shutdowns, 1, "only once");
    assert_eq!(host.logged(Level::Info, "shut down with everything delivered"), 1);
}

#[test]
fn shutting_down_while_the_collector_is_down_gives_up_after_the_grace_and_says_what_is_left() {
    let (delivery, mut host) = (fail_open(), FakeHost::default());
    for n in 1..=2 {
        capture(&delivery, &mut host, n, 0);
    }
    assert_eq!(delivery.on_done(&mut host, 0), Shutdown::Delivering);
    let mut now = 0;
    while now < SHUTDOWN_GRACE_MS {
        now += 100;
        delivery.on_tick(&mut host, now);
        if host.finished_shutdowns == 0 {
            answer_last(&delivery, &mut host, Some(503), now);
        }
        assert!(host.finished_shutdowns == 0 || now >= SHUTDOWN_GRACE_MS, "finished early, at {now} ms");
    }
    assert_eq!(host.finished_shutdowns, 1, "given up at the grace");
    assert_eq!(host.logged(Level::Error, "with 2 events not acknowledged"), 1);
}

#[test]
fn a_new_workers_requests_wait_for_the_answer_to_its_announcement_at_most_a_call_timeout() {
    let config = FilterConfig::from_json(br#"{"batch": {"flushIntervalMs": 100}, "collector": {"timeoutMs": 2000}}"#)
        .expect("a valid configuration");
    let started = || {
        let (delivery, mut host) = (Delivery::new(&config, "t", SENDER.to_owned()), FakeHost::default());
        delivery.on_start(&mut host, 1000);
        (delivery, host)
    };
    let (delivery, mut host) = (Delivery::new(&config, "t", SENDER.to_owned()), FakeHost::default());
    assert!(!delivery.holds_for_announcement(|| 0), "a worker the host never started holds nothing");
    delivery.on_start(&mut host, 1000);
    assert!(delivery.holds_for_announcement(|| 1005), "announced, no answer yet: wait");
    assert!(!delivery.releases_held(1005));
    delivery.on_tick(&mut host, 2900);
    assert!(delivery.holds_for_announcement(|| 2999), "still within the call timeout");
    assert!(delivery.releases_held(3000), "no answer within the call timeout: go on regardless");

    let (delivery, mut host) = started();
    answer_last(&delivery, &mut host, Some(200), 1004);
    assert!(delivery.releases_held(1004) && !delivery.holds_for_announcement(|| 1004), "known: go on");

    let (delivery, mut host) = started();
    answer_last(&delivery, &mut host, None, 1004);
    assert!(delivery.releases_held(1004), "the collector cannot be reached: availability first");

    let (delivery, mut host) = (Delivery::new(&config, "t", SENDER.to_owned()), FakeHost::default());
    host.dispatch_error = Some("BadArgument".into());
    delivery.on_start(&mut host, 1000);
    assert!(delivery.releases_held(1000), "an announcement that could not be sent holds nothing");
}
