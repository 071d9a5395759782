//! The collector's own records of what it did not receive, as events of the trail: a hole
//! in a sender's numbers ([`SENDER_GAP_TYPE`]), a sender that fell silent
//! ([`SENDER_STOPPED_TYPE`]), one heard again after that ([`SENDER_RESUMED_TYPE`]), and one
//! that said it was shutting down and whose final count is accounted for
//! ([`SENDER_FINISHED_TYPE`]).
//! Each carries a `gap` object (counts, numbers, times) so a SIEM maps them all one way.

use audit_event::event_uuid::encode_event_uuid;
use audit_event::sender::{SENDER_FINISHED_TYPE, SENDER_GAP_TYPE, SENDER_RESUMED_TYPE, SENDER_STOPPED_TYPE};
use audit_event::timestamp::format_rfc3339_millis;
use audit_event::{AuditEvent, DeliveryGap, RequestPayload, SeqRange};

use super::ledger::Hole;

/// What is known about a sender when it is recorded as stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoppedSender {
    /// The sender id.
    pub id: String,
    /// Events it said it had captured, in its last report.
    pub captured: u64,
    /// Its events stored in the trail.
    pub delivered: u64,
    /// The numbers after the last accounted one, up to `captured` (none when all arrived).
    pub lost: Option<SeqRange>,
    /// The time of the last accounted event (ms): the lost ones were captured after it.
    pub lost_after_ms: i64,
    /// Its last report, by its clock (ms).
    pub reported_at_ms: i64,
    /// The end of the window after that report in which it may have captured more (ms).
    pub unknown_until_ms: i64,
}

/// A hole in `sender`'s numbers that no gap record named.
pub fn sender_gap(sender: &str, hole: &Hole, now_ms: i64) -> AuditEvent {
    let mut gap = DeliveryGap::counted(hole.range.len(), rfc3339(hole.after_ms), rfc3339(hole.before_ms));
    gap.sender = Some(sender.to_owned());
    gap.seqs = Some(vec![hole.range]);
    record(SENDER_GAP_TYPE, gap, now_ms)
}

/// A sender that fell silent, with what it never delivered and its unknown tail.
pub fn sender_stopped(stopped: &StoppedSender, now_ms: i64) -> AuditEvent {
    let lost = stopped.lost.map_or(0, |range| range.len());
    let mut gap = DeliveryGap::counted(lost, rfc3339(stopped.lost_after_ms), rfc3339(stopped.reported_at_ms));
    gap.sender = Some(stopped.id.clone());
    gap.seqs = stopped.lost.map(|range| vec![range]);
    gap.captured = Some(stopped.captured);
    gap.delivered = Some(stopped.delivered);
    gap.last_heard_at = Some(rfc3339(stopped.reported_at_ms));
    gap.unknown_until = Some(rfc3339(stopped.unknown_until_ms));
    record(SENDER_STOPPED_TYPE, gap, now_ms)
}

/// A sender that said it was shutting down, with its final count accounted for: what it
/// lost (`stopped.lost`, none when it delivered everything), and no unknown tail.
pub fn sender_finished(stopped: &StoppedSender, now_ms: i64) -> AuditEvent {
    let lost = stopped.lost.map_or(0, |range| range.len());
    let mut gap = DeliveryGap::counted(lost, rfc3339(stopped.lost_after_ms), rfc3339(stopped.reported_at_ms));
    gap.sender = Some(stopped.id.clone());
    gap.seqs = stopped.lost.map(|range| vec![range]);
    gap.captured = Some(stopped.captured);
    gap.delivered = Some(stopped.delivered);
    gap.last_heard_at = Some(rfc3339(stopped.reported_at_ms));
    record(SENDER_FINISHED_TYPE, gap, now_ms)
}

/// A sender recorded as stopped at `stopped_at_ms` was heard again: numbers that record
/// counted as lost may still arrive.
pub fn sender_resumed(sender: &str, captured: u64, stopped_at_ms: i64, now_ms: i64) -> AuditEvent {
    let mut gap = DeliveryGap::counted(0, rfc3339(stopped_at_ms), rfc3339(now_ms));
    gap.sender = Some(sender.to_owned());
    gap.captured = Some(captured);
    record(SENDER_RESUMED_TYPE, gap, now_ms)
}

fn record(event_type: &str, gap: DeliveryGap, now_ms: i64) -> AuditEvent {
    AuditEvent {
        uuid: encode_event_uuid(random_id()),
        timestamp: rfc3339(now_ms),
        event_type: event_type.to_owned(),
        db_user_id: None,
        user_email: None,
        payload: RequestPayload::default(),
        user_id: None,
        user_name: None,
        identity_source: None,
        token_fingerprint: None,
        response: None,
        gap: Some(gap),
        sender: None,
        untrusted_identity: Vec::new(),
        truncated_fields: Vec::new(),
        alerts: Vec::new(),
    }
}

fn rfc3339(ms: i64) -> String {
    format_rfc3339_millis(ms.saturating_mul(1_000_000))
}

/// 16 random bytes; should the OS have none, the clock and a counter keep records distinct.
fn random_id() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (clock, sequence) = bytes.split_at_mut(8);
        clock.copy_from_slice(&crate::store::now_millis().to_le_bytes());
        sequence.copy_from_slice(&count.to_le_bytes());
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_record_says_captured_delivered_lost_and_the_unknown_window() {
        let stopped = StoppedSender {
            id: "AAAAAAAAAAAAAAAAAAAAAA".into(),
            captured: 120,
            delivered: 100,
            lost: Some(SeqRange { first: 101, last: 120 }),
            lost_after_ms: 1_000,
            reported_at_ms: 2_000,
            unknown_until_ms: 3_000,
        };
        let event = sender_stopped(&stopped, 9_000);
        assert_eq!(event.validate(), Ok(()));
        let json = serde_json::to_value(&event).expect("serializes");
        assert_eq!(json["type"], "AuditSidecar::SenderStopped");
        assert_eq!(json["gap"]["lostEvents"], 20);
        assert_eq!(json["gap"]["captured"], 120);
        assert_eq!(json["gap"]["delivered"], 100);
        assert_eq!(json["gap"]["seqs"][0]["first"], 101);
        assert_eq!(json["gap"]["lastHeardAt"], "1970-01-01T00:00:02.000+00:00");
        assert_eq!(json["gap"]["unknownUntil"], "1970-01-01T00:00:03.000+00:00");
    }

    #[test]
    fn a_gap_record_names_the_hole() {
        let hole = Hole { range: SeqRange { first: 11, last: 20 }, after_ms: 5, before_ms: 6 };
        let event = sender_gap("AAAAAAAAAAAAAAAAAAAAAA", &hole, 7);
        assert_eq!(event.validate(), Ok(()));
        let gap = event.gap.expect("has a gap");
        assert_eq!((gap.lost_events, gap.seqs), (10, Some(vec![hole.range])));
    }
}
