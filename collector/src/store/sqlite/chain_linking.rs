//! Start-up linking of events stored before the hash chain existed (a database from an
//! older collector): they get their links in seq order, continuing from the last linked
//! event, before the writer starts.
//!
//! Linked events always form a prefix of the trail in seq order (the writer links every
//! event it stores, and this walk commits in seq order), so a trail whose newest event is
//! linked is linked throughout: that one-row check makes start-up O(1) on every database
//! but the first. The walk itself goes in chunks of [`LINK_CHUNK`] events, each its own
//! transaction, so memory and the WAL stay bounded on a trail of millions, and an
//! interrupted start resumes where it stopped.

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::super::StoreError;
use super::chain_store::read_anchor;
use crate::chain::link::{body_hash, digest_from_blob, Digest, GENESIS};

/// Events read, linked and committed at a time.
pub const LINK_CHUNK: usize = 10_000;

/// Links every event that has no chain link yet; returns how many it linked.
pub fn link_unchained_events(conn: &mut Connection) -> Result<usize, StoreError> {
    let newest_linked: Option<bool> = conn
        .query_row("SELECT chain_hash IS NOT NULL FROM events ORDER BY seq DESC LIMIT 1", [], |row| row.get(0))
        .optional()?;
    if newest_linked != Some(false) {
        return Ok(0);
    }
    let mut prev = read_anchor(conn)?.map_or(GENESIS, |anchor| anchor.hash);
    let mut after = i64::MIN;
    let mut linked = 0;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (read, last_seq) = link_chunk(&tx, after, &mut prev, &mut linked)?;
        tx.commit()?;
        match last_seq {
            Some(seq) if read == LINK_CHUNK => after = seq,
            _ => return Ok(linked),
        }
    }
}

/// Links the unlinked events among the next [`LINK_CHUNK`] after seq `after`; returns how
/// many rows it read and the last seq. Linked rows only pass their hash on: their bodies
/// are not even read.
fn link_chunk(
    conn: &Connection,
    after: i64,
    prev: &mut Digest,
    linked: &mut usize,
) -> Result<(usize, Option<i64>), StoreError> {
    let mut select = conn.prepare_cached(
        "SELECT seq, chain_hash, CASE WHEN chain_hash IS NULL THEN body END FROM events
         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let rows: Vec<(i64, Option<Vec<u8>>, Option<String>)> = select
        .query_map(params![after, i64::try_from(LINK_CHUNK).unwrap_or(i64::MAX)], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut update = conn.prepare_cached("UPDATE events SET chain_prev = ?1, chain_hash = ?2 WHERE seq = ?3")?;
    for (seq, hash, body) in &rows {
        *prev = match (hash, body) {
            (Some(hash), _) => digest_from_blob(hash)
                .ok_or_else(|| StoreError::Chain(format!("seq {seq} has a chain_hash that is not 32 bytes")))?,
            (None, Some(body)) => {
                let hash = body_hash(prev, *seq, body)
                    .map_err(|error| StoreError::Chain(format!("seq {seq} is not JSON: {error}")))?;
                update.execute(params![prev.as_slice(), hash.as_slice(), seq])?;
                *linked += 1;
                hash
            }
            (None, None) => return Err(StoreError::Chain(format!("seq {seq} has no body to link"))),
        };
    }
    Ok((rows.len(), rows.last().map(|(seq, _, _)| *seq)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::unlinked_trail;

    fn links(conn: &Connection) -> Vec<(i64, Vec<u8>, Vec<u8>)> {
        let mut select = conn.prepare("SELECT seq, chain_prev, chain_hash FROM events ORDER BY seq").expect("prepare");
        let rows = select.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?))).expect("query");
        rows.collect::<Result<_, _>>().expect("every event has a link")
    }

    #[test]
    fn an_unlinked_trail_longer_than_a_chunk_is_linked_in_seq_order() {
        let count = LINK_CHUNK + 7;
        let (_dir, mut conn) = unlinked_trail(count);
        assert_eq!(link_unchained_events(&mut conn).expect("links"), count);
        let mut prev = GENESIS;
        for (seq, chain_prev, chain_hash) in links(&conn) {
            let n = seq - 1;
            let expected = body_hash(&prev, seq, &format!(r#"{{"n":{n}}}"#)).expect("hash");
            assert_eq!(chain_prev, prev.to_vec(), "seq {seq}: chain_prev is the hash before it");
            assert_eq!(chain_hash, expected.to_vec(), "seq {seq}: chain_hash");
            prev = expected;
        }
    }

    #[test]
    fn a_linked_trail_is_left_alone_and_a_partly_linked_one_continues_its_chain() {
        let (_dir, mut conn) = unlinked_trail(3);
        assert_eq!(link_unchained_events(&mut conn).expect("links"), 3);
        assert_eq!(link_unchained_events(&mut conn).expect("nothing to do"), 0);
        let before = links(&conn);
        conn.execute(
            "INSERT INTO events (uuid, timestamp_ms, type, method, ingested_at_ms, body)
             VALUES ('late', 0, 'T', 'GET', 0, '{\"n\":3}')",
            [],
        )
        .expect("insert");
        assert_eq!(link_unchained_events(&mut conn).expect("links the new one"), 1);
        let after = links(&conn);
        assert_eq!(after[..3], before[..], "the linked prefix is unchanged");
        let expected = body_hash(&digest_from_blob(&before[2].2).expect("32 bytes"), 4, r#"{"n":3}"#).expect("hash");
        assert_eq!(after[3].2, expected.to_vec());
    }
}
