//! Per-sender accounting in the database (tables `senders` and `sender_pending`, migration
//! 7): what each filter worker reported, how many of its events are stored, and its
//! [`Ledger`]. Runs on the writer's connection inside the writer's transaction, so the
//! events of a batch and the accounting of their numbers commit together, and a record of
//! loss is committed with the accounting that stops it being recorded twice.

use rusqlite::{params, Connection, OptionalExtension};

use super::StoreError;
use crate::completeness::ledger::{ranges_of, Ledger, PendingRange};
use crate::completeness::records::{sender_gap, sender_resumed, sender_stopped, StoppedSender};
use audit_event::{AuditEvent, SeqRange};

/// What one ingest batch says about its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderActivity {
    /// The sender id.
    pub id: String,
    /// Events captured so far, as reported.
    pub captured: u64,
    /// When the report was made, by the sender's clock (ms).
    pub reported_at_ms: i64,
    /// How often the sender promises to report (ms).
    pub heartbeat_ms: u64,
    /// For each row of the batch, in order: its number and event time (ms), if it has one.
    pub numbered: Vec<Option<(u64, i64)>>,
    /// Numbers the batch's gap records say the sender dropped, with their times.
    pub named_lost: Vec<PendingRange>,
}

/// When the collector records holes and silent senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderPolicy {
    /// A hole is recorded once the numbers after it have been stored this long (ms).
    pub hole_grace_ms: i64,
    /// A sender is recorded as stopped after this long without a batch or heartbeat (ms).
    pub silence_ms: i64,
    /// When this collector started (ms): silence is counted from here at the earliest,
    /// since senders could not report while it was down.
    pub started_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SenderState {
    last_heard_ms: i64,
    reported_at_ms: i64,
    captured: u64,
    heartbeat_ms: u64,
    delivered: u64,
    stopped_at_ms: Option<i64>,
    ledger: Ledger,
}

/// Accounts for a committed batch's numbers (`inserted[i]`: row `i` was newly stored) and
/// returns the records it calls for: a "resumed" record when the sender had been recorded
/// as stopped.
pub fn note_batch(
    conn: &Connection,
    activity: &SenderActivity,
    inserted: &[bool],
    now_ms: i64,
) -> Result<Vec<AuditEvent>, StoreError> {
    let mut records = Vec::new();
    let mut state = load(conn, &activity.id)?.unwrap_or(SenderState {
        last_heard_ms: now_ms,
        reported_at_ms: activity.reported_at_ms,
        captured: 0,
        heartbeat_ms: activity.heartbeat_ms,
        delivered: 0,
        stopped_at_ms: None,
        ledger: Ledger::default(),
    });
    let is_new = state.ledger == Ledger::default() && state.captured == 0 && state.delivered == 0;
    if let Some(stopped_at_ms) = state.stopped_at_ms.take() {
        records.push(sender_resumed(&activity.id, activity.captured, stopped_at_ms, now_ms));
    }
    state.last_heard_ms = now_ms;
    state.reported_at_ms = state.reported_at_ms.max(activity.reported_at_ms);
    state.captured = state.captured.max(activity.captured);
    state.heartbeat_ms = activity.heartbeat_ms;
    let numbered: Vec<(u64, i64)> = activity.numbered.iter().flatten().copied().collect();
    let newly_stored =
        activity.numbered.iter().zip(inserted).filter(|(numbered, stored)| numbered.is_some() && **stored);
    state.delivered += newly_stored.count() as u64;
    let mut incoming = ranges_of(&numbered, now_ms);
    incoming.extend(activity.named_lost.iter().map(|named| PendingRange { seen_at_ms: now_ms, ..*named }));
    state.ledger.account(&incoming);
    save(conn, &activity.id, &state, is_new)?;
    Ok(records)
}

/// Records overdue holes and senders that fell silent; returns the records to store.
pub fn check_senders(conn: &Connection, policy: SenderPolicy, now_ms: i64) -> Result<Vec<AuditEvent>, StoreError> {
    let silent_before = now_ms.saturating_sub(policy.silence_ms);
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT id FROM senders WHERE stopped_at_ms IS NULL
               AND (last_heard_ms <= ?1 OR EXISTS (SELECT 1 FROM sender_pending WHERE sender = senders.id))",
        )?
        .query_map([silent_before], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut records = Vec::new();
    for id in ids {
        let Some(mut state) = load(conn, &id)? else { continue };
        let before = state.clone();
        let heard_ms = state.last_heard_ms.max(policy.started_at_ms);
        if now_ms.saturating_sub(heard_ms) >= policy.silence_ms {
            records.extend(state.ledger.close_every_hole().iter().map(|hole| sender_gap(&id, hole, now_ms)));
            let lost = (state.captured > state.ledger.contiguous)
                .then(|| SeqRange { first: state.ledger.contiguous + 1, last: state.captured });
            let window_start_ms = state.reported_at_ms.max(state.last_heard_ms);
            let stopped = StoppedSender {
                id: id.clone(),
                captured: state.captured,
                delivered: state.delivered,
                lost,
                lost_after_ms: state.ledger.contiguous_at_ms,
                reported_at_ms: state.reported_at_ms,
                unknown_until_ms: window_start_ms.saturating_add(i64::try_from(state.heartbeat_ms).unwrap_or(i64::MAX)),
            };
            records.push(sender_stopped(&stopped, now_ms));
            state.ledger.close_through(state.captured, state.reported_at_ms);
            state.stopped_at_ms = Some(now_ms);
        } else {
            while let Some(hole) = state.ledger.overdue_hole(now_ms, policy.hole_grace_ms) {
                records.push(sender_gap(&id, &hole, now_ms));
                state.ledger.close_first_hole();
            }
        }
        if state != before {
            save(conn, &id, &state, false)?;
        }
    }
    Ok(records)
}

/// True when [`check_senders`] would record something at `now_ms` (a cheap read, so the
/// writer is asked only then).
pub fn anything_due(conn: &Connection, policy: SenderPolicy, now_ms: i64) -> Result<bool, StoreError> {
    let silent_before = if now_ms.saturating_sub(policy.started_at_ms) >= policy.silence_ms {
        now_ms - policy.silence_ms
    } else {
        i64::MIN
    };
    let due = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM senders WHERE stopped_at_ms IS NULL AND last_heard_ms <= ?1)
             OR EXISTS (SELECT 1 FROM sender_pending WHERE seen_at_ms <= ?2)",
        )?
        .query_row(params![silent_before, now_ms.saturating_sub(policy.hole_grace_ms)], |row| row.get(0))?;
    Ok(due)
}

fn load(conn: &Connection, id: &str) -> Result<Option<SenderState>, StoreError> {
    let state = conn
        .prepare_cached(
            "SELECT last_heard_ms, reported_at_ms, captured, heartbeat_ms, delivered, stopped_at_ms,
                    contiguous, contiguous_at_ms
             FROM senders WHERE id = ?1",
        )?
        .query_row([id], |row| {
            Ok(SenderState {
                last_heard_ms: row.get(0)?,
                reported_at_ms: row.get(1)?,
                captured: number(row, 2)?,
                heartbeat_ms: number(row, 3)?,
                delivered: number(row, 4)?,
                stopped_at_ms: row.get(5)?,
                ledger: Ledger { contiguous: number(row, 6)?, contiguous_at_ms: row.get(7)?, pending: Vec::new() },
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
    conn.prepare_cached(
        "INSERT INTO senders (id, first_heard_ms, last_heard_ms, reported_at_ms, captured, heartbeat_ms, delivered,
                              stopped_at_ms, contiguous, contiguous_at_ms)
         VALUES (?1, ?2, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (id) DO UPDATE SET last_heard_ms = ?2, reported_at_ms = ?3, captured = ?4, heartbeat_ms = ?5,
             delivered = ?6, stopped_at_ms = ?7, contiguous = ?8, contiguous_at_ms = ?9",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::open_for_writing;
    use crate::store::test_support::new_event;
    use crate::store::writer::{spawn, WriterHandle};
    use audit_event::DeliveryGap;

    const SENDER: &str = "AAAAAAAAAAAAAAAAAAAAAA";
    const NOW: i64 = 1_800_000_000_000;
    const POLICY: SenderPolicy = SenderPolicy { hole_grace_ms: 10_000, silence_ms: 30_000, started_at_ms: 0 };

    /// Events numbered `numbers` of the sender, reported with `captured`, at event time 1000 * n.
    async fn send(writer: &WriterHandle, numbers: std::ops::RangeInclusive<u64>, captured: u64) {
        let rows = numbers.clone().map(|n| new_event(usize::try_from(n).unwrap_or(0), 0)).collect();
        let activity = SenderActivity {
            id: SENDER.into(),
            captured,
            reported_at_ms: NOW,
            heartbeat_ms: 1000,
            numbered: numbers.map(|n| Some((n, i64::try_from(n).unwrap_or(0) * 1000))).collect(),
            named_lost: Vec::new(),
        };
        writer.try_ingest(rows, Some(activity)).expect("queued").committed().await.expect("committed");
    }

    fn records(path: &std::path::Path) -> Vec<AuditEvent> {
        let conn = Connection::open(path).expect("open");
        let mut select =
            conn.prepare("SELECT body FROM events WHERE type LIKE 'AuditSidecar::%' ORDER BY seq").expect("prepare");
        let bodies: Vec<String> =
            select.query_map([], |row| row.get(0)).expect("query").collect::<Result<_, _>>().expect("rows");
        bodies.iter().map(|body| serde_json::from_str(body).expect("a record is an event")).collect()
    }

    fn gap(event: &AuditEvent) -> &DeliveryGap {
        event.gap.as_ref().expect("a record has a gap")
    }

    #[tokio::test]
    async fn an_unfilled_hole_is_recorded_once_after_the_grace_and_a_filled_one_never() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.db");
        let (writer, thread) = spawn(open_for_writing(&path).expect("open"), 4).expect("spawn");
        send(&writer, 1..=10, 10).await;
        send(&writer, 21..=30, 30).await;
        let policy = SenderPolicy { hole_grace_ms: 0, silence_ms: i64::MAX, ..POLICY };
        assert_eq!(writer.check_senders(policy).await.expect("checked"), 1, "the hole 11-20");
        assert_eq!(writer.check_senders(policy).await.expect("checked"), 0, "recorded once");
        send(&writer, 31..=40, 40).await;
        send(&writer, 46..=50, 50).await;
        send(&writer, 41..=45, 50).await;
        assert_eq!(writer.check_senders(policy).await.expect("checked"), 0, "41-45 came late: no hole");
        thread.shutdown().await.expect("clean stop");
        let recorded = records(&path);
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].event_type, audit_event::sender::SENDER_GAP_TYPE);
        let hole = gap(&recorded[0]);
        assert_eq!((hole.lost_events, hole.sender.as_deref()), (10, Some(SENDER)));
        assert_eq!(hole.seqs, Some(vec![SeqRange { first: 11, last: 20 }]));
    }

    #[tokio::test]
    async fn a_silent_sender_is_recorded_stopped_with_what_it_never_delivered_then_resumed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("audit.db");
        let (writer, thread) = spawn(open_for_writing(&path).expect("open"), 4).expect("spawn");
        send(&writer, 1..=10, 10).await;
        send(&writer, 1..=10, 10).await; // a retry stores nothing and counts nothing twice
        send(&writer, 11..=12, 15).await; // 13-15 captured, still buffered
        assert_eq!(writer.check_senders(POLICY).await.expect("checked"), 0, "heard just now");
        let silent = SenderPolicy { silence_ms: -1, ..POLICY };
        assert_eq!(writer.check_senders(silent).await.expect("checked"), 1);
        assert_eq!(writer.check_senders(silent).await.expect("checked"), 0, "stopped once");
        send(&writer, 13..=15, 15).await;
        thread.shutdown().await.expect("clean stop");
        let recorded = records(&path);
        let types: Vec<&str> = recorded.iter().map(|event| event.event_type.as_str()).collect();
        assert_eq!(types, ["AuditSidecar::SenderStopped", "AuditSidecar::SenderResumed"]);
        let stopped = gap(&recorded[0]);
        assert_eq!((stopped.captured, stopped.delivered, stopped.lost_events), (Some(15), Some(12), 3));
        assert_eq!(stopped.seqs, Some(vec![SeqRange { first: 13, last: 15 }]));
        assert_eq!(stopped.first_lost_at, "1970-01-01T00:00:12.000+00:00", "after the last delivered event");
        assert!(stopped.unknown_until.is_some() && stopped.last_heard_at.is_some());
    }
}
