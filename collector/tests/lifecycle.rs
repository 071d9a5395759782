//! The collector's life: readiness through the address file, graceful shutdown that keeps
//! every acknowledged batch, refusing a newer database, and back-pressure (503) when the
//! writer cannot keep up.

mod common;

use std::time::Duration;

use common::{config_in, events, send, try_send, uuid, Collector};
use rusqlite::{Connection, TransactionBehavior};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

#[tokio::test]
async fn the_address_file_names_the_bound_port_once_ready() {
    let collector = Collector::start().await;
    let written = std::fs::read_to_string(collector.dir.path().join("collector.address")).expect("address file");
    assert_eq!(written, collector.address.to_string());
    let reply = send(collector.address, "GET", "/healthz", &[], None).await;
    assert_eq!(reply.status, 200);
    collector.stop().await.expect("clean stop");
}

async fn ingest_batch(address: std::net::SocketAddr, batch: u32) -> Option<common::Reply> {
    let body = serde_json::to_vec(&serde_json::json!({ "events": events(batch * 10..batch * 10 + 10) }));
    let auth = common::bearer(common::INGEST_TOKEN);
    try_send(address, "POST", "/v1/events", &[("authorization", &auth)], Some(&body.unwrap_or_default())).await
}

fn batch_uuids(batch: u32) -> impl Iterator<Item = String> {
    (batch * 10..batch * 10 + 10).map(uuid)
}

#[tokio::test]
async fn shutdown_waits_for_batches_in_flight_and_commits_them() {
    let collector = Collector::start().await;
    let address = collector.address;
    // Hold the write lock: the three batches are in flight (one in the writer, two queued)
    // when the shutdown signal arrives.
    let mut blocker = Connection::open(&collector.database).expect("open");
    let lock = blocker.transaction_with_behavior(TransactionBehavior::Immediate).expect("lock");
    let inflight: Vec<_> = (0..3).map(|batch| tokio::spawn(ingest_batch(address, batch))).collect();
    // Nothing observable says "the writer holds all three" (it drains the queue into its
    // blocked transaction), so give them ample time to arrive; on a machine so slow that one
    // arrives after the stop signal, that batch gets 503 and the assertions below say so.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let stopping = tokio::spawn(collector.stop_keeping_files());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!stopping.is_finished(), "run() returned while batches were still in flight");

    drop(lock);
    for (batch, task) in inflight.into_iter().enumerate() {
        let reply = task.await.expect("client task").expect("a response, not a dropped connection");
        assert_eq!(reply.status, 200, "batch {batch}: {}", reply.text());
    }
    let (outcome, dir) = stopping.await.expect("join");
    outcome.expect("run() returned Ok");
    let stored = common::stored_uuids(&dir.path().join("data/audit.db"));
    assert_eq!(stored, (0..3).flat_map(batch_uuids).collect::<Vec<_>>());
}

#[tokio::test]
async fn shutdown_under_load_keeps_every_acknowledged_batch() {
    let collector = Collector::start().await;
    let address = collector.address;
    let inflight: Vec<_> = (0..20).map(|batch| tokio::spawn(ingest_batch(address, batch))).collect();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let stopping = tokio::spawn(collector.stop_keeping_files());

    let mut acknowledged = Vec::new();
    for (batch, task) in (0u32..).zip(inflight) {
        match task.await.expect("client task").map(|reply| reply.status) {
            Some(200) => acknowledged.extend(batch_uuids(batch)),
            // Refused or cut off by the shutdown: not acknowledged, so the filter keeps it.
            None | Some(503) => {}
            Some(other) => panic!("batch {batch}: unexpected status {other}"),
        }
    }
    let (outcome, dir) = stopping.await.expect("join");
    outcome.expect("run() returned Ok");
    let stored = common::stored_uuids(&dir.path().join("data/audit.db"));
    for uuid in &acknowledged {
        assert!(stored.contains(uuid), "acknowledged event {uuid} is missing after shutdown");
    }
}

#[tokio::test]
async fn shutdown_does_not_wait_for_idle_keep_alive_connections() {
    let collector = Collector::start().await;
    let mut idle = tokio::net::TcpStream::connect(collector.address).await.expect("connect");
    let request = format!("GET /healthz HTTP/1.1\r\nhost: {}\r\n\r\n", collector.address);
    idle.write_all(request.as_bytes()).await.expect("send");
    tokio::time::sleep(Duration::from_millis(100)).await;
    tokio::time::timeout(Duration::from_secs(5), collector.stop())
        .await
        .expect("shutdown within 5 s despite an idle keep-alive connection")
        .expect("clean stop");
}

#[tokio::test]
async fn events_survive_a_restart_on_the_same_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = Collector::start_with(|config| config.database = dir.path().join("audit.db")).await;
    assert_eq!(first.ingest(&events(0..3)).await.status, 200);
    first.stop().await.expect("clean stop");
    let second = Collector::start_with(|config| config.database = dir.path().join("audit.db")).await;
    assert_eq!(second.audit("/audit").await.event_uuids(), (0..3).map(uuid).collect::<Vec<_>>());
    second.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_database_from_a_newer_collector_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_in(&dir);
    std::fs::create_dir_all(config.database.parent().expect("parent")).expect("dir");
    let conn = Connection::open(&config.database).expect("create");
    conn.pragma_update(None, "user_version", 1000).expect("set version");
    drop(conn);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let outcome = audit_collector::run(listener, config, std::future::pending()).await;
    let message = outcome.err().map(|error| error.to_string()).unwrap_or_default();
    assert!(message.contains("schema version 1000") && message.contains("newer"), "{message}");
}

#[tokio::test]
async fn an_invalid_config_is_refused_before_anything_is_created() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = config_in(&dir);
    config.read_tokens = audit_collector::TokenSet::from_list("");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let message = audit_collector::run(listener, config, std::future::pending()).await.err().map(|e| e.to_string());
    assert!(message.unwrap_or_default().contains("AUDIT_TOKEN"));
    assert!(!dir.path().join("data").exists(), "no database directory for a refused config");
}

#[tokio::test]
async fn a_full_write_queue_answers_503_with_retry_after_and_stores_what_it_accepted() {
    let collector = Collector::start_with(|config| config.write_queue_batches = 1).await;
    // The writer's queue is FIFO: once a batch sent now is stored, the work the collector
    // queued at start (the first retention purge) is done and cannot hold the one place.
    let warm_up: Vec<String> = (1000..1002).map(uuid).collect();
    // It may itself meet that work and be refused, as any client may: retry, as Retry-After says.
    let mut warm_up_answer = collector.ingest(&events(1000..1002)).await;
    for _ in 0..100 {
        if warm_up_answer.status != 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        warm_up_answer = collector.ingest(&events(1000..1002)).await;
    }
    assert_eq!(warm_up_answer.status, 200, "{}", warm_up_answer.text());
    // Another connection holds the write lock, so the writer blocks on its first batch.
    let mut blocker = Connection::open(&collector.database).expect("open");
    let lock = blocker.transaction_with_behavior(TransactionBehavior::Immediate).expect("lock");

    let address = collector.address;
    let ingest = |range: std::ops::Range<u32>| async move {
        let body = serde_json::to_vec(&serde_json::json!({ "events": events(range) })).unwrap_or_default();
        let auth = common::bearer(common::INGEST_TOKEN);
        send(address, "POST", "/v1/events", &[("authorization", &auth)], Some(&body)).await
    };
    // Send batches one at a time until one is refused. With the writer blocked and a queue
    // of one, at most two can be held at once, and none leaves before the lock is dropped.
    // An accepted batch does not answer until it is committed; a refused one answers at once,
    // but on a loaded machine "at once" can exceed the wait below, so a batch still waiting
    // is only presumed accepted: its answer, read after the lock is dropped, decides. No
    // sleep decides the outcome: a slow machine only sends a few more batches.
    let mut waiting = Vec::new();
    let mut refused = None;
    for batch in 0..20u32 {
        let mut task = tokio::spawn(ingest(batch * 2..batch * 2 + 2));
        match tokio::time::timeout(Duration::from_millis(500), &mut task).await {
            Ok(answer) => {
                refused = Some((batch, answer.expect("task")));
                break;
            }
            Err(_still_waiting) => waiting.push((batch, task)),
        }
    }
    let (refused_batch, refused) = refused.expect("a full queue refuses a batch within 20 tries");
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert!(refused.problem_detail().contains("retry"));

    drop(lock);
    let mut expected = warm_up;
    let mut refused_batches = vec![refused_batch];
    for (batch, task) in waiting {
        let answer = task.await.expect("task");
        match answer.status {
            200 => expected.extend((batch * 2..batch * 2 + 2).map(uuid)),
            503 => refused_batches.push(batch),
            other => panic!("batch {batch}: {other} {}", answer.text()),
        }
    }
    let accepted = expected.len() / 2 - 1;
    // At most the one the writer holds and the one in the queue; none, when background work
    // of the collector's own (a purge, a completeness record) held the place meanwhile.
    assert!(accepted <= 2, "{accepted} batches accepted with a writer queue of one");
    let stored = collector.stored_uuids();
    assert_eq!(stored, expected, "every batch answered 200 is stored, in order, and nothing else");
    for batch in refused_batches {
        assert!(!stored.contains(&uuid(batch * 2)), "refused batch {batch} must not be stored");
    }
    collector.stop().await.expect("clean stop");
}
