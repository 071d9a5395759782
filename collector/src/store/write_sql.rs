//! The SQL the SQLite writer thread runs inside its transactions besides inserting:
//! deleting the oldest events for retention, with the anchor the kept chain starts from.

use rusqlite::{params, Connection};

use super::chain_store::{record_anchor, set_purging, ChainHead};
use super::now_millis;
use crate::chain::link::digest_from_blob;

/// Deletes up to `limit` of the oldest events (by seq) as long as each is older than
/// `older_than_ms`, and records the last one deleted as the chain's anchor (runs on the
/// writer, inside its transaction).
pub fn purge_batch(conn: &Connection, older_than_ms: i64, limit: usize) -> rusqlite::Result<usize> {
    let mut last_expired: Option<(i64, Option<Vec<u8>>)> = None;
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
    set_purging(conn, true)?;
    let deleted = conn.prepare_cached("DELETE FROM events WHERE seq <= ?1")?.execute(params![last_seq])?;
    // Events stored before the chain existed have no hash to anchor to; they are linked
    // at start-up, so this is only a database written by hand.
    if let Some(hash) = last_hash.as_deref().and_then(digest_from_blob) {
        record_anchor(conn, ChainHead { seq: last_seq, hash }, now_millis())?;
    }
    set_purging(conn, false)?;
    Ok(deleted)
}
