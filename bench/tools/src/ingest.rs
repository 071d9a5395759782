//! Load on `POST /v1/events`: `--events` events in batches of `--batch`, over
//! `--connections` keep-alive connections, each sending its next batch as soon as the
//! previous one is acknowledged (committed), or, with `--rate` (events/s over all
//! connections), when the batch is due: a steady load below capacity, for freshness. A 503
//! (the collector's write queue is full, or on PostgreSQL the sealer is too far behind) is
//! retried on that connection after the answer's Retry-After seconds, as a client that
//! respects back-pressure would; `retries_503` counts them. The batch JSON is serialized once from the
//! project's own types; each request only patches in fresh uuids, so the client spends
//! its CPU sending, not serializing, on a machine it shares with the collector.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use audit_event::IngestBatch;
use serde_json::json;

use crate::args::Flags;
use crate::events::{now_millis, realistic, uuid};
use crate::http::Connection;

/// 503 answers tolerated for one batch before the run fails.
const MAX_RETRIES_PER_BATCH: u32 = 1000;

/// The longest Retry-After honoured, and the pause when a 503 has none.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
const RETRY_WITHOUT_HEADER: Duration = Duration::from_millis(2);

pub fn run(flags: &Flags) -> Result<serde_json::Value> {
    let addr: SocketAddr = flags.number("addr")?;
    let token = flags.text("token")?.to_owned();
    let events: u64 = flags.number("events")?;
    let batch: u64 = flags.number_or("batch", 100)?;
    let connections: usize = flags.number("connections")?;
    let run_id: u32 = flags.number_or("run-id", 1)?;
    let rate: f64 = flags.number_or("rate", 0.0)?;
    if batch == 0 || connections == 0 {
        bail!("--batch and --connections must be greater than zero");
    }
    if !(rate >= 0.0 && rate.is_finite()) {
        bail!("--rate must be events per second (0, the default, sends as fast as acknowledged)");
    }
    // When batch n is due; None: at once.
    let batch_interval = (rate > 0.0).then(|| Duration::from_secs_f64(batch as f64 / rate));
    let template = Template::new(run_id, batch)?;
    let batches = events.div_ceil(batch);
    let next = AtomicU64::new(0);
    let retries = AtomicU64::new(0);
    let started = Instant::now();
    let outcome: Result<Vec<u64>> = thread::scope(|scope| {
        let workers: Vec<_> = (0..connections)
            .map(|_| {
                scope.spawn(|| {
                    let due = |number: u64| batch_interval.map(|interval| started + interval.mul_f64(number as f64));
                    send_batches(addr, &token, &template, batches, &next, &retries, due)
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().map_err(|_| anyhow!("a sender panicked"))?).collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let accepted: u64 = outcome?.iter().sum();
    Ok(json!({
        "events": batches * batch,
        "accepted": accepted,
        "connections": connections,
        "batch": batch,
        "seconds": seconds,
        "events_per_s": (batches * batch) as f64 / seconds,
        "rate": rate,
        "retries_503": retries.load(Ordering::Relaxed),
        "body_bytes": template.body.len(),
    }))
}

fn send_batches(
    addr: SocketAddr,
    token: &str,
    template: &Template,
    batches: u64,
    next: &AtomicU64,
    retries: &AtomicU64,
    due: impl Fn(u64) -> Option<Instant>,
) -> Result<u64> {
    let mut connection = Connection::open(addr)?;
    let head = format!(
        "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
    );
    let mut body = template.body.clone();
    let mut accepted = 0;
    loop {
        let number = next.fetch_add(1, Ordering::Relaxed);
        if number >= batches {
            return Ok(accepted);
        }
        if let Some(wait) = due(number).and_then(|at| at.checked_duration_since(Instant::now())) {
            thread::sleep(wait);
        }
        template.fill(number, &mut body);
        let mut attempts = 0;
        let response = loop {
            let response = connection.exchange(&head, &body)?;
            if response.status != 503 || attempts >= MAX_RETRIES_PER_BATCH {
                break response;
            }
            attempts += 1;
            retries.fetch_add(1, Ordering::Relaxed);
            let pause = response.retry_after_secs.map_or(RETRY_WITHOUT_HEADER, Duration::from_secs);
            thread::sleep(pause.min(MAX_RETRY_AFTER));
        };
        if response.status != 200 {
            bail!("batch {number}: HTTP {}: {}", response.status, String::from_utf8_lossy(&response.body));
        }
        let receipt: serde_json::Value = serde_json::from_slice(&response.body)?;
        accepted += receipt["accepted"].as_u64().unwrap_or(0);
    }
}

/// One serialized batch and where its uuids sit, so each request only rewrites 22 bytes
/// per event.
struct Template {
    body: Vec<u8>,
    uuid_offsets: Vec<usize>,
    run_id: u32,
    batch: u64,
}

impl Template {
    fn new(run_id: u32, batch: u64) -> Result<Template> {
        // Placeholder uuids from a run id no real batch uses, so they are easy to find.
        let placeholder_run = u32::MAX;
        let now = now_millis();
        let events = (0..batch).map(|i| realistic(placeholder_run, i, now + i as i64)).collect();
        let body = serde_json::to_vec(&IngestBatch { events, sender: None })?;
        let text = std::str::from_utf8(&body)?;
        let uuid_offsets = (0..batch)
            .map(|i| {
                let needle = format!("\"uuid\":\"{}\"", uuid(placeholder_run, i));
                text.find(&needle)
                    .map(|at| at + "\"uuid\":\"".len())
                    .ok_or_else(|| anyhow!("uuid {i} not in the batch"))
            })
            .collect::<Result<_>>()?;
        Ok(Template { body, uuid_offsets, run_id, batch })
    }

    fn fill(&self, number: u64, body: &mut [u8]) {
        for (i, &at) in self.uuid_offsets.iter().enumerate() {
            let id = uuid(self.run_id, number * self.batch + i as u64);
            body[at..at + id.len()].copy_from_slice(id.as_bytes());
        }
    }
}
