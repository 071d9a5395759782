//! Freshness: how long after its ingest acknowledgement an event can be read. For
//! `--seconds`, one probe event at a time is POSTed to `--addr`; from the moment its batch
//! is acknowledged, `GET /audit?from=<its uuid>&pageSize=1` is polled on `--read-addr` (any
//! replica) every 5 ms, past its not-yet-readable answers, until it answers 200. Meant to run while `ingest` loads the collectors, so the
//! figure is freshness at sustained load. Reports the median, p99 and max in milliseconds.

use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use audit_event::IngestBatch;
use serde_json::json;

use crate::args::Flags;
use crate::events::{now_millis, realistic, uuid};
use crate::http::Connection;

/// A probe that is not readable after this long counts as this long (and is reported).
const GIVE_UP: Duration = Duration::from_secs(30);

pub fn run(flags: &Flags) -> Result<serde_json::Value> {
    let addr: SocketAddr = flags.number("addr")?;
    let read_addr: SocketAddr = flags.number_or("read-addr", addr)?;
    let token = flags.text("token")?.to_owned();
    let read_token = flags.text("read-token")?.to_owned();
    let seconds: u64 = flags.number("seconds")?;
    let run_id: u32 = flags.number_or("run-id", 9000)?;
    let mut ingest = Connection::open(addr)?;
    let mut reader = Connection::open(read_addr)?;
    let post = format!(
        "POST /v1/events HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\n"
    );
    let mut delays_ms = Vec::new();
    let mut given_up = 0;
    let mut refused = 0u64;
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut index = 0u64;
    while Instant::now() < until {
        let event = realistic(run_id, index, now_millis());
        let id = uuid(run_id, index);
        index += 1;
        let body = serde_json::to_vec(&IngestBatch { events: vec![event], sender: None })?;
        let answer = ingest.exchange(&post, &body)?;
        if answer.status != 200 {
            // Back-pressure from the loaded collector: try the next probe (counted).
            refused += 1;
            thread::sleep(Duration::from_millis(10));
            continue;
        }
        let acknowledged = Instant::now();
        let get = format!(
            "GET /audit?from={id}&pageSize=1 HTTP/1.1\r\nHost: {read_addr}\r\nAuthorization: Bearer {read_token}\r\n"
        );
        loop {
            let page = reader.exchange(&get, b"")?;
            let waited = acknowledged.elapsed();
            if page.status == 200 {
                delays_ms.push(waited.as_secs_f64() * 1000.0);
                break;
            }
            // Not readable yet: PostgreSQL answers 503 `not-yet-readable` for an event waiting
            // for the sealer (404 `unknown-from` before 2026-12-05); either way, poll again.
            let waiting = page.status == 404
                || (page.status == 503 && String::from_utf8_lossy(&page.body).contains("not-yet-readable"));
            if !waiting {
                bail!("GET /audit?from=… answered {}: {}", page.status, String::from_utf8_lossy(&page.body));
            }
            if waited > GIVE_UP {
                given_up += 1;
                delays_ms.push(waited.as_secs_f64() * 1000.0);
                break;
            }
            thread::sleep(Duration::from_millis(5));
        }
        thread::sleep(Duration::from_millis(20));
    }
    if delays_ms.is_empty() {
        bail!("no probe was acknowledged in {seconds} s");
    }
    delays_ms.sort_by(f64::total_cmp);
    let at = |quantile: f64| delays_ms[((delays_ms.len() - 1) as f64 * quantile).round() as usize];
    Ok(json!({
        "probes": delays_ms.len(),
        "median_ms": at(0.5),
        "p99_ms": at(0.99),
        "max_ms": at(1.0),
        "given_up": given_up,
        "refused": refused,
    }))
}
