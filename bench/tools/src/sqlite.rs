//! SQLite straight from one process, on a database the collector created (so the schema is
//! its migrations' and `journal_mode` is its WAL):
//! - `raw-insert`: the ceiling for ingest. The same rows the collector would store, with
//!   its INSERT statement and its pragmas (`synchronous=FULL`), prepared before the clock
//!   starts, committed every `--batches-per-commit` batches. Each row is linked into the
//!   hash chain as the writer links it (parse the body, canonical form, SHA-256), and each
//!   commit's rows are counted into the activity rollups by the writer's own function
//!   (since schema 16 the per-user chart is a rollup instead of two indexes, so a loop
//!   without it would leave out work the indexes did), since that is work the collector
//!   cannot skip either. No HTTP, no batch parsing.
//! - `generate`: fills a valid chained trail fast for the `/audit` page timings
//!   (durability off, big transactions, bodies and canonical forms built on a second
//!   thread); appends, continuing the chain, when the database already holds events; then
//!   rebuilds the activity rollup (`GET /audit/activity`) from the rows.
//!
//! The chain is computed with the collector's own functions (`audit_collector::chain`), so
//! there is one definition of the hash and `audit-collector verify` accepts the trail.

use std::path::Path;
use std::sync::mpsc::sync_channel;
use std::thread;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use audit_collector::chain::canonical::canonical_json;
use audit_collector::chain::link::{body_hash, link_hash, Digest, GENESIS};
use audit_collector::{count_stored, NewEvent, REBUILD_ACTIVITY_SQL};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde_json::json;

use crate::args::Flags;
use crate::events::{now_millis, realistic};

/// The collector's INSERT (collector/src/store/sqlite/write_sql.rs), character for character.
const INSERT: &str = "INSERT INTO events
                (seq, uuid, timestamp_ms, type, db_user_id, user_email, method, status, ingested_at_ms, body,
                 chain_prev, chain_hash, user_id, user_name)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (uuid) DO NOTHING";

/// One row as the collector's batch parser produces it.
struct Row {
    uuid: String,
    timestamp_ms: i64,
    event_type: String,
    db_user_id: Option<i64>,
    user_email: Option<String>,
    user_id: Option<String>,
    user_name: Option<String>,
    method: String,
    status: Option<i64>,
    body: String,
}

fn row(run_id: u32, index: u64, timestamp_ms: i64) -> Result<Row> {
    let event = realistic(run_id, index, timestamp_ms);
    // The collector stores the event re-serialized from its parsed form: the same call.
    let body = serde_json::to_string(&event)?;
    Ok(Row {
        uuid: event.uuid,
        timestamp_ms,
        event_type: event.event_type,
        db_user_id: event.db_user_id,
        user_email: event.user_email,
        // As the collector's batch parser fills it (collector/src/batch.rs).
        user_id: event.user_id.or_else(|| event.db_user_id.map(|id| id.to_string())),
        user_name: event.user_name,
        method: event.payload.method,
        status: event.response.map(|response| i64::from(response.status)),
        body,
    })
}

/// The columns of `row` the activity rollups count by, as the writer's [`count_stored`]
/// takes them (body and canonical form left empty: the rollups never read them).
fn counted_columns(row: &Row) -> NewEvent {
    NewEvent {
        uuid: row.uuid.clone(),
        timestamp_ms: row.timestamp_ms,
        event_type: row.event_type.clone(),
        db_user_id: row.db_user_id,
        user_email: row.user_email.clone(),
        user_id: row.user_id.clone(),
        user_name: row.user_name.clone(),
        method: row.method.clone(),
        status: row.status.and_then(|status| u16::try_from(status).ok()),
        body: String::new(),
        canonical: Vec::new(),
    }
}

/// The newest link of the chain: where the next row continues it.
struct Head {
    seq: i64,
    hash: Digest,
}

fn chain_head(conn: &Connection) -> Result<Head> {
    let newest: Option<(i64, Option<Vec<u8>>)> = conn
        .query_row("SELECT seq, chain_hash FROM events ORDER BY seq DESC LIMIT 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    match newest {
        None => Ok(Head { seq: 0, hash: GENESIS }),
        Some((seq, Some(hash))) => {
            Ok(Head { seq, hash: hash.try_into().map_err(|_| anyhow!("seq {seq}: chain_hash is not 32 bytes"))? })
        }
        Some((seq, None)) => bail!("seq {seq} has no chain link: this database was not written by a chained tool"),
    }
}

/// Inserts `row` as the next link after `head` (moving `head` when it was stored).
fn insert(conn: &Connection, head: &mut Head, row: &Row, hash: Digest, ingested_at_ms: i64) -> Result<usize> {
    let mut statement = conn.prepare_cached(INSERT)?;
    let seq = head.seq + 1;
    let inserted = statement.execute(params![
        seq,
        row.uuid,
        row.timestamp_ms,
        row.event_type,
        row.db_user_id,
        row.user_email,
        row.method,
        row.status,
        ingested_at_ms,
        row.body,
        head.hash.as_slice(),
        hash.as_slice(),
        row.user_id,
        row.user_name,
    ])?;
    if inserted == 1 {
        *head = Head { seq, hash };
    }
    Ok(inserted)
}

fn open_collector_database(path: &Path) -> Result<Connection> {
    if !path.exists() {
        bail!("{} does not exist: start the collector once on it to create the schema", path.display());
    }
    let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if version < 4 {
        bail!("{} has schema version {version}: start the current collector once on it first", path.display());
    }
    Ok(conn)
}

pub fn raw_insert(flags: &Flags) -> Result<serde_json::Value> {
    let path = Path::new(flags.text("db")?);
    let events: u64 = flags.number("events")?;
    let batch: u64 = flags.number_or("batch", 100)?;
    let per_commit: u64 = flags.number_or("batches-per-commit", 1)?;
    if batch == 0 || per_commit == 0 {
        bail!("--batch and --batches-per-commit must be greater than zero");
    }
    drop(open_collector_database(path)?);
    // The writer's own connection setup: WAL, synchronous=FULL, its checkpoint interval and
    // page cache (collector/src/store/sqlite/schema.rs).
    let mut conn = audit_collector::open_for_writing(path)?;
    let mode: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
    let now = now_millis();
    let rows = (0..events).map(|i| row(3, i, now + i as i64)).collect::<Result<Vec<_>>>()?;
    let counted: Vec<NewEvent> = rows.iter().map(counted_columns).collect();
    let per_chunk = usize::try_from(batch * per_commit)?;
    let started = Instant::now();
    let mut stored = 0;
    let mut commits = 0;
    let mut head = chain_head(&conn)?;
    for (chunk, counted) in rows.chunks(per_chunk).zip(counted.chunks(per_chunk)) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let ingested_at_ms = now_millis();
        for row in chunk {
            // As the writer does: the link is computed from the stored body at insert.
            let hash = body_hash(&head.hash, head.seq + 1, &row.body)?;
            stored += insert(&tx, &mut head, row, hash, ingested_at_ms)?;
        }
        count_stored(&tx, counted.iter())?;
        tx.commit()?;
        commits += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(json!({
        "events": events, "stored": stored, "commits": commits, "rows_per_commit": batch * per_commit,
        "journal_mode": mode, "seconds": seconds, "events_per_s": events as f64 / seconds,
    }))
}

/// Rows the generator's builder thread hands over at a time.
const GENERATE_CHUNK: u64 = 1000;

pub fn generate(flags: &Flags) -> Result<serde_json::Value> {
    let path = Path::new(flags.text("db")?);
    let target: u64 = flags.number("events")?;
    let per_transaction: u64 = flags.number_or("rows-per-transaction", 100_000)?;
    if per_transaction == 0 {
        bail!("--rows-per-transaction must be greater than zero");
    }
    let mut conn = open_collector_database(path)?;
    // A generated trail needs no durability: a crash here means generating it again. No
    // journal at all (the WAL would write every page twice); WAL again at the end.
    conn.pragma_update(None, "journal_mode", "DELETE")?;
    conn.pragma_update(None, "journal_mode", "OFF")?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    conn.pragma_update(None, "cache_size", -1_048_576)?; // 1 GiB, so the indexes' hot pages stay in memory
    let mut head = chain_head(&conn)?;
    let existing = u64::try_from(head.seq)?;
    // Timestamps 50 ms apart, ending around now: recent enough that retention keeps them.
    let start_ms = now_millis() - i64::try_from(target)? * 50;
    let started = Instant::now();
    // Building a row and its canonical form costs about what inserting it does: a second
    // thread builds while this one hashes (the chain is sequential) and inserts.
    let (sender, receiver) = sync_channel::<Result<Vec<(Row, Vec<u8>)>>>(8);
    let builder = thread::spawn(move || {
        let mut index = existing;
        while index < target {
            let end = (index + GENERATE_CHUNK).min(target);
            let chunk = (index..end)
                .map(|i| {
                    let row = row(7, i, start_ms + i as i64 * 50)?;
                    let canonical = canonical_json(&serde_json::from_str(&row.body)?);
                    Ok((row, canonical))
                })
                .collect::<Result<Vec<_>>>();
            let failed = chunk.is_err();
            if sender.send(chunk).is_err() || failed {
                return;
            }
            index = end;
        }
    });
    let mut in_transaction = 0;
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for chunk in receiver {
        for (row, canonical) in chunk? {
            let hash = link_hash(&head.hash, head.seq + 1, &canonical);
            insert(&tx, &mut head, &row, hash, row.timestamp_ms + 5)?;
            in_transaction += 1;
        }
        if in_transaction >= per_transaction {
            tx.commit()?;
            tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            in_transaction = 0;
        }
    }
    tx.commit()?;
    builder.join().map_err(|_| anyhow!("the row builder panicked"))?;
    // The collector's writer counts each batch into the activity rollup; rows written here
    // bypass it, so the rollup is rebuilt from them once.
    conn.execute_batch(REBUILD_ACTIVITY_SQL)?;
    let seconds = started.elapsed().as_secs_f64();
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let total = chain_head(&conn)?.seq;
    let first: String = conn.query_row("SELECT uuid FROM events ORDER BY seq LIMIT 1", [], |row| row.get(0))?;
    // The first event of the last full page: `from=` it returns the end of the trail.
    let last_page: String =
        conn.query_row("SELECT uuid FROM events ORDER BY seq DESC LIMIT 1 OFFSET 99", [], |row| row.get(0))?;
    let bytes = std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0);
    let generated = target.saturating_sub(existing);
    Ok(json!({
        "events": total, "generated": generated, "seconds": seconds,
        "rows_per_s": generated as f64 / seconds.max(1e-9),
        "first_uuid": first, "last_page_uuid": last_page, "db_bytes": bytes,
    }))
}
