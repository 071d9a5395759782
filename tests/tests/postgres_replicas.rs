//! The proof of issue 13: three collector replicas on one PostgreSQL, two Envoys (each with
//! all three replicas as endpoints of its `audit_collector` cluster), bounded load through
//! both; during it, kill -9 the replica that seals the trail, then another replica, then
//! crash and restart PostgreSQL. Afterwards: exactly one event per answered request, none
//! twice, `audit-collector verify --database postgres://…` passes, and a cursor walk that ran
//! through all of it (hopping to a live replica when its own died) saw every event exactly
//! once, in the trail's order. The senders (the Envoy workers) were accounted for on
//! PostgreSQL through all of it: each stored numbered event counted once, and no record
//! of loss, since nothing was lost.
//!
//! And back-pressure: with sealing stopped, a replica answers 503 with Retry-After once
//! more events wait for the sealer than `--pg-max-unsealed-events`, to a plain client and
//! to the real filter; once a sealer is back, everything the replica acknowledged, and
//! everything refused and sent again, is in the trail exactly once, and the senders'
//! accounting says nothing was lost.

// Test code: a panic here is a failed test with its message, not a crashed proxy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use audit_e2e::client::{read_page, send, walk_trail};
use audit_e2e::paths;
use audit_e2e::postgres::Postgres;
use audit_e2e::process::ManagedProcess;
use audit_e2e::stack::{start_broker_stub, start_envoy_with_collectors};
use audit_e2e::StackOptions;

/// Requests each Envoy is sent (bounded load: 2 × this in all).
const REQUESTS_PER_ENVOY: usize = 150;
const READ_TOKEN: &str = "replica-read-token";
const INGEST_TOKEN: &str = "replica-ingest-token";

struct Replica {
    process: ManagedProcess,
    address: SocketAddr,
}

fn start_replica(dir: &Path, name: &str, url: &str) -> Replica {
    start_replica_with(dir, name, url, &[])
}

fn start_replica_with(dir: &Path, name: &str, url: &str, extra_args: &[&str]) -> Replica {
    let address_file = dir.join(format!("{name}.address"));
    let mut command = Command::new(paths::collector_binary().unwrap());
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--database", url, "--checkpoint-interval-secs", "2"])
        // Holes are due quickly here, so a false one would be recorded before the end.
        .args(["--hole-grace-secs", "3"])
        .args(extra_args)
        .arg("--address-file")
        .arg(&address_file)
        .arg("--signing-key")
        .arg(dir.join("signing-key.pem"))
        .env("AUDIT_TOKEN", READ_TOKEN)
        .env("AUDIT_INGEST_TOKEN", INGEST_TOKEN)
        .env("RUST_LOG", "info");
    let mut process = ManagedProcess::spawn(name, command, dir).unwrap();
    let address = process
        .wait_for("address file", Duration::from_secs(60), |_| {
            std::fs::read_to_string(&address_file).ok()?.trim().parse().ok()
        })
        .unwrap();
    let health = format!("http://{address}/healthz");
    process
        .wait_for("/healthz 200", Duration::from_secs(60), |_| {
            send("GET", &health, &[], None).ok().filter(|r| r.status == 200)
        })
        .unwrap();
    Replica { process, address }
}

/// The replica whose log names the holder of the sealer lease.
fn sealer(postgres: &Postgres, replicas: &[Replica]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let holder = postgres.sql("audit", "SELECT holder FROM sealer_lease WHERE expires_at > now()").unwrap();
        if let Some(index) =
            replicas.iter().position(|replica| !holder.is_empty() && replica.process.log().contains(&holder))
        {
            return index;
        }
        assert!(Instant::now() < deadline, "no replica holds the sealer lease");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Follows the trail from the start with `from=<last uuid>` until `stop` and caught up with
/// `target` events, moving to the next replica whenever one does not answer.
fn follow(bases: Vec<String>, stop: Arc<AtomicBool>, target: Arc<AtomicUsize>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut replica = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        let base = &bases[replica % bases.len()];
        let url = match seen.last() {
            Some(last) => format!("{base}/audit?pageSize=50&from={last}"),
            None => format!("{base}/audit?pageSize=50"),
        };
        match read_page(&url, READ_TOKEN) {
            Ok(page) => {
                let mut uuids: Vec<String> = page.events.iter().map(|event| event.uuid.clone()).collect();
                if !seen.is_empty() {
                    assert_eq!(uuids.first(), seen.last(), "a `from` page starts with its cursor");
                    uuids.remove(0);
                }
                let caught_up = uuids.is_empty();
                seen.extend(uuids);
                if caught_up {
                    if stop.load(Ordering::SeqCst) && seen.len() >= target.load(Ordering::SeqCst) {
                        return seen;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
            Err(_) => {
                replica += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    panic!("the cursor walk did not catch up within 300 s ({} events seen)", seen.len());
}

#[test]
fn three_replicas_survive_the_sealer_a_replica_and_postgres_dying_without_losing_or_doubling_an_event() {
    let dir = tempfile::Builder::new().prefix("audit-e2e-replicas-").tempdir().unwrap();
    let postgres = Postgres::start().unwrap();
    let url = postgres.create_database("audit").unwrap();
    let mut replicas: Vec<Replica> = (0..3).map(|n| start_replica(dir.path(), &format!("replica-{n}"), &url)).collect();
    let collectors: Vec<SocketAddr> = replicas.iter().map(|replica| replica.address).collect();
    let (_upstream, upstream) = start_broker_stub(dir.path()).unwrap();
    let options =
        StackOptions { read_token: READ_TOKEN.into(), ingest_token: INGEST_TOKEN.into(), ..StackOptions::default() };
    let mut envoys = Vec::new();
    for n in 0..2 {
        let envoy_dir = dir.path().join(format!("envoy-{n}"));
        std::fs::create_dir_all(&envoy_dir).unwrap();
        envoys.push(start_envoy_with_collectors(&envoy_dir, &options, upstream, &collectors).unwrap());
    }

    let answered = Arc::new(AtomicUsize::new(0));
    let answered_agents = Arc::new(Mutex::new(Vec::new()));
    let stop_walk = Arc::new(AtomicBool::new(false));
    let walk_target = Arc::new(AtomicUsize::new(usize::MAX));
    let bases: Vec<String> = collectors.iter().map(|address| format!("http://{address}")).collect();
    let walker = {
        let (stop, target) = (Arc::clone(&stop_walk), Arc::clone(&walk_target));
        std::thread::spawn(move || follow(bases, stop, target))
    };
    let load: Vec<_> = envoys
        .iter()
        .enumerate()
        .map(|(n, (_, listener, _))| {
            let (listener, answered, agents) = (*listener, Arc::clone(&answered), Arc::clone(&answered_agents));
            std::thread::spawn(move || {
                for i in 0..REQUESTS_PER_ENVOY {
                    let agent = format!("replicas-{n}-{i}");
                    let url = format!("http://{listener}/pacticipants");
                    if send("GET", &url, &[("user-agent", &agent)], None).is_ok() {
                        agents.lock().unwrap().push(agent);
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            })
        })
        .collect();

    let wait_for_answers = |count: usize| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while answered.load(Ordering::SeqCst) < count {
            assert!(Instant::now() < deadline, "the load stalled at {} answers", answered.load(Ordering::SeqCst));
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let total = 2 * REQUESTS_PER_ENVOY;
    wait_for_answers(total / 4);
    let first = sealer(&postgres, &replicas);
    replicas[first].process.kill().unwrap();
    eprintln!("killed replica-{first}, the sealer, after {} answers", answered.load(Ordering::SeqCst));
    wait_for_answers(total / 2);
    let second = (0..3).find(|n| *n != first).unwrap();
    replicas[second].process.kill().unwrap();
    eprintln!("killed replica-{second} after {} answers", answered.load(Ordering::SeqCst));
    wait_for_answers(3 * total / 4);
    eprintln!("crashing PostgreSQL after {} answers", answered.load(Ordering::SeqCst));
    postgres.crash().unwrap();
    std::thread::sleep(Duration::from_secs(1));
    postgres.resume().unwrap();
    eprintln!("PostgreSQL is back after {} answers", answered.load(Ordering::SeqCst));
    for thread in load {
        thread.join().unwrap();
    }
    let agents: Vec<String> = answered_agents.lock().unwrap().clone();
    let survivor = (0..3).find(|n| *n != first && *n != second).unwrap();
    let survivor_url = format!("http://{}", replicas[survivor].address);

    // Every answered request's event reaches the trail (the filters retry until it does).
    let deadline = Instant::now() + Duration::from_secs(180);
    let trail = loop {
        let (events, _) = walk_trail(&survivor_url, READ_TOKEN, 100).unwrap();
        let ours = events
            .iter()
            .filter(|e| e.payload.user_agent.as_deref().is_some_and(|a| a.starts_with("replicas-")))
            .count();
        if ours >= agents.len() {
            break events;
        }
        assert!(Instant::now() < deadline, "only {ours} of {} answered requests reached the trail", agents.len());
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut per_agent: HashMap<&str, usize> = HashMap::new();
    for event in &trail {
        if let Some(agent) = event.payload.user_agent.as_deref().filter(|a| a.starts_with("replicas-")) {
            *per_agent.entry(agent).or_default() += 1;
        }
    }
    for agent in &agents {
        assert_eq!(per_agent.get(agent.as_str()), Some(&1), "request {agent}: exactly one event");
    }
    assert_eq!(per_agent.len(), agents.len(), "no event for a request that was not answered");
    let unique: HashSet<&str> = trail.iter().map(|event| event.uuid.as_str()).collect();
    assert_eq!(unique.len(), trail.len(), "no uuid twice in the trail");
    eprintln!("{} requests answered, {} events in the trail, each request's event once", agents.len(), trail.len());

    // The walk that ran through all of it saw the same trail, once, in order.
    walk_target.store(trail.len(), Ordering::SeqCst);
    stop_walk.store(true, Ordering::SeqCst);
    let walked = walker.join().unwrap();
    let trail_uuids: Vec<String> = trail.iter().map(|event| event.uuid.clone()).collect();
    assert_eq!(walked[..trail_uuids.len()], trail_uuids[..], "the cursor walk saw the trail once, in order");

    // Every numbered event stored was counted once for its sender, whichever replica took
    // it and however often it was retried; past the hole grace, nothing was recorded lost.
    std::thread::sleep(Duration::from_secs(5));
    let count = |sql: &str| postgres.sql("audit", sql).unwrap().parse::<i64>().unwrap();
    let numbered = count(
        "SELECT (SELECT count(*) FROM events WHERE body::jsonb ? 'sender')
              + (SELECT count(*) FROM unsequenced WHERE body::jsonb ? 'sender')",
    );
    assert!(numbered >= agents.len() as i64, "the filters number their events");
    assert_eq!(count("SELECT coalesce(sum(delivered), 0) FROM senders"), numbered, "each counted once");
    let loss_records = "SELECT (SELECT count(*) FROM events WHERE type LIKE 'AuditSidecar::Sender%')
                             + (SELECT count(*) FROM unsequenced WHERE type LIKE 'AuditSidecar::Sender%')";
    assert_eq!(count(loss_records), 0, "nothing was lost, so no record says so");
    eprintln!("{numbered} numbered events, each counted once for its sender; no loss recorded");

    // Stop the survivor (it signs a last checkpoint) and verify the whole database.
    replicas[survivor].process.stop(Duration::from_secs(30)).unwrap();
    let public_key = Command::new(paths::collector_binary().unwrap())
        .args(["public-key", "--signing-key"])
        .arg(dir.path().join("signing-key.pem"))
        .output()
        .unwrap();
    let key_file = dir.path().join("public-key.pem");
    std::fs::write(&key_file, &public_key.stdout).unwrap();
    let verify = Command::new(paths::collector_binary().unwrap())
        .args(["verify", "--database", &url, "--public-key"])
        .arg(&key_file)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "verify failed:\n{}{}\n{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr),
        postgres.log()
    );
    eprintln!("verify: {}", String::from_utf8_lossy(&verify.stdout));
}

/// A batch of `count` events for `POST /v1/events`, uuids `bp<first + n>…A`; returns the
/// body and the uuids.
fn direct_batch(first: usize, count: usize) -> (String, Vec<String>) {
    let uuids: Vec<String> = (first..first + count).map(|n| format!("bp{n:019}A")).collect();
    let events: Vec<serde_json::Value> = uuids
        .iter()
        .map(|uuid| {
            serde_json::json!({
                "uuid": uuid,
                "timestamp": "2026-12-05T06:00:00.000+00:00",
                "type": "PactBroker::Api::Resources::Pacticipants",
                "db_user_id": null,
                "user_email": null,
                "payload": {"path": "/pacticipants", "queryString": "", "method": "GET",
                            "userAgent": "backpressure-direct", "referer": null,
                            "params": {"resource_name": "pacticipants"}}
            })
        })
        .collect();
    (serde_json::json!({ "events": events }).to_string(), uuids)
}

fn post_batch(replica: &Replica, body: &str) -> audit_e2e::client::Reply {
    let url = format!("http://{}/v1/events", replica.address);
    let authorization = format!("Bearer {INGEST_TOKEN}");
    let headers = [("authorization", authorization.as_str()), ("content-type", "application/json")];
    send("POST", &url, &headers, Some(body)).unwrap()
}

/// Batches the replica refused because the sealer was too far behind, from its /metrics.
fn refused_as_behind(replica: &Replica) -> u64 {
    let metrics = send("GET", &format!("http://{}/metrics", replica.address), &[], None).unwrap().body;
    let line = "audit_ingest_batches_rejected_total{reason=\"sealing-behind\"} ";
    metrics.lines().find_map(|row| row.strip_prefix(line)).map_or(0, |count| count.parse().unwrap())
}

#[test]
fn with_sealing_stopped_ingest_answers_503_past_the_bound_and_loses_nothing_once_it_resumes() {
    const BOUND: usize = 50;
    const REQUESTS: usize = 30;
    let dir = tempfile::Builder::new().prefix("audit-e2e-backpressure-").tempdir().unwrap();
    let postgres = Postgres::start().unwrap();
    let url = postgres.create_database("audit").unwrap();
    let replica = start_replica_with(dir.path(), "replica", &url, &["--pg-max-unsealed-events", "50"]);
    let (_upstream, upstream) = start_broker_stub(dir.path()).unwrap();
    let options =
        StackOptions { read_token: READ_TOKEN.into(), ingest_token: INGEST_TOKEN.into(), ..StackOptions::default() };
    let (_envoy, listener, _) =
        start_envoy_with_collectors(dir.path(), &options, upstream, &[replica.address]).unwrap();

    // Sealing stops: a holder that seals nothing takes the lease under a new epoch for an hour.
    postgres
        .sql(
            "audit",
            "UPDATE sealer_lease SET epoch = epoch + 1, holder = 'stalled-by-test', \
             expires_at = now() + interval '1 hour' WHERE id = 1",
        )
        .unwrap();

    // A plain client: batches of 20 go in until more than the bound wait, then 503.
    let mut accepted: Vec<String> = Vec::new();
    let mut refused = None;
    for batch in 0..20 {
        let (body, uuids) = direct_batch(batch * 20, 20);
        let reply = post_batch(&replica, &body);
        if reply.status == 503 {
            refused = Some((body, uuids, reply));
            break;
        }
        assert_eq!(reply.status, 200, "batch {batch}: {}", reply.body);
        accepted.extend(uuids);
    }
    let (refused_body, refused_uuids, reply) = refused.expect("no 503 within 20 batches of 20 past a bound of 50");
    assert!(accepted.len() > BOUND, "503 only past the bound: {} accepted first", accepted.len());
    assert_eq!(reply.header("retry-after"), Some("1"), "a 503 says when to retry");
    assert_eq!(reply.header("content-type"), Some("application/problem+json"));
    let problem: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(problem["type"], "urn:audit-sidecar:problem:sealing-behind", "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("nothing of this batch was stored") && detail.contains("Retry-After"), "{detail}");
    let stored = postgres
        .sql("audit", &format!("SELECT count(*) FROM trail_uuids WHERE uuid = '{}'", refused_uuids[0]))
        .unwrap();
    assert_eq!(stored, "0", "nothing of the refused batch was stored");

    // A heartbeat still goes in: it is how a sender says what it holds.
    let heartbeat = serde_json::json!({"events": [], "sender": {
        "id": "CCCCCCCCCCCCCCCCCCCCCA", "captured": 0, "at": "2026-12-05T06:00:00.000+00:00", "heartbeatMs": 1000}});
    let reply = post_batch(&replica, &heartbeat.to_string());
    assert_eq!(reply.status, 200, "a heartbeat past the bound: {}", reply.body);

    // The real filter meets the same 503s, and keeps its batches (fail-open: the requests
    // are answered meanwhile).
    let refused_before_filter = refused_as_behind(&replica);
    let mut agents = Vec::new();
    for i in 0..REQUESTS {
        let agent = format!("backpressure-{i}");
        let reply = send("GET", &format!("http://{listener}/pacticipants"), &[("user-agent", &agent)], None).unwrap();
        assert_eq!(reply.status, 200, "request {i} is answered while the trail refuses batches");
        agents.push(agent);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while refused_as_behind(&replica) <= refused_before_filter {
        assert!(Instant::now() < deadline, "the filter's batches were not refused within 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(replica.process.log().contains("ingest refuses batches with 503"), "the replica logs why it refuses");
    eprintln!("{} batches refused as the sealer is behind", refused_as_behind(&replica));

    // A sealer again: the replica takes the lease once the stuck one is gone.
    postgres.sql("audit", "UPDATE sealer_lease SET expires_at = '-infinity' WHERE id = 1").unwrap();
    // The client sends its refused batch again, after Retry-After, until it is taken.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = post_batch(&replica, &refused_body);
        if reply.status == 200 {
            break;
        }
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert!(Instant::now() < deadline, "the refused batch was still refused 60 s after sealing resumed");
        let seconds: u64 = reply.header("retry-after").unwrap().parse().unwrap();
        std::thread::sleep(Duration::from_secs(seconds));
    }
    accepted.extend(refused_uuids);

    // Everything acknowledged is readable once: the client's events and each request's.
    let base = format!("http://{}", replica.address);
    let deadline = Instant::now() + Duration::from_secs(120);
    let trail = loop {
        let (events, _) = walk_trail(&base, READ_TOKEN, 100).unwrap();
        let requests = events
            .iter()
            .filter(|e| {
                e.payload
                    .user_agent
                    .as_deref()
                    .is_some_and(|a| a.starts_with("backpressure-") && a != "backpressure-direct")
            })
            .count();
        let direct = events.iter().filter(|e| e.uuid.starts_with("bp")).count();
        if requests >= REQUESTS && direct >= accepted.len() {
            break events;
        }
        assert!(
            Instant::now() < deadline,
            "after 120 s: {requests} of {REQUESTS} requests, {direct} of {} sent",
            accepted.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for event in &trail {
        *seen.entry(event.uuid.as_str()).or_default() += 1;
        if let Some(agent) = event.payload.user_agent.as_deref().filter(|a| a.starts_with("backpressure-")) {
            if agent != "backpressure-direct" {
                *seen.entry(agent).or_default() += 1;
            }
        }
    }
    for uuid in &accepted {
        assert_eq!(seen.get(uuid.as_str()), Some(&1), "acknowledged event {uuid}: exactly once");
    }
    for agent in &agents {
        assert_eq!(seen.get(agent.as_str()), Some(&1), "request {agent}: exactly one event");
    }
    assert!(trail.iter().all(|event| seen[event.uuid.as_str()] == 1), "no uuid twice in the trail");

    // The filter dropped nothing (its buffer held what was refused): its senders' numbers
    // are each counted once, and no record says anything was lost.
    let count = |sql: &str| postgres.sql("audit", sql).unwrap().parse::<i64>().unwrap();
    let numbered = count("SELECT count(*) FROM events WHERE body::jsonb ? 'sender'");
    assert_eq!(numbered, REQUESTS as i64, "the filter numbers its events");
    assert_eq!(count("SELECT coalesce(sum(delivered), 0) FROM senders"), numbered, "each counted once");
    let loss_records = "SELECT count(*) FROM events WHERE type LIKE 'AuditSidecar::%'";
    assert_eq!(count(loss_records), 0, "nothing was lost, so neither the filter nor the collector says so");
    eprintln!("{} events acknowledged to the client and {REQUESTS} requests: each in the trail once", accepted.len());
}
