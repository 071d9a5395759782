//! The chain in the database: the head a new event links to, the retention anchor, the
//! checkpoints. All of
//! it runs on the writer's connection inside the writer's transaction, so an event, its
//! link and any checkpoint covering it commit together or not at all. A key rotation is a
//! handover checkpoint ([`issue_handover`]); the new key's public half is stored, never a
//! private key.

use audit_event::chain::Checkpoint;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::super::StoreError;
use crate::chain::checkpoint::{handover_checkpoint, next_checkpoint};
use crate::chain::link::{digest_from_blob, from_hex, to_hex, Digest, GENESIS};
use crate::chain::signing::{TrailSigner, TrailVerifier};

/// The newest link: the seq and hash the next event chains to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// The newest seq (0 for an empty trail that was never purged).
    pub seq: i64,
    /// Its hash ([`GENESIS`] when there is none).
    pub hash: Digest,
}

/// The head: the newest event, else the retention anchor (everything was purged), else
/// genesis. Seqs therefore keep growing after a purge emptied the table, which SQLite's
/// rowid reuse alone would not guarantee.
pub fn chain_head(conn: &Connection) -> Result<ChainHead, StoreError> {
    let newest: Option<(i64, Option<Vec<u8>>)> = conn
        .prepare_cached("SELECT seq, chain_hash FROM events ORDER BY seq DESC LIMIT 1")?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    match newest {
        Some((seq, Some(hash))) => {
            let hash = digest_from_blob(&hash)
                .ok_or_else(|| StoreError::Chain(format!("seq {seq} has a chain_hash that is not 32 bytes")))?;
            Ok(ChainHead { seq, hash })
        }
        Some((seq, None)) => Err(StoreError::Chain(format!("seq {seq} has no chain_hash"))),
        None => Ok(read_anchor(conn)?.unwrap_or(ChainHead { seq: 0, hash: GENESIS })),
    }
}

/// The last event retention purged, when it purged any.
pub fn read_anchor(conn: &Connection) -> Result<Option<ChainHead>, StoreError> {
    let anchor: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT seq, hash FROM chain_anchor WHERE id = 1")?
        .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    anchor
        .map(|(seq, hash)| {
            let hash = digest_from_blob(&hash)
                .ok_or_else(|| StoreError::Chain("the anchor hash is not 32 bytes".to_owned()))?;
            Ok(ChainHead { seq, hash })
        })
        .transpose()
}

/// Records `anchor` as the last purged event (only inside a purge: see `purge_guard`).
pub fn record_anchor(conn: &Connection, anchor: ChainHead, purged_at_ms: i64) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO chain_anchor (id, seq, hash, purged_at_ms) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, purged_at_ms = excluded.purged_at_ms",
    )?
    .execute(params![anchor.seq, anchor.hash.as_slice(), purged_at_ms])?;
    Ok(())
}

/// Opens or closes the window in which the triggers let events be deleted. The purge opens
/// it and closes it again inside its own transaction, so no other connection ever sees
/// it open.
pub fn set_purging(conn: &Connection, purging: bool) -> rusqlite::Result<()> {
    conn.prepare_cached("UPDATE purge_guard SET purging = ?1 WHERE id = 1")?.execute([i64::from(purging)])?;
    Ok(())
}

/// Signs a checkpoint of the current head and anchor, unless the newest checkpoint already
/// says the same (no new events, no new purge). Returns the new checkpoint.
pub fn issue_checkpoint(
    conn: &Connection,
    signer: &TrailSigner,
    now_ms: i64,
) -> Result<Option<Checkpoint>, StoreError> {
    let (head, anchor, previous) = chain_state(conn)?;
    let next = next_checkpoint((head.seq, &head.hash), (anchor.seq, &anchor.hash), previous.as_ref(), signer, now_ms)?;
    let Some(checkpoint) = next else {
        return Ok(None);
    };
    insert_checkpoint(conn, &checkpoint)?;
    Ok(Some(checkpoint))
}

/// Key rotation: signs, with the current key, a checkpoint of the head that names `next`
/// as the key of every later checkpoint.
pub fn issue_handover(
    conn: &Connection,
    signer: &TrailSigner,
    next: &TrailVerifier,
    now_ms: i64,
) -> Result<Checkpoint, StoreError> {
    let (head, anchor, previous) = chain_state(conn)?;
    let checkpoint = handover_checkpoint(
        (head.seq, &head.hash),
        (anchor.seq, &anchor.hash),
        previous.as_ref(),
        signer,
        next,
        now_ms,
    )?;
    insert_checkpoint(conn, &checkpoint)?;
    Ok(checkpoint)
}

/// The head, the anchor and the newest checkpoint: what the next checkpoint is built from.
fn chain_state(conn: &Connection) -> Result<(ChainHead, ChainHead, Option<Checkpoint>), StoreError> {
    let head = chain_head(conn)?;
    let anchor = read_anchor(conn)?.unwrap_or(ChainHead { seq: 0, hash: GENESIS });
    Ok((head, anchor, latest_checkpoint(conn)?))
}

fn insert_checkpoint(conn: &Connection, checkpoint: &Checkpoint) -> Result<(), StoreError> {
    let hex_bytes = |hex: &str| from_hex(hex).unwrap_or_default();
    conn.prepare_cached(
        "INSERT INTO checkpoints (number, last_seq, last_hash, anchor_seq, anchor_hash, issued_at_ms,
                                  prev_checkpoint_hash, key_id, signature, next_public_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        checkpoint.number,
        checkpoint.last_seq,
        hex_bytes(&checkpoint.last_hash),
        checkpoint.anchor_seq,
        hex_bytes(&checkpoint.anchor_hash),
        checkpoint.issued_at_ms,
        hex_bytes(&checkpoint.prev_checkpoint_hash),
        checkpoint.key_id,
        hex_bytes(&checkpoint.signature),
        checkpoint.next_public_key.as_deref().map(hex_bytes),
    ])?;
    Ok(())
}

const CHECKPOINT_COLUMNS: &str = "number, last_seq, last_hash, anchor_seq, anchor_hash, issued_at_ms, \
     prev_checkpoint_hash, key_id, signature, next_public_key";

/// The newest checkpoint.
pub fn latest_checkpoint(conn: &Connection) -> Result<Option<Checkpoint>, StoreError> {
    let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY number DESC LIMIT 1");
    Ok(conn.prepare_cached(&sql)?.query_row([], checkpoint_of_row).optional()?)
}

/// Up to `limit` checkpoints numbered above `after`, in ascending order.
pub fn read_checkpoints(conn: &Connection, after: i64, limit: usize) -> Result<Vec<Checkpoint>, StoreError> {
    let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE number > ?1 ORDER BY number LIMIT ?2");
    let mut select = conn.prepare_cached(&sql)?;
    let rows = select.query_map(params![after, i64::try_from(limit).unwrap_or(i64::MAX)], checkpoint_of_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A row as the wire shape; hashes and signature as hex, whatever their length, so a
/// damaged row is shown (and fails verification) rather than hidden.
fn checkpoint_of_row(row: &Row<'_>) -> rusqlite::Result<Checkpoint> {
    let hex_of = |index: usize| -> rusqlite::Result<String> { Ok(to_hex(&row.get::<_, Vec<u8>>(index)?)) };
    Ok(Checkpoint {
        number: row.get(0)?,
        last_seq: row.get(1)?,
        last_hash: hex_of(2)?,
        anchor_seq: row.get(3)?,
        anchor_hash: hex_of(4)?,
        issued_at_ms: row.get(5)?,
        prev_checkpoint_hash: hex_of(6)?,
        key_id: row.get(7)?,
        signature: hex_of(8)?,
        next_public_key: row.get::<_, Option<Vec<u8>>>(9)?.map(|key| to_hex(&key)),
    })
}
