//! Checkpoints and retention on PostgreSQL. Any replica may run them: each runs in a
//! transaction that first locks the chain head row, the same row every sealing
//! transaction locks, so a checkpoint signs a head no sealer is moving and a purge moves
//! the anchor of a chain no sealer is extending.

use audit_event::chain::Checkpoint;
use deadpool_postgres::{Pool, Transaction};
use tokio_postgres::Row;

use super::super::{now_millis, StoreError};
use crate::chain::checkpoint::{handover_checkpoint, next_checkpoint};
use crate::chain::link::{digest_from_blob, from_hex, to_hex, Digest, GENESIS};
use crate::chain::signing::{TrailSigner, TrailVerifier};

/// Expired uuids are remembered this long past the newest purged event (as on SQLite), so
/// a consumer's purged cursor is answered "expired" rather than "unknown".
const REMEMBER_EXPIRED_MS: i64 = 30 * 86_400_000;

const CHECKPOINT_COLUMNS: &str = "number, last_seq, last_hash, anchor_seq, anchor_hash, issued_at_ms, \
     prev_checkpoint_hash, key_id, signature, next_public_key";

/// Signs a checkpoint of the head, unless the newest checkpoint already says the same.
pub async fn checkpoint(pool: &Pool, signer: &TrailSigner) -> Result<Option<Checkpoint>, StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let issued = checkpoint_in(&tx, signer).await?;
    tx.commit().await?;
    Ok(issued)
}

async fn locked_head(tx: &Transaction<'_>) -> Result<(i64, Digest), StoreError> {
    let row = tx.query_one("SELECT seq, hash FROM chain_head WHERE id = 1 FOR UPDATE", &[]).await?;
    let hash =
        digest_from_blob(row.try_get(1)?).ok_or_else(|| StoreError::Chain("the head hash is not 32 bytes".into()))?;
    Ok((row.try_get(0)?, hash))
}

async fn anchor(tx: &Transaction<'_>) -> Result<(i64, Digest), StoreError> {
    match tx.query_opt("SELECT seq, hash FROM chain_anchor WHERE id = 1", &[]).await? {
        Some(row) => {
            let hash = digest_from_blob(row.try_get(1)?)
                .ok_or_else(|| StoreError::Chain("the anchor hash is not 32 bytes".into()))?;
            Ok((row.try_get(0)?, hash))
        }
        None => Ok((0, GENESIS)),
    }
}

async fn checkpoint_in(tx: &Transaction<'_>, signer: &TrailSigner) -> Result<Option<Checkpoint>, StoreError> {
    let (head, anchor, previous) = chain_state(tx).await?;
    let Some(checkpoint) =
        next_checkpoint((head.0, &head.1), (anchor.0, &anchor.1), previous.as_ref(), signer, now_millis())?
    else {
        return Ok(None);
    };
    insert_checkpoint(tx, &checkpoint).await?;
    Ok(Some(checkpoint))
}

/// Key rotation (`rotate-key`): signs, with `signer`, a checkpoint of the head that names
/// `next` as the key of every later checkpoint.
pub async fn handover(pool: &Pool, signer: &TrailSigner, next: &TrailVerifier) -> Result<Checkpoint, StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let (head, anchor, previous) = chain_state(&tx).await?;
    let checkpoint =
        handover_checkpoint((head.0, &head.1), (anchor.0, &anchor.1), previous.as_ref(), signer, next, now_millis())?;
    insert_checkpoint(&tx, &checkpoint).await?;
    tx.commit().await?;
    Ok(checkpoint)
}

/// The locked head, the anchor and the newest checkpoint: what the next checkpoint is
/// built from.
async fn chain_state(tx: &Transaction<'_>) -> Result<((i64, Digest), (i64, Digest), Option<Checkpoint>), StoreError> {
    let head = locked_head(tx).await?;
    let anchor = anchor(tx).await?;
    let latest = format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY number DESC LIMIT 1");
    let previous = tx.query_opt(&latest, &[]).await?.map(|row| checkpoint_of_row(&row)).transpose()?;
    Ok((head, anchor, previous))
}

async fn insert_checkpoint(tx: &Transaction<'_>, checkpoint: &Checkpoint) -> Result<(), StoreError> {
    let bytes = |hex: &str| from_hex(hex).unwrap_or_default();
    tx.execute(
        "INSERT INTO checkpoints (number, last_seq, last_hash, anchor_seq, anchor_hash, issued_at_ms,
                                  prev_checkpoint_hash, key_id, signature, next_public_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        &[
            &checkpoint.number,
            &checkpoint.last_seq,
            &bytes(&checkpoint.last_hash),
            &checkpoint.anchor_seq,
            &bytes(&checkpoint.anchor_hash),
            &checkpoint.issued_at_ms,
            &bytes(&checkpoint.prev_checkpoint_hash),
            &checkpoint.key_id,
            &bytes(&checkpoint.signature),
            &checkpoint.next_public_key.as_deref().map(bytes),
        ],
    )
    .await?;
    Ok(())
}

/// The newest checkpoint.
pub async fn latest_checkpoint(pool: &Pool) -> Result<Option<Checkpoint>, StoreError> {
    let client = pool.get().await?;
    let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY number DESC LIMIT 1");
    client.query_opt(&sql, &[]).await?.map(|row| checkpoint_of_row(&row)).transpose()
}

/// Up to `limit` checkpoints numbered above `after`, oldest first.
pub async fn read_checkpoints(pool: &Pool, after: i64, limit: usize) -> Result<Vec<Checkpoint>, StoreError> {
    let client = pool.get().await?;
    let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE number > $1 ORDER BY number LIMIT $2");
    let rows = client.query(&sql, &[&after, &i64::try_from(limit).unwrap_or(i64::MAX)]).await?;
    rows.iter().map(checkpoint_of_row).collect()
}

/// A `checkpoints` row (columns in the order of `CHECKPOINT_COLUMNS`) as the wire shape.
pub fn checkpoint_of_row(row: &Row) -> Result<Checkpoint, StoreError> {
    let hex_of = |index: usize| -> Result<String, StoreError> { Ok(to_hex(row.try_get::<_, &[u8]>(index)?)) };
    Ok(Checkpoint {
        number: row.try_get(0)?,
        last_seq: row.try_get(1)?,
        last_hash: hex_of(2)?,
        anchor_seq: row.try_get(3)?,
        anchor_hash: hex_of(4)?,
        issued_at_ms: row.try_get(5)?,
        prev_checkpoint_hash: hex_of(6)?,
        key_id: row.try_get(7)?,
        signature: hex_of(8)?,
        // A key handover (`rotate-key`).
        next_public_key: row.try_get::<_, Option<&[u8]>>(9)?.map(to_hex),
    })
}

/// Deletes up to `limit` of the oldest events (by seq) as long as each is older than
/// `older_than_ms`, records the last one as the anchor and, with a key, signs the
/// checkpoint naming it, all in one transaction.
pub async fn purge(
    pool: &Pool,
    older_than_ms: i64,
    limit: usize,
    signer: Option<&TrailSigner>,
) -> Result<usize, StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    locked_head(&tx).await?;
    let oldest = tx
        .query(
            "SELECT seq, timestamp_ms, chain_hash FROM events ORDER BY seq LIMIT $1",
            &[&i64::try_from(limit).unwrap_or(i64::MAX)],
        )
        .await?;
    let mut last_expired = None;
    for row in &oldest {
        if row.try_get::<_, i64>(1)? >= older_than_ms {
            break;
        }
        last_expired = Some(row);
    }
    let Some(last) = last_expired else {
        return Ok(0);
    };
    let (last_seq, last_timestamp): (i64, i64) = (last.try_get(0)?, last.try_get(1)?);
    let hash = digest_from_blob(last.try_get(2)?)
        .ok_or_else(|| StoreError::Chain(format!("seq {last_seq} has a chain_hash that is not 32 bytes")))?;
    let deleted = tx.execute("DELETE FROM events WHERE seq <= $1", &[&last_seq]).await?;
    tx.execute(
        "INSERT INTO chain_anchor (id, seq, hash, purged_at_ms) VALUES (1, $1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, purged_at_ms = excluded.purged_at_ms",
        &[&last_seq, &hash.as_slice(), &now_millis()],
    )
    .await?;
    let deleted_count = i64::try_from(deleted).unwrap_or(i64::MAX);
    tx.execute("UPDATE purge_count SET events = events + $1 WHERE id = 1", &[&deleted_count]).await?;
    // `events` has no uuid index (version 9): an event is found by its timestamp and uuid,
    // the key of the timestamp index.
    tx.execute(
        "DELETE FROM trail_uuids t WHERE timestamp_ms < $1
           AND NOT EXISTS (SELECT 1 FROM events e WHERE e.timestamp_ms = t.timestamp_ms AND e.uuid = t.uuid)
           AND NOT EXISTS (SELECT 1 FROM unsequenced u WHERE u.uuid = t.uuid)",
        &[&last_timestamp.saturating_sub(REMEMBER_EXPIRED_MS)],
    )
    .await?;
    if let Some(signer) = signer {
        checkpoint_in(&tx, signer).await?;
    }
    tx.commit().await?;
    Ok(usize::try_from(deleted).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::test_cluster::fresh_database;
    use crate::store::postgres::{schema, PgStore};
    use crate::store::trail_store::TrailStore;
    use crate::store::StoreError;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_handover_only_the_new_key_signs_and_the_chain_of_checkpoints_names_it() {
        let url = fresh_database().await;
        let (old_key, new_key) = (TrailSigner::from_seed([1; 32]), TrailSigner::from_seed([2; 32]));
        let store = PgStore::open(&url, Some(TrailSigner::from_seed([1; 32]))).await.expect("open");
        store.ingest(vec![crate::store::test_support::new_event(1, 0)], None).await.expect("stored");
        store.shutdown().await.expect("stop; signs checkpoint 1");
        let pool = schema::pool(&url).expect("pool");
        let handed = handover(&pool, &old_key, &new_key.verifier()).await.expect("hand over");
        assert_eq!((handed.number, handed.key_id.as_str()), (2, old_key.key_id()));
        assert_eq!(handed.next_public_key, Some(new_key.public_key().public_key_hex));
        let stale = handover(&pool, &old_key, &new_key.verifier()).await;
        assert!(matches!(stale, Err(StoreError::WrongSigningKey(_))), "the old key cannot sign any more: {stale:?}");
        assert_eq!(latest_checkpoint(&pool).await.expect("read"), Some(handed.clone()), "stored as signed");
        let store = PgStore::open(&url, Some(TrailSigner::from_seed([2; 32]))).await.expect("open with the new key");
        store.ingest(vec![crate::store::test_support::new_event(2, 0)], None).await.expect("stored");
        store.shutdown().await.expect("stop; signs with the new key");
        let newest = latest_checkpoint(&pool).await.expect("read").expect("a checkpoint");
        assert_eq!((newest.number, newest.key_id.as_str()), (3, new_key.key_id()));
    }
}
