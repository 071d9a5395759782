//! Per-sender accounting in SQLite (tables `senders` and `sender_pending` of `schema.sql`):
//! the SQL that loads and saves a [`SenderState`]; what changes it is
//! `completeness::accounting`, shared with PostgreSQL. Runs on the writer's connection
//! inside the writer's transaction, so the events of a batch and the accounting of their
//! numbers commit together, and a record of loss is committed with the accounting that
//! stops it being recorded twice.

use rusqlite::{params, Connection, OptionalExtension};

use super::super::StoreError;
use crate::completeness::accounting::{self, forget_stopped_before, SenderActivity, SenderPolicy, SenderState};
use crate::completeness::ledger::{Claim, Ledger, PendingRange};
use audit_event::{AuditEvent, SeqRange};

/// Accounts for a committed batch's numbers (`inserted[i]`: row `i` was newly stored) and
/// returns the records it calls for.
pub fn note_batch(
    conn: &Connection,
    activity: &SenderActivity,
    inserted: &[bool],
    now_ms: i64,
) -> Result<Vec<AuditEvent>, StoreError> {
    let stored = load(conn, &activity.id)?;
    let is_new = stored.is_none();
    let (state, records) = accounting::note_batch(stored, activity, inserted, now_ms);
    save(conn, &activity.id, &state, is_new)?;
    Ok(records)
}

/// A batch of `sender` was refused at `refused_at_ms` (the write queue was full) before
/// anything of it was stored: the sender is alive and holds what it sent, to retry it. So
/// its silence and its holes are counted from then, and the check that follows records
/// neither what it retries as lost nor the sender as fallen silent because of the refusal.
/// A sender unknown or recorded as stopped is left as it is.
pub fn note_refused(conn: &Connection, sender: &str, refused_at_ms: i64) -> Result<(), StoreError> {
    let alive = conn
        .prepare_cached(
            "UPDATE senders SET last_heard_ms = max(last_heard_ms, ?2), claimed_seen_at_ms = max(claimed_seen_at_ms, ?2)
             WHERE id = ?1 AND stopped_at_ms IS NULL",
        )?
        .execute(rusqlite::params![sender, refused_at_ms])?;
    if alive > 0 {
        conn.prepare_cached("UPDATE sender_pending SET seen_at_ms = max(seen_at_ms, ?2) WHERE sender = ?1")?
            .execute(rusqlite::params![sender, refused_at_ms])?;
    }
    Ok(())
}

/// Records overdue holes and senders that fell silent, and forgets senders stopped longer
/// than the policy keeps them; returns the records to store.
pub fn check_senders(conn: &Connection, policy: SenderPolicy, now_ms: i64) -> Result<Vec<AuditEvent>, StoreError> {
    let silent_before = now_ms.saturating_sub(policy.silence_ms);
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM senders WHERE stopped_at_ms IS NULL
               AND (last_heard_ms <= ?1 OR claimed_upto > contiguous
                    OR EXISTS (SELECT 1 FROM sender_pending WHERE sender = senders.id))",
        )?
        .query_map([silent_before], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut records = Vec::new();
    for id in ids {
        let Some(mut state) = load(conn, &id)? else { continue };
        let before = state.clone();
        records.extend(accounting::check_sender(&id, &mut state, policy, now_ms));
        if state != before {
            save(conn, &id, &state, false)?;
        }
    }
    forget_stopped(conn, forget_stopped_before(policy, now_ms))?;
    Ok(records)
}

/// Deletes the senders recorded as stopped before `before_ms`. A stopped sender's holes
/// and lost tail are all in the trail already (the stop closes its ledger), so nothing is
/// unrecorded when its row goes; should it ever be heard again, it is a new sender.
fn forget_stopped(conn: &Connection, before_ms: i64) -> Result<usize, StoreError> {
    conn.prepare_cached(
        "DELETE FROM sender_pending WHERE sender IN (SELECT id FROM senders WHERE stopped_at_ms < ?1)",
    )?
    .execute([before_ms])?;
    Ok(conn.prepare_cached("DELETE FROM senders WHERE stopped_at_ms < ?1")?.execute([before_ms])?)
}

/// True when [`check_senders`] would record or forget something at `now_ms` (a cheap
/// read, so the writer is asked only then).
pub fn anything_due(conn: &Connection, policy: SenderPolicy, now_ms: i64) -> Result<bool, StoreError> {
    let silent_before = if now_ms.saturating_sub(policy.started_at_ms) >= policy.silence_ms {
        now_ms - policy.silence_ms
    } else {
        i64::MIN
    };
    let overdue = now_ms.saturating_sub(policy.hole_grace_ms);
    let due = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM senders WHERE stopped_at_ms IS NULL AND last_heard_ms <= ?1)
             OR EXISTS (SELECT 1 FROM sender_pending WHERE seen_at_ms <= ?2)
             OR EXISTS (SELECT 1 FROM senders WHERE stopped_at_ms IS NULL AND claimed_upto > contiguous
                                                AND claimed_seen_at_ms <= ?2)
             OR EXISTS (SELECT 1 FROM senders WHERE stopped_at_ms < ?3)",
        )?
        .query_row(params![silent_before, overdue, forget_stopped_before(policy, now_ms)], |row| row.get(0))?;
    Ok(due)
}

fn load(conn: &Connection, id: &str) -> Result<Option<SenderState>, StoreError> {
    let state = conn
        .prepare_cached(
            "SELECT last_heard_ms, reported_at_ms, captured, heartbeat_ms, delivered, stopped_at_ms,
                    contiguous, contiguous_at_ms, claimed_upto, claimed_at_ms, claimed_seen_at_ms, final_count
             FROM senders WHERE id = ?1",
        )?
        .query_row([id], |row| {
            let claimed_upto = number(row, 8)?;
            Ok(SenderState {
                last_heard_ms: row.get(0)?,
                reported_at_ms: row.get(1)?,
                captured: number(row, 2)?,
                heartbeat_ms: number(row, 3)?,
                delivered: number(row, 4)?,
                stopped_at_ms: row.get(5)?,
                final_count: row.get::<_, Option<i64>>(11)?.map(|count| u64::try_from(count).unwrap_or(0)),
                ledger: Ledger {
                    contiguous: number(row, 6)?,
                    contiguous_at_ms: row.get(7)?,
                    pending: Vec::new(),
                    claimed: (claimed_upto > 0).then_some(Claim {
                        upto: claimed_upto,
                        reported_at_ms: row.get(9)?,
                        seen_at_ms: row.get(10)?,
                    }),
                },
            })
        })
        .optional()?;
    let Some(mut state) = state else { return Ok(None) };
    state.ledger.pending = conn
        .prepare_cached(
            "SELECT first_seq, last_seq, first_at_ms, last_at_ms, seen_at_ms FROM sender_pending
             WHERE sender = ?1 ORDER BY first_seq",
        )?
        .query_map([id], |row| {
            Ok(PendingRange {
                range: SeqRange { first: number(row, 0)?, last: number(row, 1)? },
                first_at_ms: row.get(2)?,
                last_at_ms: row.get(3)?,
                seen_at_ms: row.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(Some(state))
}

/// Counts and numbers are u64 in the wire shape and INTEGER (i64) in SQLite; a value past
/// i64 would take 292 million years of events at 1000/ms.
fn number(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<u64> {
    Ok(u64::try_from(row.get::<_, i64>(index)?).unwrap_or(0))
}

fn sql_number(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn save(conn: &Connection, id: &str, state: &SenderState, is_new: bool) -> Result<(), StoreError> {
    let claim = state.ledger.claimed.unwrap_or(Claim { upto: 0, reported_at_ms: 0, seen_at_ms: 0 });
    conn.prepare_cached(
        "INSERT INTO senders (id, first_heard_ms, last_heard_ms, reported_at_ms, captured, heartbeat_ms, delivered,
                              stopped_at_ms, contiguous, contiguous_at_ms, claimed_upto, claimed_at_ms,
                              claimed_seen_at_ms, final_count)
         VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
         ON CONFLICT (id) DO UPDATE SET last_heard_ms = ?2, reported_at_ms = ?3, captured = ?4, heartbeat_ms = ?5,
             delivered = ?6, stopped_at_ms = ?7, contiguous = ?8, contiguous_at_ms = ?9, claimed_upto = ?10,
             claimed_at_ms = ?11, claimed_seen_at_ms = ?12, final_count = ?13",
    )?
    .execute(params![
        id,
        state.last_heard_ms,
        state.reported_at_ms,
        sql_number(state.captured),
        sql_number(state.heartbeat_ms),
        sql_number(state.delivered),
        state.stopped_at_ms,
        sql_number(state.ledger.contiguous),
        state.ledger.contiguous_at_ms,
        sql_number(claim.upto),
        claim.reported_at_ms,
        claim.seen_at_ms,
        state.final_count.map(sql_number),
    ])?;
    if !is_new {
        conn.prepare_cached("DELETE FROM sender_pending WHERE sender = ?1")?.execute([id])?;
    }
    let mut insert = conn.prepare_cached(
        "INSERT INTO sender_pending (sender, first_seq, last_seq, first_at_ms, last_at_ms, seen_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for pending in &state.ledger.pending {
        insert.execute(params![
            id,
            sql_number(pending.range.first),
            sql_number(pending.range.last),
            pending.first_at_ms,
            pending.last_at_ms,
            pending.seen_at_ms
        ])?;
    }
    Ok(())
}
