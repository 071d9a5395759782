//! `audit-collector verify` over a trail written by `run()` through real HTTP ingest: the
//! database file and the API both verify, including after retention purged old events;
//! the public key is served; a changed event is caught.

mod common;

use std::time::Duration;

use audit_collector::chain::signing::TrailVerifier;
use audit_collector::verify::{verify_api, verify_database, VerifyError};
use common::{events, Collector};
use serde_json::Value;

fn old_events(range: std::ops::Range<u32>) -> Vec<Value> {
    events(range)
        .into_iter()
        .map(|mut event| {
            event["timestamp"] = Value::from("2001-01-01T00:00:00.000+00:00");
            event
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_honest_trail_verifies_from_the_file_and_the_api_after_a_purge() {
    let collector = Collector::start_with(|config| {
        config.retention_interval = Duration::from_millis(300);
        config.checkpoint_interval = Duration::from_millis(100);
    })
    .await;
    assert_eq!(collector.ingest(&old_events(0..30)).await.status, 200);
    // Wait until retention purged them (the trail then starts after them).
    let mut purged = false;
    for _ in 0..2000 {
        let reply = collector.audit("/audit?pageSize=1").await;
        if reply.status == 404 || reply.json()["events"].as_array().is_some_and(Vec::is_empty) {
            purged = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(purged, "retention did not purge the old events within 20 s");
    for batch in 1..4 {
        assert_eq!(collector.ingest(&events(batch * 100..batch * 100 + 40)).await.status, 200);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(collector.ingest(&events(900..905)).await.status, 200);

    let key_reply = collector.send("GET", "/audit/public-key", &[], None).await;
    assert_eq!(key_reply.status, 200, "{}", key_reply.text());
    let key = TrailVerifier::parse(key_reply.json()["publicKeyPem"].as_str().unwrap_or_default()).expect("a key");

    let page = collector.audit("/audit?pageSize=1").await.json();
    assert_eq!(page["events"][0]["chain"]["seq"], 31, "the purged events' seqs are not reused: {page}");
    assert!(page["events"][0]["chain"]["prevHash"].as_str().is_some_and(|hash| hash.len() == 64), "{page}");

    let url = format!("http://{}/audit", collector.address);
    let token = common::READ_TOKEN.to_owned();
    let api_key = key.clone();
    let report = tokio::task::spawn_blocking(move || verify_api(&url, &token, &api_key)).await.expect("join");
    let report = report.expect("the API trail verifies");
    assert_eq!((report.first_seq, report.last_seq, report.events), (Some(31), Some(155), 125), "{report}");

    let (stopped, dir) = collector.stop_keeping_files().await;
    stopped.expect("clean stop");
    let database = dir.path().join("data/audit.db");
    let conn = rusqlite::Connection::open(&database).expect("open");
    let report = verify_database(&conn, &key).expect("the file verifies");
    assert_eq!(report.uncovered_events(), 0, "shutdown signed a last checkpoint: {report}");
    assert!(report.to_string().contains("covered:   125 events (seq 31 to 155)"), "{report}");

    // A changed event in a copy (triggers dropped, as an attacker would) is caught.
    conn.execute_batch(
        "DROP TRIGGER events_content_is_immutable;
         UPDATE events SET body = replace(body, 'tester@', 'mallory@') WHERE seq = 40;",
    )
    .expect("tamper");
    match verify_database(&conn, &key) {
        Err(VerifyError::NotIntact(problem)) => {
            assert!(problem.to_string().starts_with("seq 40: event CHANGED"), "{problem}")
        }
        other => panic!("the change slipped through: {other:?}"),
    }
}

/// `latest=true` answers the newest checkpoint alone: the one a walk of every page ends on.
#[tokio::test(flavor = "multi_thread")]
async fn latest_is_the_checkpoint_a_walk_of_every_page_ends_on() {
    let collector = Collector::start_with(|config| config.checkpoint_interval = Duration::from_millis(50)).await;
    let latest = collector.audit("/audit/checkpoints?latest=true").await;
    assert_eq!(latest.status, 200, "{}", latest.text());
    assert_eq!(latest.json()["checkpoints"], Value::Array(vec![]), "an unsigned trail has none");
    let mut walked = Vec::new();
    for batch in 0..3 {
        assert_eq!(collector.ingest(&events(batch * 10..batch * 10 + 5)).await.status, 200);
        for _ in 0..400 {
            let mut url = "/audit/checkpoints?limit=1".to_owned();
            walked.clear();
            loop {
                let page = collector.audit(&url).await.json();
                walked.extend(page["checkpoints"].as_array().cloned().unwrap_or_default());
                match page["_links"]["next"]["href"].as_str() {
                    Some(next) => {
                        url = next.split_once("/audit/").map(|(_, rest)| format!("/audit/{rest}")).unwrap_or_default()
                    }
                    None => break,
                }
            }
            if walked.last().is_some_and(|newest| newest["lastSeq"] == (batch + 1) * 5) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    assert!(walked.len() >= 3, "a checkpoint after each batch: {walked:?}");
    let latest = collector.audit("/audit/checkpoints?latest=true").await.json();
    assert_eq!(latest["checkpoints"], Value::Array(walked.last().cloned().into_iter().collect()), "{latest}");
    assert!(latest["_links"]["next"].is_null(), "{latest}");
    let both = collector.audit("/audit/checkpoints?latest=true&after=1").await;
    assert_eq!(both.status, 400, "{}", both.text());
    collector.stop().await.expect("clean stop");
}
