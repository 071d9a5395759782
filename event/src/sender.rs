//! Completeness the receiver can prove. Each filter worker VM is a *sender* with a random
//! id chosen when it starts; it numbers the events it captures 1, 2, 3, ... ([`SenderSeq`],
//! carried in each event) and reports in every ingest batch how many it has captured so far
//! ([`SenderReport`]; an empty batch is its heartbeat when it is idle). From these the
//! collector knows which numbers it never received and records that itself, as events of
//! the types below, each with a [`crate::DeliveryGap`] naming the sender, the numbers and
//! the times.

use serde::{Deserialize, Serialize};

use crate::event_uuid::is_event_uuid;
use crate::timestamp::parse_rfc3339_millis;

/// Recorded by the collector: numbers of a sender it never received and no gap record of
/// the sender names, once the sender's later numbers have been stored for the grace period.
pub const SENDER_GAP_TYPE: &str = "AuditSidecar::SenderGap";
/// Recorded by the collector: a sender fell silent (no batch or heartbeat for the silence
/// timeout): how many it had captured, how many were delivered, how many are lost, and the
/// window after its last heartbeat in which it may have captured an unknown number more.
pub const SENDER_STOPPED_TYPE: &str = "AuditSidecar::SenderStopped";
/// Recorded by the collector: a sender it had recorded as stopped was heard again, so
/// numbers that record counted as lost may still arrive (and are stored when they do).
pub const SENDER_RESUMED_TYPE: &str = "AuditSidecar::SenderResumed";
/// Recorded by the collector: a sender said it was shutting down ([`SenderReport::stopping`])
/// and its final count is accounted for: stored, or (`gap.lostEvents`) lost and named. No
/// unknown tail: the sender said how many it captured, and captures no more. Distinct from
/// [`SENDER_STOPPED_TYPE`], which is a sender that fell silent without saying so.
pub const SENDER_FINISHED_TYPE: &str = "AuditSidecar::SenderFinished";

/// The event types only the collector writes; ingest refuses them, so a client cannot put
/// a false statement about completeness into the trail.
pub const COLLECTOR_RECORD_TYPES: [&str; 4] =
    [SENDER_GAP_TYPE, SENDER_STOPPED_TYPE, SENDER_RESUMED_TYPE, SENDER_FINISHED_TYPE];

/// Which sender captured an event, and its number there (an audit-sidecar addition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderSeq {
    /// The sender: 22 characters of base64url (16 random bytes), chosen when the worker started.
    pub id: String,
    /// 1 for the sender's first captured event, then 2, 3, ... without holes.
    pub seq: u64,
}

/// What a sender says about itself in every ingest batch: its heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SenderReport {
    /// The sender id, as in [`SenderSeq::id`].
    pub id: String,
    /// Events captured so far: the highest number handed out.
    pub captured: u64,
    /// When `captured` was read, by the sender's clock (RFC 3339).
    pub at: String,
    /// The sender reports at least this often (milliseconds) while it runs, idle or not.
    pub heartbeat_ms: u64,
    /// True when the sender is shutting down: `captured` is its final count (it captures no
    /// more), so once those numbers are accounted for it is finished, with no unknown tail.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stopping: bool,
}

/// A first and last number, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeqRange {
    /// The first number of the range.
    pub first: u64,
    /// The last number of the range (at least `first`).
    pub last: u64,
}

impl SeqRange {
    /// How many numbers the range holds.
    pub fn len(&self) -> u64 {
        self.last.saturating_sub(self.first).saturating_add(1)
    }

    /// Never true for a valid range; present because `len` is.
    pub fn is_empty(&self) -> bool {
        self.last < self.first
    }
}

/// Why a sender part of a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {problem}")]
pub struct InvalidSender {
    /// The JSON path of the field, e.g. `sender.id`.
    pub field: &'static str,
    /// What is wrong, phrased to follow the field name.
    pub problem: &'static str,
}

/// True when `id` has the shape of a sender id.
pub fn is_sender_id(id: &str) -> bool {
    is_event_uuid(id)
}

impl SenderReport {
    /// The rules of the values; serde has checked the shape.
    pub fn validate(&self) -> Result<(), InvalidSender> {
        let invalid = |field, problem| Err(InvalidSender { field, problem });
        if !is_sender_id(&self.id) {
            return invalid("sender.id", "must be 22 characters of base64url (16 random bytes)");
        }
        if parse_rfc3339_millis(&self.at).is_none() {
            return invalid("sender.at", "must be an RFC 3339 date-time with an offset");
        }
        if self.heartbeat_ms == 0 {
            return invalid("sender.heartbeatMs", "must be greater than zero");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_is_camel_case_and_checked() {
        let report = SenderReport {
            id: "16WlpdLpDMzfMYxLTZYXYw".into(),
            captured: 12,
            at: "2026-11-30T02:00:00.000+00:00".into(),
            heartbeat_ms: 1000,
            stopping: false,
        };
        assert_eq!(report.validate(), Ok(()));
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(json["heartbeatMs"], 1000);
        assert!(json.get("stopping").is_none(), "only a stopping sender says so");
        let stopping = serde_json::to_value(SenderReport { stopping: true, ..report.clone() }).expect("serializes");
        assert_eq!(stopping["stopping"], true);
        let bad = SenderReport { id: "worker-1".into(), ..report.clone() };
        assert_eq!(bad.validate().map_err(|e| e.field), Err("sender.id"));
        let bad = SenderReport { heartbeat_ms: 0, ..report };
        assert_eq!(bad.validate().map_err(|e| e.field), Err("sender.heartbeatMs"));
    }

    #[test]
    fn a_range_counts_both_ends() {
        assert_eq!(SeqRange { first: 5, last: 5 }.len(), 1);
        assert_eq!(SeqRange { first: 5, last: 9 }.len(), 5);
    }
}
