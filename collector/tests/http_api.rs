//! The HTTP contract as a client sees it: ingest, paging through GET /audit with `next` and
//! `from`, authentication, error bodies. Each test starts its own collector on port 0.

mod common;

use common::{bearer, event, events, uuid, Collector, INGEST_TOKEN, READ_TOKEN};
use serde_json::json;

#[tokio::test]
async fn following_next_sees_every_event_exactly_once_in_ingest_order() {
    let collector = Collector::start().await;
    let sent = events(0..25);
    for chunk in sent.chunks(9) {
        let reply = collector.ingest(chunk).await;
        assert_eq!(reply.status, 200, "ingest: {}", reply.text());
    }
    let expected: Vec<String> = (0..25).map(uuid).collect();

    let mut seen = Vec::new();
    let mut target = "/audit?pageSize=10".to_owned();
    let mut pages = 0;
    loop {
        let reply = collector.audit(&target).await;
        assert_eq!(reply.status, 200, "{target}: {}", reply.text());
        assert_eq!(reply.header("content-type"), Some("application/hal+json"));
        let page = reply.json();
        assert_eq!(page["_links"]["self"]["href"], format!("http://{}{target}", collector.address), "self link");
        seen.extend(reply.event_uuids());
        pages += 1;
        match page["_links"]["next"]["href"].as_str() {
            Some(next) => {
                let prefix = format!("http://{}", collector.address);
                target =
                    next.strip_prefix(&prefix).unwrap_or_else(|| panic!("next is not absolute: {next}")).to_owned();
                assert!(target.ends_with("&pageSize=10"), "next keeps pageSize: {target}");
            }
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3, "25 events in pages of 10");
    assert_eq!(seen, expected, "every event once, in order");
}

#[tokio::test]
async fn next_names_the_first_event_of_the_next_page_and_the_last_page_has_none() {
    let collector = Collector::start().await;
    assert_eq!(collector.ingest(&events(0..3)).await.status, 200);
    let page = collector.audit("/audit?pageSize=2").await.json();
    let next = page["_links"]["next"]["href"].as_str().unwrap_or_default().to_owned();
    assert_eq!(next, format!("http://{}/audit?from={}&pageSize=2", collector.address, uuid(2)));
    let last = collector.audit(&format!("/audit?from={}&pageSize=2", uuid(2))).await.json();
    assert!(last["_links"].get("next").is_none(), "last page has no next: {last}");
}

#[tokio::test]
async fn from_is_inclusive() {
    let collector = Collector::start().await;
    assert_eq!(collector.ingest(&events(0..10)).await.status, 200);
    let reply = collector.audit(&format!("/audit?from={}&pageSize=3", uuid(4))).await;
    assert_eq!(reply.event_uuids(), vec![uuid(4), uuid(5), uuid(6)]);
    // A consumer at the end of the stream re-reads only its last event.
    let reply = collector.audit(&format!("/audit?from={}", uuid(9))).await;
    assert_eq!(reply.event_uuids(), vec![uuid(9)]);
}

#[tokio::test]
async fn an_unknown_from_is_a_404_that_says_to_start_without_it() {
    let collector = Collector::start().await;
    assert_eq!(collector.ingest(&events(0..2)).await.status, 200);
    let reply = collector.audit(&format!("/audit?from={}", uuid(99))).await;
    assert_eq!(reply.status, 404);
    let detail = reply.problem_detail();
    assert!(detail.contains("not in the trail") && detail.contains("without `from`"), "{detail}");
}

#[tokio::test]
async fn page_size_defaults_to_a_hundred_and_out_of_range_values_are_refused() {
    let collector = Collector::start().await;
    assert_eq!(collector.ingest(&events(0..101)).await.status, 200);
    let page = collector.audit("/audit").await;
    assert_eq!(page.event_uuids().len(), 100);
    let next = page.json()["_links"]["next"]["href"].as_str().unwrap_or_default().to_owned();
    assert_eq!(next, format!("http://{}/audit?from={}", collector.address, uuid(100)));
    assert_eq!(collector.audit("/audit?pageSize=100").await.event_uuids().len(), 100);
    for bad in ["0", "101", "many", "-5"] {
        let reply = collector.audit(&format!("/audit?pageSize={bad}")).await;
        assert_eq!(reply.status, 400, "pageSize={bad}");
        assert!(reply.problem_detail().contains("pageSize"), "pageSize={bad}");
    }
}

#[tokio::test]
async fn unknown_query_parameters_are_ignored() {
    let collector = Collector::start().await;
    assert_eq!(collector.ingest(&events(0..2)).await.status, 200);
    let reply =
        collector.audit("/audit?since=2020-01-01T00%3A00%3A00Z&sort=%2Btimestamp&pageNumber=1&color=blue").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.event_uuids(), vec![uuid(0), uuid(1)]);
}

#[tokio::test]
async fn events_are_served_as_stored_with_pactflows_fields() {
    let collector = Collector::start().await;
    assert_eq!(collector.ingest(&[event(&uuid(1))]).await.status, 200);
    let page = collector.audit("/audit").await.json();
    let stored = &page["events"][0];
    assert_eq!(stored["type"], "PactBroker::Api::Resources::Pacticipants");
    assert_eq!(stored["timestamp"], "2030-01-02T03:04:05.678+00:00");
    assert_eq!(stored["payload"]["queryString"], "");
    assert_eq!(stored["payload"]["params"]["resource_name"], "pacticipants");
}

#[tokio::test]
async fn links_use_the_public_url_or_the_forwarded_scheme() {
    let collector = Collector::start().await;
    assert_eq!(collector.ingest(&events(0..1)).await.status, 200);
    let headers = [("authorization", bearer(READ_TOKEN)), ("x-forwarded-proto", "https".to_owned())];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = collector.send("GET", "/audit", &headers, None).await.json();
    assert_eq!(page["_links"]["self"]["href"], format!("https://{}/audit", collector.address));

    let public = Collector::start_with(|config| {
        config.public_url = audit_collector::PublicUrl::parse("https://broker.example/").ok();
    })
    .await;
    let page = public.audit("/audit?pageSize=5").await.json();
    assert_eq!(page["_links"]["self"]["href"], "https://broker.example/audit?pageSize=5");
}

#[tokio::test]
async fn reading_needs_the_read_token_and_only_the_read_token() {
    let collector = Collector::start().await;
    let missing = collector.send("GET", "/audit", &[], None).await;
    let wrong = collector.send("GET", "/audit", &[("authorization", "Bearer nope")], None).await;
    let ingest_token = collector.send("GET", "/audit", &[("authorization", &bearer(INGEST_TOKEN))], None).await;
    let basic = collector.send("GET", "/audit", &[("authorization", "Basic cmVhZDp4")], None).await;
    for (case, reply) in [("missing", missing), ("wrong", wrong), ("basic", basic)] {
        assert_eq!(reply.status, 401, "{case}");
        assert!(reply.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")), "{case}");
        reply.problem_detail();
    }
    // A valid token of the wrong scope is known, just not allowed here.
    assert_eq!(ingest_token.status, 403);
    assert!(ingest_token.header("www-authenticate").is_some_and(|v| v.contains("insufficient_scope")));
    assert!(ingest_token.problem_detail().contains("`read`"));
}

#[tokio::test]
async fn ingesting_needs_the_ingest_token_and_a_refused_batch_stores_nothing() {
    let collector = Collector::start().await;
    let body = serde_json::to_vec(&json!({ "events": events(0..2) })).unwrap_or_default();
    for (token, status) in [(None, 401), (Some(READ_TOKEN), 403), (Some("nope"), 401)] {
        let header = token.map(bearer);
        let headers: Vec<(&str, &str)> = header.iter().map(|h| ("authorization", h.as_str())).collect();
        let reply = collector.send("POST", "/v1/events", &headers, Some(&body)).await;
        assert_eq!(reply.status, status, "token {token:?}");
        assert!(reply.header("www-authenticate").is_some(), "token {token:?}");
    }
    assert!(collector.stored_uuids().is_empty());
}

#[tokio::test]
async fn malformed_json_is_a_400_with_serdes_position() {
    let collector = Collector::start().await;
    let headers = [("authorization", bearer(INGEST_TOKEN))];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let reply = collector.send("POST", "/v1/events", &headers, Some(b"{\"events\": [\n  {\"uuid\": ")).await;
    assert_eq!(reply.status, 400);
    let detail = reply.problem_detail();
    assert!(detail.contains("line 2 column"), "{detail}");
}

#[tokio::test]
async fn one_invalid_event_refuses_the_whole_batch_and_names_it() {
    let collector = Collector::start().await;
    let mut batch = events(0..5);
    batch[3]["uuid"] = json!("0b7e5bd8-5a2e-4b55-9d1c-1f0f2f3a4b5c");
    let reply = collector.ingest(&batch).await;
    assert_eq!(reply.status, 400);
    let detail = reply.problem_detail();
    assert!(detail.starts_with("events[3].uuid must be 22 characters of base64url"), "{detail}");

    let mut batch = events(10..12);
    batch[1]["payload"]["method"] = json!("");
    let detail = collector.ingest(&batch).await.problem_detail();
    assert!(detail.contains("events[1].payload.method"), "{detail}");

    assert!(collector.stored_uuids().is_empty(), "nothing of a refused batch is stored");
    assert_eq!(collector.audit("/audit").await.event_uuids(), Vec::<String>::new());
}

#[tokio::test]
async fn a_retried_batch_is_stored_once_and_counted_as_duplicates() {
    let collector = Collector::start().await;
    let first = collector.ingest(&events(0..4)).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-type"), Some("application/json"));
    assert_eq!(first.json(), json!({ "accepted": 4, "duplicates": 0 }));
    let retried = collector.ingest(&events(2..6)).await;
    assert_eq!(retried.json(), json!({ "accepted": 2, "duplicates": 2 }));
    let within = collector.ingest(&[event(&uuid(9)), event(&uuid(9))]).await;
    assert_eq!(within.json(), json!({ "accepted": 1, "duplicates": 1 }));
    let expected: Vec<String> = [0, 1, 2, 3, 4, 5, 9].into_iter().map(uuid).collect();
    assert_eq!(collector.stored_uuids(), expected);
    assert_eq!(collector.audit("/audit").await.event_uuids(), expected);
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    let collector = Collector::start_with(|config| config.max_body_bytes = 1024).await;
    let reply = collector.ingest(&events(0..20)).await;
    assert_eq!(reply.status, 413);
    assert!(reply.problem_detail().contains("1024 bytes"));
    assert!(collector.stored_uuids().is_empty());
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
    let collector = Collector::start().await;
    let reply = collector.send("GET", "/nothing-here", &[], None).await;
    assert_eq!(reply.status, 404);
    assert!(reply.problem_detail().contains("/nothing-here"));
    let reply = collector.send("DELETE", "/audit", &[("authorization", &bearer(READ_TOKEN))], None).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    let reply = collector.send("GET", "/v1/events", &[], None).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.header("allow"), Some("POST"));
}

#[tokio::test]
async fn head_is_answered_wherever_get_is_with_the_same_status_and_headers_and_no_body() {
    let collector = Collector::start().await;
    assert_eq!(collector.ingest(&events(0..3)).await.status, 200);
    let read = bearer(READ_TOKEN);
    let with_token: &[(&str, &str)] = &[("authorization", &read)];
    for (path, headers) in [
        ("/audit?pageSize=2", with_token),
        ("/audit/activity", with_token),
        ("/audit/checkpoints", with_token),
        ("/audit/public-key", &[][..]),
        ("/audit/openapi.json", &[][..]),
        ("/audit/ui/", &[][..]),
        ("/audit/ui/app.js", &[][..]),
        ("/healthz", &[][..]),
        ("/audit", &[][..]),
        ("/nothing-here", &[][..]),
    ] {
        let get = collector.send("GET", path, headers, None).await;
        let head = collector.send("HEAD", path, headers, None).await;
        assert_eq!(head.status, get.status, "HEAD {path}");
        for name in ["content-type", "content-length", "content-security-policy", "www-authenticate"] {
            assert_eq!(head.header(name), get.header(name), "HEAD {path}: {name}");
        }
        assert!(head.body.is_empty(), "HEAD {path} has a body: {:?}", head.text());
        assert!(!get.body.is_empty() || get.status == 204, "GET {path} has one");
    }
    assert_eq!(collector.send("HEAD", "/metrics", &[], None).await.status, 200);
    let reply = collector.send("HEAD", "/v1/events", &[], None).await;
    assert_eq!((reply.status, reply.header("allow")), (405, Some("POST")), "ingest is POST only");
}

#[tokio::test]
async fn healthz_answers_ok_without_a_token() {
    let collector = Collector::start().await;
    let reply = collector.send("GET", "/healthz", &[], None).await;
    assert_eq!((reply.status, reply.text().as_str()), (200, "ok"));
}
