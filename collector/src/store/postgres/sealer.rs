//! The sealer: the one place, at a time, where acknowledged events get their sequence
//! number and their hash link. Every replica runs [`run`]; one of them holds the lease.
//!
//! - Taking the lease: `UPDATE sealer_lease SET epoch = epoch + 1 … WHERE expires_at <
//!   now()`, in database time, so clocks of the replicas do not matter.
//! - Sealing: ONE transaction renews the lease `WHERE epoch = <mine>` (locking its row:
//!   a lost lease makes the transaction stop before it touched anything), locks the chain
//!   head, moves up to [`SEAL_BATCH`] rows from `unsequenced` into `events` with seq =
//!   head + 1, … and their links, and moves the head. It commits whole or not at all: if
//!   the replica dies inside it, PostgreSQL rolls it back and the rows wait in
//!   `unsequenced` for the next sealer, which takes the lease once it expired.
//!
//! docs/postgres.md has the whole argument.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use tokio::sync::watch;

use super::super::StoreError;
use crate::chain::link::{digest_from_blob, link_hash};

/// Most events one sealing transaction moves.
pub const SEAL_BATCH: i64 = 5000;

/// How long a lease lasts without renewal: how long the trail waits after a sealer died.
pub const LEASE_SECONDS: f64 = 3.0;

/// How often the sealer looks for new events when the last transaction emptied the queue.
const SEAL_POLL: Duration = Duration::from_millis(50);

/// How often a replica without the lease tries to take it.
const LEASE_POLL: Duration = Duration::from_millis(500);

/// What one sealing transaction did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sealed {
    /// It moved this many events (0: nothing was waiting).
    Events(usize),
    /// The lease is no longer this epoch's: nothing was done.
    LostLease,
}

/// Takes the lease for `holder` if it is free or expired; returns the new epoch.
pub async fn take_lease(pool: &Pool, holder: &str) -> Result<Option<i64>, StoreError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "UPDATE sealer_lease SET epoch = epoch + 1, holder = $1, expires_at = now() + make_interval(secs => $2)
             WHERE id = 1 AND expires_at < now()
             RETURNING epoch",
            &[&holder, &LEASE_SECONDS],
        )
        .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

/// Gives the lease up at once (at shutdown), so another replica need not wait for it to
/// expire.
pub async fn release_lease(pool: &Pool, epoch: i64) -> Result<(), StoreError> {
    let client = pool.get().await?;
    client.execute("UPDATE sealer_lease SET expires_at = '-infinity' WHERE id = 1 AND epoch = $1", &[&epoch]).await?;
    Ok(())
}

/// One sealing transaction under lease `epoch`.
pub async fn seal_batch(pool: &Pool, epoch: i64) -> Result<Sealed, StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let renewed = tx
        .execute(
            "UPDATE sealer_lease SET expires_at = now() + make_interval(secs => $2) WHERE id = 1 AND epoch = $1",
            &[&epoch, &LEASE_SECONDS],
        )
        .await?;
    if renewed == 0 {
        return Ok(Sealed::LostLease);
    }
    let head = tx.query_one("SELECT seq, hash FROM chain_head WHERE id = 1 FOR UPDATE", &[]).await?;
    let mut seq: i64 = head.try_get(0)?;
    let mut hash = digest_from_blob(head.try_get(1)?)
        .ok_or_else(|| StoreError::Chain("the chain head hash is not 32 bytes".to_owned()))?;
    // Only what the links need: the rows themselves move inside PostgreSQL below.
    let waiting =
        tx.query("SELECT arrival, canonical FROM unsequenced ORDER BY arrival LIMIT $1", &[&SEAL_BATCH]).await?;
    if waiting.is_empty() {
        tx.commit().await?;
        return Ok(Sealed::Events(0));
    }
    let mut arrivals = Vec::with_capacity(waiting.len());
    let (mut seqs, mut prevs, mut hashes) = (Vec::new(), Vec::new(), Vec::new());
    for row in &waiting {
        arrivals.push(row.try_get::<_, i64>(0)?);
        let canonical: &[u8] = row.try_get(1)?;
        let prev = hash;
        seq += 1;
        hash = link_hash(&prev, seq, canonical);
        seqs.push(seq);
        prevs.push(prev.to_vec());
        hashes.push(hash.to_vec());
    }
    // One statement moves the whole batch: the DELETE hands its rows, with their links, to
    // the INSERT (one pass over `unsequenced` instead of a join and then a delete).
    let moved = tx
        .execute(
            "WITH links AS (
                 SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[]) AS s(arrival, seq, prev, hash)
             ), moved AS (
                 DELETE FROM unsequenced u USING links s WHERE u.arrival = s.arrival
                 RETURNING s.seq, u.uuid, u.timestamp_ms, u.type, u.db_user_id, u.user_email, u.user_id, u.method,
                           u.status, u.ingested_at_ms, u.body, s.prev, s.hash, u.user_name
             )
             INSERT INTO events (seq, uuid, timestamp_ms, type, db_user_id, user_email, user_id, method, status,
                                 ingested_at_ms, body, chain_prev, chain_hash, user_name)
             SELECT * FROM moved",
            &[&arrivals, &seqs, &prevs, &hashes],
        )
        .await?;
    if moved != arrivals.len() as u64 {
        // Only the sealer deletes from `unsequenced`, under the head lock: this cannot
        // happen, and if it did the transaction is dropped (rolled back) and the head stays.
        return Err(StoreError::Chain(format!("sealing found {} of {} waiting events", moved, arrivals.len())));
    }
    tx.execute("UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1", &[&seq, &hash.as_slice()]).await?;
    tx.commit().await?;
    Ok(Sealed::Events(arrivals.len()))
}

/// The loop every replica runs until `stop` turns true: take the lease when it is free,
/// seal while holding it. On stop, a replica holding the lease seals what is waiting and
/// gives the lease up. `sealing_epoch` shows the lease's epoch while this replica holds
/// it (0 otherwise), for the other work only the lease holder does (the sender check).
/// `epoch` is the lease's when the replica took it before starting the loop.
pub async fn run(
    pool: Pool,
    holder: String,
    mut stop: watch::Receiver<bool>,
    sealing_epoch: Arc<AtomicI64>,
    mut epoch: Option<i64>,
) {
    loop {
        sealing_epoch.store(epoch.unwrap_or(0), Ordering::Release);
        // A dropped sender (the store is gone without a shutdown) stops the loop too.
        let stopping = *stop.borrow() || stop.has_changed().is_err();
        let pause = match epoch {
            None if stopping => return,
            None => match take_lease(&pool, &holder).await {
                Ok(Some(taken)) => {
                    tracing::info!(epoch = taken, "this replica now seals the trail");
                    epoch = Some(taken);
                    Duration::ZERO
                }
                Ok(None) => LEASE_POLL,
                Err(error) => {
                    tracing::warn!(cause = %error, "could not check the sealer lease; will retry");
                    LEASE_POLL
                }
            },
            Some(mine) => match seal_batch(&pool, mine).await {
                Ok(Sealed::Events(moved)) if moved as i64 == SEAL_BATCH => Duration::ZERO,
                Ok(Sealed::Events(_)) if stopping => {
                    if let Err(error) = release_lease(&pool, mine).await {
                        tracing::warn!(cause = %error, "could not release the sealer lease; it expires by itself");
                    }
                    sealing_epoch.store(0, Ordering::Release);
                    return;
                }
                Ok(Sealed::Events(_)) => SEAL_POLL,
                Ok(Sealed::LostLease) => {
                    tracing::warn!(epoch = mine, "another replica took the sealer lease; this one stops sealing");
                    epoch = None;
                    LEASE_POLL
                }
                Err(error) => {
                    // Whatever failed was rolled back; the lease (if still ours) is renewed
                    // by the next transaction, or expires and passes on.
                    tracing::warn!(cause = %error, "sealing failed; will retry");
                    if stopping {
                        sealing_epoch.store(0, Ordering::Release);
                        return;
                    }
                    LEASE_POLL
                }
            },
        };
        if !pause.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => {}
            }
        }
    }
}
