//! The sealer: the one place, at a time, where acknowledged events get their sequence
//! number and their hash link. Every replica runs [`run`]; one of them holds the lease.
//!
//! - Taking the lease: `UPDATE sealer_lease SET epoch = epoch + 1 … WHERE expires_at <
//!   now()`, in database time, so clocks of the replicas do not matter.
//! - The high water ([`high_water`]): the sequence's last value, once every transaction
//!   that could hold a position up to it has ended, so every position up to it is final
//!   (committed or rolled back); ingest is never blocked for it.
//! - Sealing: ONE transaction renews the lease `WHERE epoch = <mine>` (locking its row:
//!   a lost lease makes the transaction stop before it touched anything), locks the chain
//!   head, numbers up to [`SEAL_BATCH`] committed positions after the head's (up to the high
//!   water, in position order) with seq = head + 1, …, writes their links as narrow
//!   `event_seals` rows, and moves the head. It commits whole or not at all: if the replica
//!   dies inside it, PostgreSQL rolls it back and the events wait, unnumbered, for the next
//!   sealer, which takes the lease once it expired.
//!
//! docs/postgres.md has the whole argument.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deadpool_postgres::{GenericClient, Pool};
use tokio::sync::watch;

use super::super::StoreError;
use crate::chain::link::{canonical_body, digest_from_blob, link_hash};

/// Most events one sealing transaction moves.
pub const SEAL_BATCH: i64 = 5000;

/// How long a lease lasts without renewal: how long the trail waits after a sealer died.
pub const LEASE_SECONDS: f64 = 3.0;

/// How often the sealer looks for new events when the last transaction emptied the queue.
const SEAL_POLL: Duration = Duration::from_millis(50);

/// How long one sealing round waits for the transactions older than its high water to end;
/// then it renews the lease and tries again (the lease lasts [`LEASE_SECONDS`]).
const HIGH_WATER_WAIT: Duration = Duration::from_secs(1);

/// How often it looks whether they have.
const HIGH_WATER_POLL: Duration = Duration::from_millis(1);

/// Every how many polls the wait asks whether the transactions still running that are older
/// than the high water belong to this database (a read of every backend's status).
const SCOPED_POLL_EVERY: u32 = 10;

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

/// The high-water position, when it is known within [`HIGH_WATER_WAIT`]: every position at
/// or below it is final (its transaction committed or rolled back), and none can appear
/// later. Read without blocking anyone (after Marten's high-water mark, made exact):
/// 1. read the sequence's last value `H`, then give this transaction an id `M`: every
///    transaction that took a position up to `H` had its id before (ingest's statement
///    inserts its uuids, which assigns the id, before it takes a position), so below `M`;
/// 2. wait until no transaction of THIS database older than `M` still runs
///    ([`older_running`]): every one that could hold a position has then ended, and a
///    statement after that sees each position up to `H` that committed.
///
/// A long transaction of this database holding a position holds the sealer back (`None`
/// meanwhile) rather than being overtaken; so does any other long writing transaction of
/// this database older than `M`, and the warning names it. Other databases on the same
/// server cannot hold a position here, and do not hold sealing back.
pub async fn high_water(pool: &Pool) -> Result<Option<i64>, StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let row = tx.query_one("SELECT last_value, is_called FROM event_positions", &[]).await?;
    let (last, called): (i64, bool) = (row.try_get(0)?, row.try_get(1)?);
    let mine: String = tx.query_one("SELECT pg_current_xact_id()::text", &[]).await?.try_get(0)?;
    // It wrote nothing: rolled back, it costs no commit flush.
    tx.rollback().await?;
    let deadline = Instant::now() + HIGH_WATER_WAIT;
    let high_water = if called { last } else { last - 1 };
    let mut poll: u32 = 0;
    loop {
        poll = poll.wrapping_add(1);
        // The server-wide answer first: cheap, and usually yes within a few polls.
        let ended: bool = client
            .query_one("SELECT pg_snapshot_xmin(pg_current_snapshot()) >= $1::text::xid8", &[&mine])
            .await?
            .try_get(0)?;
        if ended {
            return Ok(Some(high_water));
        }
        // Then, less often (it reads every backend's status), this database's own answer.
        if !poll.is_multiple_of(SCOPED_POLL_EVERY) {
            tokio::time::sleep(HIGH_WATER_POLL).await;
            continue;
        }
        let Some(holder) = older_running(&client, &mine).await? else {
            return Ok(Some(high_water));
        };
        if Instant::now() >= deadline {
            tracing::warn!(
                holder = %holder,
                "sealing waits for a transaction of this database that is older than the high water \
                 (it may hold a position); acknowledged events stay unreadable until it ends"
            );
            return Ok(None);
        }
        tokio::time::sleep(HIGH_WATER_POLL).await;
    }
}

/// A transaction of this database older than the transaction id `mine` that still runs,
/// described (`None` when there is none). A snapshot's `xmin` would answer for the whole
/// server, so that another database's long batch job would hold sealing back; only this
/// database's transactions can hold a position, so only they are looked at:
/// - in a backend connected to it: `pg_stat_activity.backend_xid`, which every role may
///   read, set under the lock that hands out ids, so one handed out before `mine` is seen;
/// - prepared (two-phase) in it: `pg_prepared_xacts`. Read second, in its own statement: a
///   transaction being prepared is listed there before its backend lets its id go, so one
///   between the two reads is seen in one or the other.
///
/// Each statement runs in its own transaction: `pg_stat_activity` is read afresh.
async fn older_running(client: &impl GenericClient, mine: &str) -> Result<Option<String>, StoreError> {
    let backend = client
        .query_opt(
            "SELECT format('pid %s, transaction %s, started %s, %s', pid, backend_xid, xact_start, state)
             FROM pg_stat_activity
             WHERE datid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND backend_xid IS NOT NULL AND age(backend_xid) > age($1::text::xid8::xid)
             ORDER BY age(backend_xid) DESC LIMIT 1",
            &[&mine],
        )
        .await?;
    if let Some(row) = backend {
        return Ok(Some(row.try_get(0)?));
    }
    let prepared = client
        .query_opt(
            "SELECT format('prepared transaction %L (%s), prepared %s', gid, transaction, prepared)
             FROM pg_prepared_xacts
             WHERE database = current_database() AND age(transaction) > age($1::text::xid8::xid)
             ORDER BY age(transaction) DESC LIMIT 1",
            &[&mine],
        )
        .await?;
    Ok(prepared.map(|row| row.try_get(0)).transpose()?)
}

/// One sealing transaction under lease `epoch`: numbers and chains the committed positions
/// after the head's, up to the [`high_water`] position read just before it.
pub async fn seal_batch(pool: &Pool, epoch: i64) -> Result<Sealed, StoreError> {
    // Not known yet: the transaction still renews the lease, and numbers nothing.
    let final_upto = high_water(pool).await?.unwrap_or(i64::MIN);
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
    let head = tx.query_one("SELECT seq, hash, position FROM chain_head WHERE id = 1 FOR UPDATE", &[]).await?;
    let mut seq: i64 = head.try_get(0)?;
    let mut hash = digest_from_blob(head.try_get(1)?)
        .ok_or_else(|| StoreError::Chain("the chain head hash is not 32 bytes".to_owned()))?;
    let head_position: i64 = head.try_get(2)?;
    if final_upto <= head_position {
        // Another sealer went further meanwhile, or nothing new: nothing to do.
        tx.commit().await?;
        return Ok(Sealed::Events(0));
    }
    // A statement after the high-water instant: it sees every position up to it that
    // committed; a position missing here rolled back and never appears.
    let waiting = tx
        .query(
            "SELECT position, body FROM events WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3",
            &[&head_position, &final_upto, &SEAL_BATCH],
        )
        .await?;
    let bodies = waiting
        .iter()
        .map(|row| Ok((row.try_get::<_, i64>(0)?, row.try_get::<_, String>(1)?)))
        .collect::<Result<Vec<_>, StoreError>>()?;
    // The canonical forms, as `verify` recomputes them from the stored bodies, off the
    // async threads.
    let canonicals = tokio::task::spawn_blocking(move || {
        bodies
            .into_iter()
            .map(|(position, body)| {
                canonical_body(&body).map(|canonical| (position, canonical)).map_err(|error| {
                    StoreError::Chain(format!("the event at position {position} has a body that is not JSON: {error}"))
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()
    })
    .await
    .map_err(|error| StoreError::Task(error.to_string()))??;
    let (mut seqs, mut positions, mut prevs, mut hashes) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (position, canonical) in &canonicals {
        let prev = hash;
        seq += 1;
        hash = link_hash(&prev, seq, canonical);
        seqs.push(seq);
        positions.push(*position);
        prevs.push(prev.to_vec());
        hashes.push(hash.to_vec());
    }
    // A full batch may have left committed positions below the high water: the head stops
    // at the last one numbered. Otherwise every position up to it is done (numbered here,
    // or a hole), and the next round starts above it.
    let sealed_upto = match positions.last() {
        Some(&last) if positions.len() as i64 == SEAL_BATCH => last,
        _ => final_upto,
    };
    if !seqs.is_empty() {
        tx.execute(
            "INSERT INTO event_seals (seq, position, chain_prev, chain_hash)
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[])",
            &[&seqs, &positions, &prevs, &hashes],
        )
        .await?;
    }
    tx.execute(
        "UPDATE chain_head SET seq = $1, hash = $2, position = $3 WHERE id = 1",
        &[&seq, &hash.as_slice(), &sealed_upto],
    )
    .await?;
    tx.commit().await?;
    Ok(Sealed::Events(seqs.len()))
}

/// Seals under `epoch` until `count` events were sealed, at most 30 rounds; how many were.
/// A round may seal nothing while some other transaction of the database is older than its
/// high water.
#[cfg(test)]
pub async fn seal_at_least(pool: &Pool, epoch: i64, count: usize) -> Result<usize, StoreError> {
    let mut sealed = 0;
    for _ in 0..30 {
        match seal_batch(pool, epoch).await? {
            Sealed::Events(events) => sealed += events,
            Sealed::LostLease => return Err(StoreError::Chain("the lease was lost".to_owned())),
        }
        if sealed >= count {
            break;
        }
    }
    Ok(sealed)
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
