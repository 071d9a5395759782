//! The SQL the SQLite writer thread runs inside its transactions: inserting events (each
//! linked into the hash chain and counted into the activity rollup) and deleting the oldest ones for retention (with the anchor
//! the kept chain starts from).

#[cfg(test)]
use audit_event::IngestReceipt;
#[cfg(test)]
use rusqlite::Transaction;
use rusqlite::{params, Connection};

use super::super::new_event::NewEvent;
use super::super::{now_millis, StoreError};
use super::activity_rollup::count_stored;
use super::chain_store::{chain_head, record_anchor, set_purging, ChainHead};
use crate::chain::link::{digest_from_blob, link_hash};

/// Deletes up to `limit` of the oldest events (by seq) as long as each is older than
/// `older_than_ms`, and records the last one deleted as the chain's anchor (runs on the
/// writer, inside its transaction).
pub fn purge_batch(conn: &Connection, older_than_ms: i64, limit: usize) -> rusqlite::Result<usize> {
    let mut last_expired: Option<(i64, Vec<u8>)> = None;
    {
        let mut oldest =
            conn.prepare_cached("SELECT seq, timestamp_ms, chain_hash FROM events ORDER BY seq LIMIT ?1")?;
        let mut rows = oldest.query([i64::try_from(limit).unwrap_or(i64::MAX)])?;
        while let Some(row) = rows.next()? {
            if row.get::<_, i64>(1)? >= older_than_ms {
                break;
            }
            last_expired = Some((row.get(0)?, row.get(2)?));
        }
    }
    let Some((last_seq, last_hash)) = last_expired else {
        return Ok(0);
    };
    // Every event is stored with its link (`schema.rs` refuses a trail with one that is
    // not; reading a NULL `chain_hash` above fails), so a hash of the wrong length is damage.
    let hash = digest_from_blob(&last_hash).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Blob, "a chain_hash is not 32 bytes".into())
    })?;
    set_purging(conn, true)?;
    let deleted = conn.prepare_cached("DELETE FROM events WHERE seq <= ?1")?.execute(params![last_seq])?;
    // The trigger took the purged events out of the per-user rollup; a row it brought to
    // zero still names the user (an id or email) of events retention deleted, and would
    // keep the table growing with every user and hour ever seen. Every purged event is
    // older than `older_than_ms`, so its hour is at most that one's: a range of the key.
    conn.prepare_cached("DELETE FROM activity_user_hourly WHERE hour <= ?1 / 3600000 AND events <= 0")?
        .execute(params![older_than_ms])?;
    // The minute rollup's zeroed rows likewise, so it stays as long as the kept trail.
    conn.prepare_cached("DELETE FROM activity_minutely WHERE minute <= ?1 / 60000 AND events <= 0")?
        .execute(params![older_than_ms])?;
    record_anchor(conn, ChainHead { seq: last_seq, hash }, now_millis())?;
    set_purging(conn, false)?;
    Ok(deleted)
}

/// Each batch runs in its own savepoint, so one failing batch is rolled back alone and the
/// batches sharing its transaction still commit. Each new event gets the next seq and is
/// linked to the head of the chain; a duplicate (same uuid) takes no seq and no link.
/// (Ingest goes through the writer's `ingest_accounted`; tests build trails with this.)
#[cfg(test)]
pub fn insert_batch(
    tx: &mut Transaction<'_>,
    events: &[NewEvent],
    ingested_at_ms: i64,
) -> Result<IngestReceipt, StoreError> {
    let savepoint = tx.savepoint()?;
    let inserted = insert_rows(&savepoint, events, ingested_at_ms)?;
    savepoint.commit()?;
    let accepted = inserted.iter().filter(|stored| **stored).count();
    Ok(IngestReceipt { accepted, duplicates: events.len() - accepted })
}

/// Inserts the rows in order; returns, for each, whether it was new (not a duplicate).
pub(super) fn insert_rows(
    conn: &Connection,
    events: &[NewEvent],
    ingested_at_ms: i64,
) -> Result<Vec<bool>, StoreError> {
    let mut inserted_rows = Vec::with_capacity(events.len());
    {
        let mut head = chain_head(conn)?;
        let mut insert = conn.prepare_cached(
            "INSERT INTO events
                (seq, uuid, timestamp_ms, type, db_user_id, user_email, method, status, ingested_at_ms, body,
                 chain_prev, chain_hash, user_id, user_name)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
             ON CONFLICT (uuid) DO NOTHING",
        )?;
        for event in events {
            let seq = head.seq + 1;
            let hash = link_hash(&head.hash, seq, &event.canonical);
            let inserted = insert.execute(params![
                seq,
                event.uuid,
                event.timestamp_ms,
                event.event_type,
                event.db_user_id,
                event.user_email,
                event.method,
                event.status.map(i64::from),
                ingested_at_ms,
                event.body,
                head.hash.as_slice(),
                hash.as_slice(),
                event.user_id,
                event.user_name,
            ])?;
            if inserted == 1 {
                head.seq = seq;
                head.hash = hash;
            }
            inserted_rows.push(inserted == 1);
        }
    }
    count_stored(conn, events.iter().zip(&inserted_rows).filter(|(_, stored)| **stored).map(|(event, _)| event))?;
    Ok(inserted_rows)
}
