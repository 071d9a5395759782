//! [`AuditEvent`]: one request as the audit trail records it. The filter builds it, the
//! ingest batch carries it, the collector stores it as received and `GET /audit` returns it.
//!
//! PactFlow's fields come first and keep their names and types (`db_user_id` is an integer
//! or null). Everything after them is an audit-sidecar addition: new keys, never renames.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event_uuid::is_event_uuid;
use crate::sender::{is_sender_id, SenderSeq, SeqRange, COLLECTOR_RECORD_TYPES};
use crate::timestamp::parse_rfc3339_millis;
use crate::trust::{TruncatedField, UntrustedClaim};

/// Upper bound on one serialized event; anything larger is refused on ingest.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// One audited request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// 22-character base64url identity; the idempotency key of ingest.
    pub uuid: String,
    /// When the request reached Envoy: RFC 3339, milliseconds, with an offset.
    pub timestamp: String,
    /// The resource that handled the request, e.g. `PactBroker::Api::Resources::Pact`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The user's numeric id, when the identity source gives one (PactFlow: an integer).
    pub db_user_id: Option<i64>,
    /// The user's email, when the identity source gives one.
    pub user_email: Option<String>,
    /// The request, with secrets redacted.
    pub payload: RequestPayload,

    // ---- audit-sidecar additions ----
    /// The user id as the identity source gave it, numeric or not.
    #[serde(default)]
    pub user_id: Option<String>,
    /// A user name: the basic-auth user name, or a verified token's subject.
    #[serde(default)]
    pub user_name: Option<String>,
    /// Where the identity came from, e.g. `header:x-forwarded-email`, `basic-auth`, `jwt`.
    #[serde(default)]
    pub identity_source: Option<String>,
    /// A keyed hash of the bearer token that was presented (never the token itself).
    #[serde(default)]
    pub token_fingerprint: Option<String>,
    /// How the request ended, when it ended with a response.
    #[serde(default)]
    pub response: Option<ResponseSummary>,
    /// On a [`DELIVERY_GAP_TYPE`] event, the events a filter worker had to drop; on the
    /// collector's records ([`COLLECTOR_RECORD_TYPES`]), what it did not receive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<DeliveryGap>,
    /// The filter worker that captured the event and its number there, so the collector
    /// can tell which numbers never arrived (absent on records, and from older filters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<SenderSeq>,
    /// Identity headers from a peer not trusted to set them (see [`crate::trust`]); never
    /// the identity. Omitted when there were none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untrusted_identity: Vec<UntrustedClaim>,
    /// The fields cut to their bound, with their sizes before. Omitted when none was cut.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub truncated_fields: Vec<TruncatedField>,
    /// Markers a SOC can alert on, e.g. [`crate::trust::ALERT_UNTRUSTED_IDENTITY`].
    /// Omitted when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerts: Vec<String>,
}

/// The `type` of the event a filter worker sends when it had to drop events (its buffer
/// overflowed while the collector could not be reached): the trail says what it lacks.
pub const DELIVERY_GAP_TYPE: &str = "AuditSidecar::DeliveryGap";

/// The request part of an event. The first six fields are PactFlow's.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestPayload {
    /// The path, without the query string.
    pub path: String,
    /// The query string without the `?`, sensitive values masked; `""` when there is none.
    pub query_string: String,
    /// The HTTP method.
    pub method: String,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The `Referer` header.
    pub referer: Option<String>,
    /// `resource_name` plus the percent-decoded path parameters of the matched route.
    pub params: BTreeMap<String, String>,

    // ---- audit-sidecar additions ----
    /// The client's address: forwarded-header aware, falling back to the peer address.
    #[serde(default)]
    pub client_ip: Option<String>,
    /// Envoy's request id (`x-request-id`).
    #[serde(default)]
    pub request_id: Option<String>,
    /// The `Host` (`:authority`) the request was sent to.
    #[serde(default)]
    pub host: Option<String>,
}

/// How the request was answered (an audit-sidecar addition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseSummary {
    /// The HTTP status sent to the client (0 when the stream ended without one).
    pub status: u16,
    /// From the first request byte to the end of the stream, in milliseconds.
    pub duration_ms: f64,
    /// The status in words, so a SOC can alert on `unauthenticated` and `forbidden`.
    pub outcome: Outcome,
}

impl ResponseSummary {
    /// A summary whose outcome follows from the status.
    pub fn new(status: u16, duration_ms: f64) -> Self {
        Self { status, duration_ms, outcome: Outcome::from_status(status) }
    }
}

/// What a response status means for an auditor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// 1xx, 2xx and 3xx.
    Success,
    /// 401: the credentials were missing or wrong (a failed login).
    Unauthenticated,
    /// 403: the caller is known but not allowed.
    Forbidden,
    /// Any other 4xx.
    ClientError,
    /// 5xx.
    ServerError,
    /// The stream ended without a response (status 0), e.g. the client went away.
    NoResponse,
}

impl Outcome {
    /// The outcome of an HTTP status.
    pub fn from_status(status: u16) -> Self {
        match status {
            0 => Self::NoResponse,
            401 => Self::Unauthenticated,
            403 => Self::Forbidden,
            400..=499 => Self::ClientError,
            500.. => Self::ServerError,
            _ => Self::Success,
        }
    }
}

/// Events missing from the trail (an audit-sidecar addition). Carried by a
/// [`DELIVERY_GAP_TYPE`] event (a filter worker dropped them: its buffer overflowed or the
/// collector refused them) and by the collector's own records ([`COLLECTOR_RECORD_TYPES`]:
/// numbers it never received, a sender that stopped). The last fields are set only where
/// they apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryGap {
    /// How many events are missing.
    pub lost_events: u64,
    /// The earliest time the first of them can have been captured or dropped (RFC 3339).
    pub first_lost_at: String,
    /// The latest time the last of them can have been captured or dropped (RFC 3339).
    pub last_lost_at: String,
    /// The sender (filter worker) the missing events are numbered by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// The sender's numbers of the missing events. A filter's record names at most
    /// [`MAX_GAP_RANGES`] ranges; numbers it could not name are recorded by the collector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seqs: Option<Vec<SeqRange>>,
    /// On a stopped sender: the events it said it had captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured: Option<u64>,
    /// On a stopped sender: its events stored in the trail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered: Option<u64>,
    /// On a stopped sender: its last heartbeat (its clock). It may have captured an unknown
    /// number of events after this, up to `unknownUntil`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_heard_at: Option<String>,
    /// On a stopped sender: the end of the window after its last heartbeat, one heartbeat
    /// interval later, by which it would have reported again had it still been running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown_until: Option<String>,
}

/// Most number ranges a filter's gap record names; its count covers the rest.
pub const MAX_GAP_RANGES: usize = 64;

impl DeliveryGap {
    /// A gap of `lost_events` between two times, with none of the optional parts.
    pub fn counted(lost_events: u64, first_lost_at: String, last_lost_at: String) -> DeliveryGap {
        DeliveryGap {
            lost_events,
            first_lost_at,
            last_lost_at,
            sender: None,
            seqs: None,
            captured: None,
            delivered: None,
            last_heard_at: None,
            unknown_until: None,
        }
    }
}

/// Why an event was refused: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {problem}")]
pub struct InvalidEvent {
    /// The JSON path of the field, e.g. `payload.method`.
    pub field: &'static str,
    /// What is wrong, phrased to follow the field name.
    pub problem: &'static str,
}

impl AuditEvent {
    /// The checks the collector applies before it stores an event. Serde has already
    /// checked the shape; these are the rules of the values.
    pub fn validate(&self) -> Result<(), InvalidEvent> {
        let invalid = |field, problem| Err(InvalidEvent { field, problem });
        if !is_event_uuid(&self.uuid) {
            return invalid("uuid", "must be 22 characters of base64url (16 random bytes)");
        }
        if parse_rfc3339_millis(&self.timestamp).is_none() {
            return invalid("timestamp", "must be an RFC 3339 date-time with an offset");
        }
        if self.event_type.is_empty() {
            return invalid("type", "must not be empty");
        }
        if let Some(sender) = &self.sender {
            if !is_sender_id(&sender.id) {
                return invalid("sender.id", "must be 22 characters of base64url (16 random bytes)");
            }
            if sender.seq == 0 {
                return invalid("sender.seq", "must be at least 1 (a sender numbers its events from 1)");
            }
        }
        if self.event_type == DELIVERY_GAP_TYPE {
            return match &self.gap {
                Some(gap) if gap.lost_events > 0 => validate_gap_numbers(gap),
                _ => invalid("gap", "must say how many events were lost on a delivery-gap event"),
            };
        }
        if COLLECTOR_RECORD_TYPES.contains(&self.event_type.as_str()) {
            return match &self.gap {
                Some(gap) => validate_gap_numbers(gap),
                None => invalid("gap", "must say what is missing on a collector record"),
            };
        }
        if self.payload.method.is_empty() {
            return invalid("payload.method", "must not be empty");
        }
        if !self.payload.path.starts_with('/') && self.payload.path != "*" {
            return invalid("payload.path", "must start with `/`");
        }
        Ok(())
    }

    /// The sender and number of the event, if it has them.
    pub fn sender_seq(&self) -> Option<(&str, u64)> {
        self.sender.as_ref().map(|sender| (sender.id.as_str(), sender.seq))
    }

    /// Milliseconds since the Unix epoch of [`AuditEvent::timestamp`], if it is valid.
    pub fn timestamp_millis(&self) -> Option<i64> {
        parse_rfc3339_millis(&self.timestamp)
    }
}

fn validate_gap_numbers(gap: &DeliveryGap) -> Result<(), InvalidEvent> {
    let invalid = |field, problem| Err(InvalidEvent { field, problem });
    if gap.sender.as_deref().is_some_and(|sender| !is_sender_id(sender)) {
        return invalid("gap.sender", "must be 22 characters of base64url (16 random bytes)");
    }
    let ranges = gap.seqs.as_deref().unwrap_or_default();
    if ranges.len() > MAX_GAP_RANGES {
        return invalid("gap.seqs", "must hold at most 64 ranges");
    }
    if ranges.iter().any(|range| range.first == 0 || range.last < range.first) {
        return invalid("gap.seqs", "must be ranges with 1 <= first <= last");
    }
    if ranges.iter().map(SeqRange::len).sum::<u64>() > gap.lost_events {
        return invalid("gap.seqs", "must not name more numbers than `lostEvents` counts");
    }
    if !ranges.is_empty() && gap.sender.is_none() {
        return invalid("gap.sender", "must name the sender whose numbers `seqs` are");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pactflow_example() -> serde_json::Value {
        json!({
            "uuid": "16WlpdLpDMzfMYxLTZYXYw",
            "timestamp": "2019-12-10T09:15:24.864+11:00",
            "type": "SaasBroker::Api::Resources::RegenerateApiToken",
            "db_user_id": 2,
            "user_email": "someuser@somecompany.com",
            "payload": {
                "path": "/settings/tokens/_UjhYvyyEjM9L2SgWd0qsw/regenerate",
                "queryString": "",
                "method": "POST",
                "userAgent": "Mozilla/5.0 (...)",
                "referer": "http://somebroker.example/settings/api-tokens",
                "params": { "resource_name": "regenerate_token", "token_uuid": "_UjhYvyyEjM9L2SgWd0qsw" }
            }
        })
    }

    #[test]
    fn reads_pactflows_published_event_and_writes_its_fields_back_unchanged() {
        let event: AuditEvent = serde_json::from_value(pactflow_example()).expect("PactFlow's shape parses");
        assert_eq!(event.validate(), Ok(()));
        let written = serde_json::to_value(&event).expect("serializes");
        let pactflow = pactflow_example();
        for key in ["uuid", "timestamp", "type", "db_user_id", "user_email"] {
            assert_eq!(written[key], pactflow[key], "top-level field {key}");
        }
        for key in ["path", "queryString", "method", "userAgent", "referer", "params"] {
            assert_eq!(written["payload"][key], pactflow["payload"][key], "payload field {key}");
        }
    }

    #[test]
    fn outcome_marks_failed_logins_and_refusals() {
        assert_eq!(ResponseSummary::new(401, 1.0).outcome, Outcome::Unauthenticated);
        assert_eq!(ResponseSummary::new(403, 1.0).outcome, Outcome::Forbidden);
        assert_eq!(ResponseSummary::new(404, 1.0).outcome, Outcome::ClientError);
        assert_eq!(ResponseSummary::new(503, 1.0).outcome, Outcome::ServerError);
        assert_eq!(ResponseSummary::new(302, 1.0).outcome, Outcome::Success);
        assert_eq!(ResponseSummary::new(0, 1.0).outcome, Outcome::NoResponse);
        let json = serde_json::to_value(ResponseSummary::new(401, 2.5)).expect("serializes");
        assert_eq!(json, json!({"status": 401, "durationMs": 2.5, "outcome": "unauthenticated"}));
    }

    #[test]
    fn a_delivery_gap_event_needs_its_count_but_no_request() {
        let mut event: AuditEvent = serde_json::from_value(pactflow_example()).expect("parses");
        event.event_type = DELIVERY_GAP_TYPE.into();
        event.payload = RequestPayload::default();
        assert_eq!(event.validate().map_err(|e| e.field), Err("gap"));
        event.gap = Some(DeliveryGap::counted(7, event.timestamp.clone(), event.timestamp.clone()));
        assert_eq!(event.validate(), Ok(()));
        event.gap.as_mut().expect("set above").seqs = Some(vec![SeqRange { first: 3, last: 9 }]);
        assert_eq!(event.validate().map_err(|e| e.field), Err("gap.sender"), "numbers need their sender");
        event.gap.as_mut().expect("set above").sender = Some("AAAAAAAAAAAAAAAAAAAAAA".into());
        assert_eq!(event.validate(), Ok(()));
        event.gap.as_mut().expect("set above").seqs = Some(vec![SeqRange { first: 3, last: 10 }]);
        assert_eq!(event.validate().map_err(|e| e.field), Err("gap.seqs"), "8 numbers but 7 lost");
    }

    #[test]
    fn a_sender_number_starts_at_one_and_the_old_shape_has_none() {
        let mut event: AuditEvent = serde_json::from_value(pactflow_example()).expect("parses");
        assert_eq!(event.sender, None);
        assert!(serde_json::to_value(&event).expect("serializes").get("sender").is_none(), "no key when absent");
        event.sender = Some(SenderSeq { id: "AAAAAAAAAAAAAAAAAAAAAA".into(), seq: 0 });
        assert_eq!(event.validate().map_err(|e| e.field), Err("sender.seq"));
        event.sender = Some(SenderSeq { id: "AAAAAAAAAAAAAAAAAAAAAA".into(), seq: 1 });
        assert_eq!(event.validate(), Ok(()));
        assert_eq!(event.sender_seq(), Some(("AAAAAAAAAAAAAAAAAAAAAA", 1)));
    }

    #[test]
    fn validate_names_the_field_that_is_wrong() {
        let mut event: AuditEvent = serde_json::from_value(pactflow_example()).expect("parses");
        event.uuid = "not-a-uuid".into();
        assert_eq!(event.validate().map_err(|e| e.field), Err("uuid"));
        event.uuid = "16WlpdLpDMzfMYxLTZYXYw".into();
        event.timestamp = "last tuesday".into();
        assert_eq!(
            event.validate().map_err(|e| e.to_string()),
            Err("`timestamp` must be an RFC 3339 date-time with an offset".to_string())
        );
    }
}
