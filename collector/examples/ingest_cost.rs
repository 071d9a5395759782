//! The collector's ingest path on SQLite, per event, for the instruction budget of
//! `make test` (`tests/instructions/`, where the budget and how it is read are).
//!
//! `ingest_cost <events to ingest> <events prepared>`: prepares `<events prepared>`
//! realistic events from one numbering sender as request bodies of 500 (the filter's
//! default batch), whatever it then ingests, so that two runs differ only by the ingest
//! of the events the first did not ingest. Then, after a warm-up batch, it ingests the first
//! `<events to ingest>` one batch at a time, as the ingest handler does after reading the
//! body: parse and validate (`parse_batch`: canonical form, the row), the SQLite store's
//! writer (chain link and SHA-256, the INSERT and its indexes, the sender's accounting, the
//! activity rollup), the commit (`synchronous=FULL`) to a file in a temporary directory,
//! the receipt's JSON. One batch at a time, so every transaction holds one batch whatever
//! the machine's speed: the count does not depend on timing.

use anyhow::{bail, Context, Result};
use audit_collector::batch::parse_batch;
use audit_collector::{SqliteStore, TrailStore};
use audit_event::sample::realistic;
use audit_event::{IngestBatch, SenderReport, SenderSeq};

/// Events per request body: the filter's default `batch.maxEvents`.
const BATCH: usize = 500;
/// Event times start here (2026-11-30T00:00:00Z) and advance 10 ms per event: fixed, so
/// the activity rollup's hours are the same in every run.
const FIRST_EVENT_MS: i64 = 1_764_460_800_000;
/// The sender id every event carries (22 characters of base64url).
const SENDER: &str = "cHJvYmVzZW5kZXJwcm9iZQ";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ingest, prepared] = args.as_slice() else {
        bail!("usage: ingest_cost <events to ingest> <events prepared> (see tests/instructions/README.md)");
    };
    let ingest: usize = ingest.parse().context("<events to ingest> is a number")?;
    let prepared: usize = prepared.parse().context("<events prepared> is a number")?;
    if ingest > prepared || !ingest.is_multiple_of(BATCH) {
        bail!("<events to ingest> must be a multiple of {BATCH}, at most <events prepared>");
    }
    // The warm-up batch is prepared and ingested in every run: the first commit creates
    // the rollup's and the sender's rows and grows every b-tree from empty.
    let bodies = request_bodies(BATCH + prepared)?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("audit.db");
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    runtime.block_on(async {
        let conn = SqliteStore::prepare(&path)?;
        // Pricing the schema's parts one at a time (docs/performance.md, "What each SQLite
        // index costs"): SQL run on the new database before anything is stored, e.g. a
        // `DROP INDEX`. Unset in `make test`.
        if let Ok(sql) = std::env::var("INGEST_COST_SCHEMA_SQL") {
            conn.execute_batch(&sql)?;
        }
        let store = SqliteStore::start(conn, &path, 64, None)?;
        let mut accepted = 0;
        for body in &bodies[..1 + ingest / BATCH] {
            let batch = parse_batch(body)?;
            let receipt = store.ingest(batch.rows, batch.sender).await?;
            accepted += receipt.accepted;
            std::hint::black_box(serde_json::to_vec(&receipt)?);
        }
        store.shutdown().await?;
        println!("{accepted} events stored");
        Ok(())
    })
}

/// The bodies of `events` events from one sender numbering them 1, 2, 3, ..., `BATCH` a body.
fn request_bodies(events: usize) -> Result<Vec<Vec<u8>>> {
    let numbers: Vec<u64> = (1..=u64::try_from(events)?).collect();
    numbers
        .chunks(BATCH)
        .map(|chunk| {
            let events = chunk
                .iter()
                .map(|&seq| {
                    let mut event = realistic(1, seq, FIRST_EVENT_MS + i64::try_from(seq)? * 10);
                    event.sender = Some(SenderSeq { id: SENDER.to_owned(), seq });
                    Ok(event)
                })
                .collect::<Result<Vec<_>>>()?;
            let captured = chunk.last().copied().unwrap_or_default();
            let sender = SenderReport {
                id: SENDER.to_owned(),
                captured,
                at: "2026-11-30T01:00:00.000Z".to_owned(),
                heartbeat_ms: 1000,
                stopping: false,
            };
            Ok(serde_json::to_vec(&IngestBatch { events, sender: Some(sender) })?)
        })
        .collect()
}
