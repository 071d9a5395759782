//! Times `GET` requests on one keep-alive connection, one at a time: `--count` rounds, each
//! requesting every `--path` once (interleaved, so the paths share the same moments of
//! machine noise). Reports per path: median, p99, min, max in milliseconds.

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::{bail, Result};
use serde_json::json;

use crate::args::Flags;
use crate::http::Connection;

/// Untimed requests per path first, to warm the connection and SQLite's cache.
const WARMUP: usize = 10;

pub fn run(flags: &Flags) -> Result<serde_json::Value> {
    let addr: SocketAddr = flags.number("addr")?;
    let token = flags.text("token")?;
    let count: usize = flags.number("count")?;
    let paths = flags.all("path");
    if paths.is_empty() || count == 0 {
        bail!("give at least one --path and a --count above zero");
    }
    let mut connection = Connection::open(addr)?;
    let heads: Vec<String> = paths
        .iter()
        .map(|path| format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n"))
        .collect();
    let mut timings = vec![Vec::with_capacity(count); paths.len()];
    let mut sizes = vec![0usize; paths.len()];
    for round in 0..WARMUP + count {
        for (index, head) in heads.iter().enumerate() {
            let started = Instant::now();
            let response = connection.exchange(head, b"")?;
            let elapsed = started.elapsed().as_secs_f64() * 1000.0;
            if response.status != 200 {
                bail!("GET {}: HTTP {}: {}", paths[index], response.status, String::from_utf8_lossy(&response.body));
            }
            if round >= WARMUP {
                timings[index].push(elapsed);
                sizes[index] = response.body.len();
            }
        }
    }
    let report: Vec<_> = paths
        .iter()
        .zip(timings.iter_mut())
        .zip(sizes)
        .map(|((path, times), bytes)| {
            times.sort_by(f64::total_cmp);
            let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
            json!({"path": path, "requests": times.len(), "bytes": bytes,
                   "median_ms": at(0.5), "p99_ms": at(0.99), "min_ms": at(0.0), "max_ms": at(1.0)})
        })
        .collect();
    Ok(json!({ "pages": report }))
}
