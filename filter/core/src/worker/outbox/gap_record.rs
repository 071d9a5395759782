//! The record of dropped events: the drops not yet reported form a [`GapWindow`]; when it
//! is sent it becomes a [`GapRecord`], a [`DELIVERY_GAP_TYPE`] event serialized once, so
//! every retry sends the same bytes (same uuid, same count) and the collector stores it once.

use audit_event::event_uuid::encode_event_uuid;
use audit_event::timestamp::format_rfc3339_millis;
use audit_event::{AuditEvent, DeliveryGap, RequestPayload, SeqRange, DELIVERY_GAP_TYPE};

/// Dropped events the trail does not know about yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GapWindow {
    pub lost_events: u64,
    /// When the first and the last of them were dropped (ms since the epoch).
    pub first_lost_ms: u64,
    pub last_lost_ms: u64,
}

/// A gap record as it goes on the wire, built once so every retry sends the same bytes.
#[derive(Debug)]
pub(super) struct GapRecord {
    pub(super) window: GapWindow,
    pub(super) json: Vec<u8>,
}

impl GapRecord {
    /// `numbered`: the sender id and the numbers of the dropped events, so the collector
    /// does not record them again as a hole.
    pub(super) fn build(
        window: GapWindow,
        numbered: Option<(&str, &[SeqRange])>,
        now_ms: u64,
        uuid: [u8; 16],
    ) -> Option<GapRecord> {
        let millis_as_nanos = |ms: u64| i64::try_from(ms).unwrap_or(i64::MAX / 1_000_000).saturating_mul(1_000_000);
        let event = AuditEvent {
            uuid: encode_event_uuid(uuid),
            timestamp: format_rfc3339_millis(millis_as_nanos(now_ms)),
            event_type: DELIVERY_GAP_TYPE.to_string(),
            db_user_id: None,
            user_email: None,
            payload: RequestPayload::default(),
            user_id: None,
            user_name: None,
            identity_source: None,
            token_fingerprint: None,
            response: None,
            gap: Some(DeliveryGap {
                sender: numbered.map(|(sender, _)| sender.to_owned()),
                seqs: numbered.map(|(_, seqs)| seqs.to_vec()).filter(|seqs| !seqs.is_empty()),
                ..DeliveryGap::counted(
                    window.lost_events,
                    format_rfc3339_millis(millis_as_nanos(window.first_lost_ms)),
                    format_rfc3339_millis(millis_as_nanos(window.last_lost_ms)),
                )
            }),
            sender: None,
            untrusted_identity: Vec::new(),
            truncated_fields: Vec::new(),
            alerts: Vec::new(),
        };
        let json = serde_json::to_vec(&event).ok()?;
        Some(GapRecord { window, json })
    }
}
