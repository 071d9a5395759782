//! The /audit API for security teams, against a real collector: every filter, filters
//! composed with `next` and `from` (a filtered walk is exactly the filtered full walk),
//! `pageNumber` as page N of that walk, PactFlow's time forms, 400s naming the parameter, token scopes and the `token` subcommands, an expired `from`
//! (410), `/metrics` moving, the OpenAPI document.

// Test code: a panic here is a failed test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

use common::{bearer, uuid, Collector, INGEST_TOKEN};
use serde_json::{json, Value};

const TYPES: [&str; 3] =
    ["PactBroker::Api::Resources::Pact", "PactBroker::Api::Resources::Tag", "PactBroker::Api::Resources::Index"];
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const STATUSES: [u16; 3] = [200, 201, 404];

/// Event `n`, with type, user, method, status and time varying with `n`.
fn varied_event(n: u32) -> Value {
    let user = n % 5;
    let minute = (n * 7) % 60; // timestamps are not monotonic in n, as across Envoy workers
    json!({
        "uuid": uuid(n),
        "timestamp": format!("2030-01-02T03:{minute:02}:05.678+00:00"),
        "type": TYPES[(n % 3) as usize],
        "db_user_id": if user == 0 { Value::Null } else { json!(user) },
        "user_email": if user == 0 { Value::Null } else { json!(format!("user{user}@example.com")) },
        "user_id": if user == 0 { Value::Null } else { json!(user.to_string()) },
        "payload": {"path": format!("/things/{n}"), "queryString": "", "method": METHODS[(n % 4) as usize],
                    "userAgent": "test", "referer": null, "params": {"resource_name": "thing"}},
        "response": {"status": STATUSES[(n % 3) as usize], "durationMs": 1.0, "outcome": "success"}
    })
}

async fn collector_with(count: u32) -> (Collector, Vec<Value>) {
    let collector = Collector::start().await;
    let sent: Vec<Value> = (0..count).map(varied_event).collect();
    for chunk in sent.chunks(13) {
        assert_eq!(collector.ingest(chunk).await.status, 200);
    }
    (collector, sent)
}

/// Walks from `first` following `next`, returning the uuids in order.
async fn walk(collector: &Collector, first: &str) -> Vec<String> {
    let prefix = format!("http://{}", collector.address);
    let mut target = first.to_owned();
    let mut seen = Vec::new();
    for _ in 0..1000 {
        let reply = collector.audit(&target).await;
        assert_eq!(reply.status, 200, "{target}: {}", reply.text());
        seen.extend(reply.event_uuids());
        match reply.json()["_links"]["next"]["href"].as_str() {
            Some(next) => target = next.strip_prefix(&prefix).unwrap_or(next).to_owned(),
            None => return seen,
        }
    }
    panic!("the walk from {first} does not end");
}

fn minute_of(event: &Value) -> u32 {
    event["timestamp"].as_str().and_then(|t| t.get(14..16)).and_then(|m| m.parse().ok()).unwrap_or(99)
}

#[tokio::test]
async fn a_filtered_walk_is_the_filtered_full_walk_in_order_without_repeats() {
    let (collector, sent) = collector_with(60).await;
    type Keep = fn(&Value) -> bool;
    let cases: Vec<(&str, Keep)> = vec![
        ("type=PactBroker%3A%3AApi%3A%3AResources%3A%3ATag", |e| e["type"] == TYPES[1]),
        ("userUuid=3", |e| e["user_id"] == "3"),
        ("user_email=user2%40example.com", |e| e["user_email"] == "user2@example.com"),
        ("method=put", |e| e["payload"]["method"] == "PUT"),
        ("status=404", |e| e["response"]["status"] == 404),
        ("since=2030-01-02T03%3A30%3A00Z", |e| minute_of(e) >= 30),
        ("until=2030-01-02T03%3A30%3A00%2B00%3A00", |e| minute_of(e) < 30),
        ("since=2030-01-02T03%3A10%3A00Z&until=2030-01-02T03%3A50%3A00Z&method=GET", |e| {
            (10..50).contains(&minute_of(e)) && e["payload"]["method"] == "GET"
        }),
        ("type=PactBroker%3A%3AApi%3A%3AResources%3A%3APact&status=200&userUuid=1", |e| {
            e["type"] == TYPES[0] && e["response"]["status"] == 200 && e["user_id"] == "1"
        }),
        ("type=nothing-has-this-type", |_| false),
        // No index: pages of at most 2000 examined events, and `next` carries the prefix.
        ("path_prefix=%2Fthings%2F1", |e| e["payload"]["path"].as_str().is_some_and(|p| p.starts_with("/things/1"))),
        ("path_prefix=%2Fthings%2F2&method=GET", |e| {
            e["payload"]["path"].as_str().is_some_and(|p| p.starts_with("/things/2")) && e["payload"]["method"] == "GET"
        }),
    ];
    for (filter, keep) in cases {
        let expected: Vec<String> =
            sent.iter().filter(|e| keep(e)).map(|e| e["uuid"].as_str().unwrap_or_default().to_owned()).collect();
        let ascending = walk(&collector, &format!("/audit?{filter}&pageSize=4")).await;
        assert_eq!(ascending, expected, "{filter}: the walk differs from the filtered trail");
        let unique: HashSet<&String> = ascending.iter().collect();
        assert_eq!(unique.len(), ascending.len(), "{filter}: an event was repeated");

        let descending = walk(&collector, &format!("/audit?{filter}&sort=-timestamp&pageSize=3")).await;
        let reversed: Vec<String> = expected.iter().rev().cloned().collect();
        assert_eq!(descending, reversed, "{filter}, newest first");

        // Resuming with `from` (as a consumer does) keeps the filter.
        if expected.len() > 2 {
            let resumed = walk(&collector, &format!("/audit?from={}&{filter}&pageSize=2", expected[2])).await;
            assert_eq!(resumed, expected[2..].to_vec(), "{filter} from the third match");
        }
    }
}

#[tokio::test]
async fn next_links_carry_every_filter() {
    let (collector, _) = collector_with(30).await;
    let page = collector.audit("/audit?method=GET&sort=-timestamp&pageSize=2&pageNumber=1").await.json();
    let next = page["_links"]["next"]["href"].as_str().unwrap_or_default().to_owned();
    assert!(next.contains("method=GET") && next.contains("sort=-timestamp") && next.contains("pageSize=2"), "{next}");
    assert!(!next.contains("pageNumber"), "{next}");
}

#[tokio::test]
async fn bad_values_are_400_problems_naming_the_parameter() {
    let (collector, _) = collector_with(3).await;
    for (query, parameter) in [
        ("since=last-tuesday", "since"),
        ("until=2030-02-30T00:00:00Z", "until"),
        ("sort=newest", "sort"),
        ("pageNumber=0", "pageNumber"),
        ("since=2030-01-02T03", "since"),
        ("pageSize=500", "pageSize"),
        ("status=abc", "status"),
        ("method=GET%2FPOST", "method"),
        ("type=a&type=b", "type"),
        ("path_prefix=things", "path_prefix"),
        ("path_prefix=%2Fthings&pageNumber=2", "pageNumber"),
    ] {
        let reply = collector.audit(&format!("/audit?{query}")).await;
        assert_eq!(reply.status, 400, "{query}: {}", reply.text());
        let detail = reply.problem_detail();
        assert!(detail.starts_with(&format!("`{parameter}`")), "{query}: {detail}");
        assert_eq!(reply.json()["type"], "urn:audit-sidecar:problem:invalid-parameter");
    }
    let reply = collector.audit("/audit/activity?path_prefix=%2Fthings").await;
    assert_eq!(reply.status, 400, "the chart counts nothing by path: {}", reply.text());
    assert!(reply.problem_detail().starts_with("`path_prefix`"), "{}", reply.problem_detail());
    let reply = collector.audit("/audit?pageNumber=10002").await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.problem_detail().contains("_links.next"), "a too deep pageNumber says what to do instead");
}

/// Walks from `first` following `next`, returning each page's uuids and its `next` href.
async fn walk_pages(collector: &Collector, first: &str) -> Vec<(Vec<String>, Option<String>)> {
    let mut target = first.to_owned();
    let mut pages = Vec::new();
    for _ in 0..1000 {
        let reply = collector.audit(&target).await;
        assert_eq!(reply.status, 200, "{target}: {}", reply.text());
        let next = reply.json()["_links"]["next"]["href"].as_str().map(str::to_owned);
        pages.push((reply.event_uuids(), next.clone()));
        match next {
            Some(next) => {
                target = next.strip_prefix(&format!("http://{}", collector.address)).unwrap_or(&next).to_owned()
            }
            None => return pages,
        }
    }
    panic!("the walk from {first} does not end");
}

#[tokio::test]
async fn page_number_n_is_the_nth_page_of_the_cursor_walk_for_random_filters_both_ways() {
    let (collector, sent) = collector_with(97).await;
    let choices: [&[&str]; 7] = [
        &["type=PactBroker%3A%3AApi%3A%3AResources%3A%3APact", "type=PactBroker%3A%3AApi%3A%3AResources%3A%3ATag"],
        &["userUuid=1", "userUuid=4"],
        &["user_email=user2%40example.com"],
        &["method=GET", "method=delete"],
        &["status=201", "status=404"],
        &["since=2030-01-02T03%3A20%3A00Z", "since=2030-01-02T03:40:00"],
        &["until=2030-01-02T03%3A45%3A00Z", "until=2030-01-02T03:50"],
    ];
    // xorshift: the same "random" cases on every run, so a failure can be replayed.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut random = |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % bound as u64).unwrap_or(0)
    };
    for round in 0..16 {
        let mut parameters: Vec<String> = Vec::new();
        for choice in &choices {
            if random(3) == 0 {
                parameters.push(choice[random(choice.len())].to_owned());
            }
        }
        if random(2) == 0 {
            parameters.push("sort=-timestamp".to_owned());
        }
        if random(3) == 0 {
            parameters.push(format!("from={}", sent[random(sent.len())]["uuid"].as_str().unwrap_or_default()));
        }
        parameters.push(format!("pageSize={}", 1 + random(9)));
        let query = parameters.join("&");
        let walk = walk_pages(&collector, &format!("/audit?{query}")).await;
        for number in 1..=walk.len() + 1 {
            let target = format!("/audit?{query}&pageNumber={number}");
            let reply = collector.audit(&target).await;
            assert_eq!(reply.status, 200, "round {round}, {target}: {}", reply.text());
            let (expected, expected_next) = walk.get(number - 1).cloned().unwrap_or_default();
            assert_eq!(reply.event_uuids(), expected, "round {round}: {target} is not page {number} of the walk");
            let next = reply.json()["_links"]["next"]["href"].as_str().map(str::to_owned);
            assert_eq!(next, expected_next, "round {round}: {target} links `next` elsewhere than the walk");
            let this = reply.json()["_links"]["self"]["href"].as_str().unwrap_or_default().to_owned();
            assert!(this.ends_with(&format!("pageNumber={number}")), "round {round}: self is {this}");
        }
    }
}

#[tokio::test]
async fn every_parameter_pactflows_audit_api_documents_is_accepted_as_its_clients_send_it() {
    let (collector, _) = collector_with(5).await;
    for query in [
        "pageNumber=1&pageSize=100",
        "pageNumber=2&pageSize=2",
        "pageNumber=7&pageSize=100",
        "sort=+timestamp",
        "sort=%2Btimestamp",
        "sort=-timestamp",
        "since=2026-11-30T00:49:37",
        "since=2026-11-30",
        "since=2026-11-30T00:49:37.123+11:00",
        "since=2026-11-30T00:49:37.123%2B11:00",
        "since=2026-11-30T00:49:37Z",
        "type=pact_publication",
        "userUuid=0ba9a6f0-8e9a-4a5d-9d2c-6c1d3f1c7a11",
        "from=AAAAAVpaWlpaWlpaWlpaWg&pageNumber=2&pageSize=1",
        "pageNumber=&pageSize=&since=&type=",
    ] {
        let reply = collector.audit(&format!("/audit?{query}")).await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.text());
    }
}

#[tokio::test]
async fn pactflow_time_forms_select_the_same_events_as_rfc_3339() {
    let (collector, _) = collector_with(40).await;
    let walk_of = |query: &'static str| {
        let collector = &collector;
        async move { walk(collector, &format!("/audit?{query}&pageSize=7")).await }
    };
    let half_past = walk_of("since=2030-01-02T03%3A30%3A00Z").await;
    assert!(!half_past.is_empty() && half_past.len() < 40, "the cases must select a part of the trail");
    for same in [
        "since=2030-01-02T03:30:00",
        "since=2030-01-02T03:30",
        "since=2030-01-02T04:30:00+01:00",
        "since=2030-01-02T04:30:00%2B0100",
        "since=2030-01-02%2003:30:00.000",
    ] {
        assert_eq!(walk_of(same).await, half_past, "{same}");
    }
    let all = walk_of("since=2030-01-02").await;
    assert_eq!(all.len(), 40, "a date is midnight UTC");
    assert!(walk_of("until=2030-01-02").await.is_empty(), "until a date is before that midnight");
}

fn token_command(database: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_audit-collector"))
        .arg("token")
        .args(args)
        .arg("--database")
        .arg(database)
        .output()
        .expect("run audit-collector token");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn tokens_made_by_the_subcommand_work_by_scope_until_revoked() {
    let (collector, _) = collector_with(2).await;
    let (ok, secret, notes) =
        token_command(&collector.database, &["create", "--scope", "read", "--name", "soc-splunk"]);
    assert!(ok, "{notes}");
    let secret = secret.trim().to_owned();
    assert!(secret.starts_with("ast_") && secret.len() == 47, "{secret}");
    let (ok, ingest_secret, notes) =
        token_command(&collector.database, &["create", "--scope", "ingest", "--name", "envoy-2"]);
    assert!(ok, "{notes}");

    let read = |token: String| {
        let address = collector.address;
        async move { common::send(address, "GET", "/audit", &[("authorization", &bearer(&token))], None).await }
    };
    assert_eq!(read(secret.clone()).await.status, 200, "a new read token reads");
    assert_eq!(read(ingest_secret.trim().to_owned()).await.status, 403, "a new ingest token does not read");
    let body = serde_json::to_vec(&json!({"events": [varied_event(100)]})).unwrap_or_default();
    let ingest = common::send(
        collector.address,
        "POST",
        "/v1/events",
        &[("authorization", &bearer(ingest_secret.trim()))],
        Some(&body),
    )
    .await;
    assert_eq!(ingest.status, 200, "a new ingest token ingests: {}", ingest.text());

    let (ok, listed, _) = token_command(&collector.database, &["list"]);
    assert!(ok && listed.contains("soc-splunk") && listed.contains("read") && listed.contains("envoy-2"), "{listed}");
    assert!(!listed.contains(&secret) && !listed.contains(&secret[4..]), "list never shows a secret");

    let (ok, _, notes) = token_command(&collector.database, &["revoke", "soc-splunk"]);
    assert!(ok, "{notes}");
    assert_eq!(read(secret).await.status, 401, "a revoked token is refused");
    let (ok, _, notes) = token_command(&collector.database, &["revoke", "soc-splunk"]);
    assert!(!ok && notes.contains("no active token"), "{notes}");
    // The configured token keeps working next to the stored ones.
    assert_eq!(collector.audit("/audit").await.status, 200);
}

#[tokio::test]
async fn a_from_that_retention_purged_is_410_expired_and_an_unknown_one_404() {
    let collector = Collector::start_with(|config| {
        config.retention_days = 1;
        config.retention_interval = Duration::from_millis(100);
    })
    .await;
    let mut old = varied_event(1);
    old["timestamp"] = json!("2001-01-01T00:00:00.000+00:00");
    let mut recent = varied_event(2);
    recent["timestamp"] = json!(audit_event::timestamp::format_rfc3339_millis(
        i64::try_from(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos()
        )
        .unwrap_or(0)
    ));
    assert_eq!(collector.ingest(&[old, recent]).await.status, 200);
    let mut purged = false;
    for _ in 0..100 {
        if collector.stored_uuids() == vec![uuid(2)] {
            purged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(purged, "retention purged the old event: {:?}", collector.stored_uuids());
    let reply = collector.audit(&format!("/audit?from={}", uuid(1))).await;
    assert_eq!(reply.status, 410, "{}", reply.text());
    assert!(reply.problem_detail().contains("EXPIRED"));
    assert_eq!(reply.json()["type"], "urn:audit-sidecar:problem:expired-from");
    assert_eq!(collector.audit(&format!("/audit?from={}", uuid(3))).await.status, 404);

    let metrics = collector.send("GET", "/metrics", &[], None).await.text();
    assert!(metrics.lines().any(|line| line == "audit_events_purged_total 1"), "{metrics}");
}

fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no `{series}` in:\n{text}"))
}

#[tokio::test]
async fn metrics_move_with_ingest_duplicates_rejections_and_requests() {
    let collector = Collector::start().await;
    let scrape = || async { collector.send("GET", "/metrics", &[], None).await };
    let first = scrape().await;
    assert_eq!(first.status, 200);
    assert!(first.header("content-type").unwrap_or_default().starts_with("text/plain; version=0.0.4"));
    assert_eq!(metric(&first.text(), "audit_events_ingested_total"), 0.0);

    assert_eq!(collector.ingest(&[varied_event(1), varied_event(2)]).await.status, 200);
    assert_eq!(collector.ingest(&[varied_event(2), varied_event(3)]).await.status, 200);
    let body = b"not json".to_vec();
    let refused = collector.send("POST", "/v1/events", &[("authorization", &bearer(INGEST_TOKEN))], Some(&body)).await;
    assert_eq!(refused.status, 400);
    assert_eq!(collector.audit("/audit").await.status, 200);

    let text = scrape().await.text();
    assert_eq!(metric(&text, "audit_events_ingested_total"), 3.0);
    assert_eq!(metric(&text, "audit_events_duplicate_total"), 1.0);
    assert_eq!(metric(&text, "audit_ingest_batches_rejected_total{reason=\"bad-request\"}"), 1.0);
    assert_eq!(metric(&text, "audit_http_request_duration_seconds_count{route=\"audit\"}"), 1.0);
    assert_eq!(metric(&text, "audit_http_request_duration_seconds_count{route=\"ingest\"}"), 3.0);
    assert!(metric(&text, "audit_database_size_bytes") > 0.0);
    assert_eq!(metric(&text, "audit_write_queue_depth"), 0.0);
}

#[tokio::test]
async fn the_openapi_document_is_served_without_a_token() {
    let collector = Collector::start().await;
    let reply = collector.send("GET", "/audit/openapi.json", &[], None).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let document = reply.json();
    assert_eq!(document["openapi"], "3.0.3");
    assert!(document["paths"]["/audit"]["get"]["parameters"].is_array());
}
