//! Per-sender accounting on PostgreSQL (tables `senders` and `sender_pending`,
//! `schema_v2.sql`): the SQL that loads and saves a [`SenderState`]; what changes it is
//! `completeness::accounting`, the code SQLite runs too.
//!
//! With several replicas, a sender's batches may reach any of them (a retry often reaches
//! another), and the check runs beside them. Each transaction that touches a sender first
//! takes the sender's transaction-scoped advisory lock ([`lock`]) and only then reads its
//! state, so they account one after the other, each from the state the one before
//! committed: a record and the state change that stops it being written again commit
//! together, and the next transaction sees both. That alone makes every record be written
//! once. The check also runs on one replica only, the sealer's lease holder, fenced by the
//! lease's epoch ([`check_senders`]), so the replicas do not all do the same work.

use audit_event::{AuditEvent, SeqRange};
use deadpool_postgres::{GenericClient, Pool, Transaction};

use super::super::{now_millis, StoreError};
use super::unsequenced::insert_records;
use crate::completeness::accounting::{self, forget_stopped_before, SenderActivity, SenderPolicy, SenderState};
use crate::completeness::ledger::{Claim, Ledger, PendingRange};

/// The first key of the advisory locks of senders ("sndr"); the second is the hash of the
/// sender id. Two-key locks never meet the one-key locks of `schema`.
const SENDER_LOCK_SPACE: i32 = 0x736e_6472;

/// Takes `sender`'s advisory lock until the transaction ends.
pub async fn lock(tx: &Transaction<'_>, sender: &str) -> Result<(), StoreError> {
    let statement = tx.prepare_cached("SELECT pg_advisory_xact_lock($1, hashtext($2))").await?;
    tx.execute(&statement, &[&SENDER_LOCK_SPACE, &sender]).await?;
    Ok(())
}

/// Accounts for a batch's numbers under the sender's lock (taken by the caller) and
/// returns the records it calls for.
pub async fn note_batch(
    tx: &Transaction<'_>,
    activity: &SenderActivity,
    inserted: &[bool],
    now_ms: i64,
) -> Result<Vec<AuditEvent>, StoreError> {
    let stored = load(tx, &activity.id).await?;
    let is_new = stored.is_none();
    let (state, records) = accounting::note_batch(stored, activity, inserted, now_ms);
    save(tx, &activity.id, &state, is_new).await?;
    Ok(records)
}

/// A batch of `sender` was refused before anything of it was stored (sealing is behind,
/// `super::backlog`): the sender is alive and holds what it sent, to retry it. So its
/// silence and its holes are counted from now: while the collector itself refuses a
/// sender, it records neither what the sender retries as lost (from an earlier heartbeat's
/// count, or below numbers that arrived) nor the sender as fallen silent. Nothing else of
/// the batch changes the accounting, and a sender unknown or recorded as stopped is left
/// as it is (its next accepted call accounts for it as usual).
pub async fn note_refused(pool: &Pool, sender: &str, now_ms: i64) -> Result<(), StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    lock(&tx, sender).await?;
    let alive = tx
        .execute(
            "UPDATE senders SET last_heard_ms = greatest(last_heard_ms, $2), claimed_seen_at_ms = $2
             WHERE id = $1 AND stopped_at_ms IS NULL",
            &[&sender, &now_ms],
        )
        .await?;
    if alive > 0 {
        tx.execute("UPDATE sender_pending SET seen_at_ms = $2 WHERE sender = $1", &[&sender, &now_ms]).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Records overdue holes and silent senders, and forgets senders stopped longer than the
/// policy keeps them, when this replica seals under lease `epoch`; returns how many
/// records. One transaction: it holds the lease row (shared), so the lease cannot pass to
/// another replica while it runs, and a replica whose lease has passed records nothing.
pub async fn check_senders(pool: &Pool, epoch: i64, policy: SenderPolicy) -> Result<usize, StoreError> {
    let now_ms = now_millis();
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let holds_lease = tx
        .query_opt("SELECT 1 FROM sealer_lease WHERE id = 1 AND epoch = $1 AND expires_at > now() FOR SHARE", &[&epoch])
        .await?
        .is_some();
    if !holds_lease {
        return Ok(0);
    }
    let silent_before = now_ms.saturating_sub(policy.silence_ms);
    let ids: Vec<String> = tx
        .query(
            "SELECT id FROM senders WHERE stopped_at_ms IS NULL
               AND (last_heard_ms <= $1 OR claimed_upto > contiguous
                    OR EXISTS (SELECT 1 FROM sender_pending WHERE sender = senders.id))
             ORDER BY id",
            &[&silent_before],
        )
        .await?
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?;
    let mut recorded = 0;
    for id in ids {
        lock(&tx, &id).await?;
        // Read under the lock: a batch may have changed the sender since the list above.
        let Some(mut state) = load(&tx, &id).await? else { continue };
        let before = state.clone();
        let records = accounting::check_sender(&id, &mut state, policy, now_ms);
        if state != before {
            save(&tx, &id, &state, false).await?;
        }
        insert_records(&tx, &records, now_ms).await?;
        recorded += records.len();
    }
    forget_stopped(&tx, forget_stopped_before(policy, now_ms)).await?;
    tx.commit().await?;
    Ok(recorded)
}

/// Deletes the senders recorded as stopped before `before_ms`: their holes and lost tails
/// are all in the trail (the stop closes the ledger), so only the rows go. One heard
/// again afterwards is a new sender.
async fn forget_stopped(tx: &Transaction<'_>, before_ms: i64) -> Result<u64, StoreError> {
    tx.execute(
        "DELETE FROM sender_pending WHERE sender IN (SELECT id FROM senders WHERE stopped_at_ms < $1)",
        &[&before_ms],
    )
    .await?;
    Ok(tx.execute("DELETE FROM senders WHERE stopped_at_ms < $1", &[&before_ms]).await?)
}

async fn load(client: &impl GenericClient, id: &str) -> Result<Option<SenderState>, StoreError> {
    let select = client
        .prepare_cached(
            "SELECT last_heard_ms, reported_at_ms, captured, heartbeat_ms, delivered, stopped_at_ms,
                    contiguous, contiguous_at_ms, claimed_upto, claimed_at_ms, claimed_seen_at_ms, final_count
             FROM senders WHERE id = $1",
        )
        .await?;
    let Some(row) = client.query_opt(&select, &[&id]).await? else { return Ok(None) };
    let claimed_upto = number(row.try_get(8)?);
    let mut state = SenderState {
        last_heard_ms: row.try_get(0)?,
        reported_at_ms: row.try_get(1)?,
        captured: number(row.try_get(2)?),
        heartbeat_ms: number(row.try_get(3)?),
        delivered: number(row.try_get(4)?),
        stopped_at_ms: row.try_get(5)?,
        final_count: row.try_get::<_, Option<i64>>(11)?.map(number),
        ledger: Ledger {
            contiguous: number(row.try_get(6)?),
            contiguous_at_ms: row.try_get(7)?,
            pending: Vec::new(),
            claimed: match claimed_upto {
                0 => None,
                upto => Some(Claim { upto, reported_at_ms: row.try_get(9)?, seen_at_ms: row.try_get(10)? }),
            },
        },
    };
    let pending = client
        .prepare_cached(
            "SELECT first_seq, last_seq, first_at_ms, last_at_ms, seen_at_ms FROM sender_pending
             WHERE sender = $1 ORDER BY first_seq",
        )
        .await?;
    state.ledger.pending = client
        .query(&pending, &[&id])
        .await?
        .iter()
        .map(|row| {
            Ok(PendingRange {
                range: SeqRange { first: number(row.try_get(0)?), last: number(row.try_get(1)?) },
                first_at_ms: row.try_get(2)?,
                last_at_ms: row.try_get(3)?,
                seen_at_ms: row.try_get(4)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Some(state))
}

/// Counts and numbers are u64 in the wire shape and BIGINT here; a value past i64 would
/// take 292 million years of events at 1000/ms.
fn number(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn sql_number(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

async fn save(client: &impl GenericClient, id: &str, state: &SenderState, is_new: bool) -> Result<(), StoreError> {
    let claim = state.ledger.claimed.unwrap_or(Claim { upto: 0, reported_at_ms: 0, seen_at_ms: 0 });
    let upsert = client
        .prepare_cached(
            "INSERT INTO senders (id, first_heard_ms, last_heard_ms, reported_at_ms, captured, heartbeat_ms, delivered,
                                  stopped_at_ms, contiguous, contiguous_at_ms, claimed_upto, claimed_at_ms,
                                  claimed_seen_at_ms, final_count)
             VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (id) DO UPDATE SET last_heard_ms = $2, reported_at_ms = $3, captured = $4, heartbeat_ms = $5,
                 delivered = $6, stopped_at_ms = $7, contiguous = $8, contiguous_at_ms = $9, claimed_upto = $10,
                 claimed_at_ms = $11, claimed_seen_at_ms = $12, final_count = $13",
        )
        .await?;
    client
        .execute(
            &upsert,
            &[
                &id,
                &state.last_heard_ms,
                &state.reported_at_ms,
                &sql_number(state.captured),
                &sql_number(state.heartbeat_ms),
                &sql_number(state.delivered),
                &state.stopped_at_ms,
                &sql_number(state.ledger.contiguous),
                &state.ledger.contiguous_at_ms,
                &sql_number(claim.upto),
                &claim.reported_at_ms,
                &claim.seen_at_ms,
                &state.final_count.map(sql_number),
            ],
        )
        .await?;
    if !is_new {
        let clear = client.prepare_cached("DELETE FROM sender_pending WHERE sender = $1").await?;
        client.execute(&clear, &[&id]).await?;
    }
    if state.ledger.pending.is_empty() {
        return Ok(());
    }
    let pending = &state.ledger.pending;
    let firsts: Vec<i64> = pending.iter().map(|p| sql_number(p.range.first)).collect();
    let lasts: Vec<i64> = pending.iter().map(|p| sql_number(p.range.last)).collect();
    let first_ats: Vec<i64> = pending.iter().map(|p| p.first_at_ms).collect();
    let last_ats: Vec<i64> = pending.iter().map(|p| p.last_at_ms).collect();
    let seen_ats: Vec<i64> = pending.iter().map(|p| p.seen_at_ms).collect();
    let insert = client
        .prepare_cached(
            "INSERT INTO sender_pending (sender, first_seq, last_seq, first_at_ms, last_at_ms, seen_at_ms)
             SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])",
        )
        .await?;
    client.execute(&insert, &[&id, &firsts, &lasts, &first_ats, &last_ats, &seen_ats]).await?;
    Ok(())
}
