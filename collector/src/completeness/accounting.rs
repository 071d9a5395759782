//! One sender's accounting as the stores keep it ([`SenderState`]), and the two moments it
//! changes, written once for every store: a batch or heartbeat arrives ([`note_batch`]),
//! and the periodic check ([`check_sender`]) finds an overdue hole or a silent sender.
//! Both are pure: the store loads the state in its write transaction (locking it where
//! several writers exist), calls them, and saves the state with the records they return
//! in that same transaction, so a record and the accounting that stops it being written
//! again commit together. Only the SQL is per store (`store::sqlite::senders` for SQLite,
//! `store::postgres::senders` for PostgreSQL).

use audit_event::{AuditEvent, SeqRange};

use super::ledger::{ranges_of, Claim, Ledger, PendingRange};
use super::records::{sender_finished, sender_gap, sender_resumed, sender_stopped, StoppedSender};

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
    /// The sender is shutting down: `captured` is its final count.
    pub stopping: bool,
}

impl SenderActivity {
    /// A batch without events: the sender had nothing on the wire and no retry waiting
    /// when it sent it, so everything it counts is due soon.
    pub fn is_heartbeat(&self) -> bool {
        self.numbered.is_empty() && self.named_lost.is_empty()
    }
}

/// When the collector records holes and silent senders, and forgets stopped ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderPolicy {
    /// A hole is recorded once the numbers after it (or the heartbeat that counted it)
    /// have been stored this long (ms).
    pub hole_grace_ms: i64,
    /// A sender is recorded as stopped after this long without a batch or heartbeat (ms).
    pub silence_ms: i64,
    /// When this collector started (ms): silence is counted from here at the earliest,
    /// since senders could not report while it was down.
    pub started_at_ms: i64,
    /// A sender recorded as stopped this long ago is forgotten (ms): everything it did not
    /// deliver is recorded by then, so only its row goes. The trail's retention.
    pub forget_stopped_ms: i64,
}

/// What the store keeps about one sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderState {
    /// When the collector last stored a batch or heartbeat of it (its clock, ms).
    pub last_heard_ms: i64,
    /// The newest report's time, by the sender's clock (ms).
    pub reported_at_ms: i64,
    /// The highest count it reported.
    pub captured: u64,
    /// How often it promises to report (ms).
    pub heartbeat_ms: u64,
    /// Its events stored in the trail.
    pub delivered: u64,
    /// When it was recorded as stopped (or finished), while it stays silent.
    pub stopped_at_ms: Option<i64>,
    /// The final count it reported when shutting down, if it did: once every number up to
    /// it is accounted for, it is recorded as finished.
    pub final_count: Option<u64>,
    /// Which of its numbers are accounted for.
    pub ledger: Ledger,
}

impl SenderState {
    /// A sender heard for the first time.
    fn first_heard(activity: &SenderActivity, now_ms: i64) -> SenderState {
        SenderState {
            last_heard_ms: now_ms,
            reported_at_ms: activity.reported_at_ms,
            captured: 0,
            heartbeat_ms: activity.heartbeat_ms,
            delivered: 0,
            stopped_at_ms: None,
            final_count: None,
            ledger: Ledger::default(),
        }
    }
}

/// `stored` with a committed batch's numbers accounted for (`inserted[i]`: row `i` was
/// newly stored), and the records it calls for: a "resumed" record when the sender had
/// been recorded as stopped, a "finished" one when a sender shutting down has every number
/// of its final count accounted for. `stored` is `None` for a sender heard for the first time.
pub fn note_batch(
    stored: Option<SenderState>,
    activity: &SenderActivity,
    inserted: &[bool],
    now_ms: i64,
) -> (SenderState, Vec<AuditEvent>) {
    let mut records = Vec::new();
    let mut state = stored.unwrap_or_else(|| SenderState::first_heard(activity, now_ms));
    // A finished sender's calls arriving late are not news when they store nothing and
    // count no further than its final count: other copies of its final calls, and the calls
    // that were on the wire when it stopped (its shutdown resends their batch with the final
    // report, and the original, with the report it had, may be committed after the copy).
    // Taken as news, each would record it as resumed and finished once more.
    let finished = state.final_count.is_some() && state.stopped_at_ms.is_some();
    let counts_nothing_new = state.final_count.is_some_and(|count| activity.captured <= count);
    if finished && counts_nothing_new && !inserted.contains(&true) {
        return (state, records);
    }
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
    if activity.is_heartbeat() {
        state.ledger.claim(Claim {
            upto: activity.captured,
            reported_at_ms: activity.reported_at_ms,
            seen_at_ms: now_ms,
        });
    }
    if activity.stopping {
        state.final_count = Some(state.final_count.unwrap_or(0).max(activity.captured));
    }
    if state.final_count.is_some_and(|count| state.ledger.contiguous >= count) {
        records.push(finish(&activity.id, &mut state, now_ms));
    }
    (state, records)
}

/// Records a sender that said it was shutting down as finished: what its final count lost
/// (nothing when every number arrived) is named, and nothing is unknown.
fn finish(id: &str, state: &mut SenderState, now_ms: i64) -> AuditEvent {
    let captured = state.final_count.unwrap_or(state.captured).max(state.captured);
    let lost =
        (captured > state.ledger.contiguous).then(|| SeqRange { first: state.ledger.contiguous + 1, last: captured });
    let stopped = StoppedSender {
        id: id.to_owned(),
        captured,
        delivered: state.delivered,
        lost,
        lost_after_ms: state.ledger.contiguous_at_ms,
        reported_at_ms: state.reported_at_ms,
        unknown_until_ms: state.reported_at_ms,
    };
    state.ledger.close_through(captured, state.reported_at_ms);
    state.stopped_at_ms = Some(now_ms);
    sender_finished(&stopped, now_ms)
}

/// What the periodic check does to one sender: a sender silent for the policy's timeout
/// is recorded as stopped (its holes as gaps first), or as finished, with what its final
/// count lost, when it said it was shutting down; a live one gets a gap record for
/// each hole overdue. Returns the records; `state` is then what to save.
pub fn check_sender(id: &str, state: &mut SenderState, policy: SenderPolicy, now_ms: i64) -> Vec<AuditEvent> {
    let mut records = Vec::new();
    if state.stopped_at_ms.is_some() {
        return records;
    }
    let heard_ms = state.last_heard_ms.max(policy.started_at_ms);
    if now_ms.saturating_sub(heard_ms) >= policy.silence_ms {
        records.extend(state.ledger.close_every_hole().iter().map(|hole| sender_gap(id, hole, now_ms)));
        if state.final_count.is_some() {
            records.push(finish(id, state, now_ms));
            return records;
        }
        let lost = (state.captured > state.ledger.contiguous)
            .then(|| SeqRange { first: state.ledger.contiguous + 1, last: state.captured });
        let window_start_ms = state.reported_at_ms.max(state.last_heard_ms);
        let stopped = StoppedSender {
            id: id.to_owned(),
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
            records.push(sender_gap(id, &hole, now_ms));
            state.ledger.close_hole(&hole);
        }
    }
    records
}

/// The stopped senders recorded before this time (ms) are forgotten at `now_ms`.
pub fn forget_stopped_before(policy: SenderPolicy, now_ms: i64) -> i64 {
    now_ms.saturating_sub(policy.forget_stopped_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit_event::sender::{SENDER_FINISHED_TYPE, SENDER_GAP_TYPE, SENDER_RESUMED_TYPE, SENDER_STOPPED_TYPE};

    const POLICY: SenderPolicy =
        SenderPolicy { hole_grace_ms: 1000, silence_ms: 5000, started_at_ms: 0, forget_stopped_ms: i64::MAX };

    fn batch(numbers: impl IntoIterator<Item = u64>, captured: u64) -> SenderActivity {
        SenderActivity {
            id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
            captured,
            reported_at_ms: 100,
            heartbeat_ms: 300,
            numbered: numbers.into_iter().map(|n| Some((n, 10))).collect(),
            named_lost: Vec::new(),
            stopping: false,
        }
    }

    fn stopping(numbers: impl IntoIterator<Item = u64>, captured: u64) -> SenderActivity {
        SenderActivity { stopping: true, ..batch(numbers, captured) }
    }

    fn heartbeat(captured: u64) -> SenderActivity {
        batch([], captured)
    }

    fn types(records: &[AuditEvent]) -> Vec<&str> {
        records.iter().map(|record| record.event_type.as_str()).collect()
    }

    #[test]
    fn a_heartbeat_counting_numbers_that_never_come_is_a_gap_after_the_grace_while_the_sender_lives() {
        let (state, _) = note_batch(None, &batch(1..=10, 12), &[true; 10], 0);
        let (mut state, _) = note_batch(Some(state), &heartbeat(12), &[], 500);
        assert!(check_sender("s", &mut state, POLICY, 1499).is_empty(), "within the grace");
        let (state, _) = note_batch(Some(state), &heartbeat(12), &[], 1400);
        let mut state = state;
        let records = check_sender("s", &mut state, POLICY, 1500);
        assert_eq!(types(&records), [SENDER_GAP_TYPE]);
        assert_eq!(
            records[0].gap.as_ref().and_then(|gap| gap.seqs.clone()),
            Some(vec![SeqRange { first: 11, last: 12 }])
        );
        assert!(check_sender("s", &mut state, POLICY, 9000).iter().all(|r| r.event_type == SENDER_STOPPED_TYPE));
        assert_eq!(state.stopped_at_ms, Some(9000));
    }

    #[test]
    fn a_batch_report_is_no_claim_since_the_rest_may_still_be_queued() {
        let (mut state, _) = note_batch(None, &batch(1..=10, 500), &[true; 10], 0);
        assert!(check_sender("s", &mut state, POLICY, 4000).is_empty());
    }

    #[test]
    fn a_stopped_sender_heard_again_is_resumed_once() {
        let (mut state, _) = note_batch(None, &batch(1..=3, 3), &[true; 3], 0);
        assert_eq!(types(&check_sender("s", &mut state, POLICY, 6000)), [SENDER_STOPPED_TYPE]);
        assert!(check_sender("s", &mut state, POLICY, 12000).is_empty(), "stopped once");
        let (state, records) = note_batch(Some(state), &heartbeat(3), &[], 13000);
        assert_eq!(types(&records), [SENDER_RESUMED_TYPE]);
        assert_eq!(state.stopped_at_ms, None);
    }

    #[test]
    fn a_sender_whose_final_count_all_arrived_is_finished_at_once_with_nothing_unknown() {
        let (state, _) = note_batch(None, &batch(1..=3, 3), &[true; 3], 0);
        let (mut state, records) = note_batch(Some(state), &stopping(4..=5, 5), &[true; 2], 400);
        assert_eq!(types(&records), [SENDER_FINISHED_TYPE]);
        let gap = records[0].gap.as_ref().expect("a gap object");
        assert_eq!((gap.lost_events, gap.captured, gap.delivered), (0, Some(5), Some(5)));
        assert_eq!((gap.unknown_until.as_deref(), gap.seqs.as_ref()), (None, None), "nothing unknown, nothing lost");
        assert!(check_sender("s", &mut state, POLICY, 60_000).is_empty(), "never recorded as fallen silent");
        let (mut state, late) = note_batch(Some(state), &stopping(4..=5, 5), &[false; 2], 500);
        assert!(late.is_empty(), "another copy of the final call is no news: {:?}", types(&late));
        assert!(check_sender("s", &mut state, POLICY, 60_000).is_empty());
    }

    #[test]
    fn a_finished_senders_older_calls_committed_after_its_final_one_are_no_news() {
        // on_done sends a copy of the batch on the wire with the final report; the original
        // (and a heartbeat sent before it) carries the report it had and may come later.
        let (state, _) = note_batch(None, &batch(1..=3, 3), &[true; 3], 0);
        let (state, records) = note_batch(Some(state), &stopping(4..=5, 5), &[true; 2], 400);
        assert_eq!(types(&records), [SENDER_FINISHED_TYPE]);
        let (state, late) = note_batch(Some(state), &batch(4..=5, 5), &[false; 2], 500);
        assert!(late.is_empty(), "the original of the copy is no news: {:?}", types(&late));
        let (mut state, late) = note_batch(Some(state), &heartbeat(4), &[], 600);
        assert!(late.is_empty(), "an older heartbeat is no news: {:?}", types(&late));
        assert!(check_sender("s", &mut state, POLICY, 60_000).is_empty());
    }

    #[test]
    fn a_sender_that_said_it_was_stopping_but_whose_last_numbers_never_came_is_finished_with_them_lost() {
        let (state, _) = note_batch(None, &batch(1..=3, 3), &[true; 3], 0);
        let (mut state, records) = note_batch(Some(state), &stopping(4..=5, 8), &[true; 2], 400);
        assert!(records.is_empty(), "6 to 8 may still be on their way, in another of its final calls");
        assert!(check_sender("s", &mut state, POLICY, 5399).is_empty(), "not silent yet");
        let records = check_sender("s", &mut state, POLICY, 5400);
        assert_eq!(types(&records), [SENDER_FINISHED_TYPE]);
        let gap = records[0].gap.as_ref().expect("a gap object");
        assert_eq!((gap.lost_events, gap.seqs.clone()), (3, Some(vec![SeqRange { first: 6, last: 8 }])));
        assert_eq!(gap.unknown_until, None, "its count was final: nothing unknown");
    }

    #[test]
    fn a_sender_recorded_as_stopped_and_then_heard_stopping_is_resumed_then_finished() {
        let (mut state, _) = note_batch(None, &batch(1..=3, 3), &[true; 3], 0);
        assert_eq!(types(&check_sender("s", &mut state, POLICY, 6000)), [SENDER_STOPPED_TYPE]);
        let (_, records) = note_batch(Some(state), &stopping([], 3), &[], 7000);
        assert_eq!(types(&records), [SENDER_RESUMED_TYPE, SENDER_FINISHED_TYPE]);
    }
}
