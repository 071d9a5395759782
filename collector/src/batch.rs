//! An ingest body turned into rows to store, and what it says about its sender. Every
//! event is parsed and validated before any is stored, so a batch is stored whole or not at
//! all; the error says which event and which field, because the filter's operator has to
//! find it in a batch of hundreds. The collector's own record types are refused here: only
//! the collector states what it did not receive.

use audit_event::event::MAX_EVENT_BYTES;
use audit_event::sender::COLLECTOR_RECORD_TYPES;
use audit_event::timestamp::parse_rfc3339_millis;
use audit_event::{AuditEvent, IngestBatch, SenderReport, DELIVERY_GAP_TYPE};

use crate::chain::canonical_typed::canonical_of;
use crate::completeness::accounting::SenderActivity;
use crate::completeness::ledger::PendingRange;
use crate::store::NewEvent;

/// A valid batch: its rows, and its sender's report with the numbers it carries.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedBatch {
    /// One row per event, in order.
    pub rows: Vec<NewEvent>,
    /// The sender's report; `None` from a filter that does not number its events.
    pub sender: Option<SenderActivity>,
}

/// Why a batch was refused; the whole batch is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// Not JSON, or not the shape of an [`IngestBatch`]; serde's message gives line and column.
    #[error("the body is not an ingest batch ({{\"events\": [...]}} of audit events): {0}")]
    Malformed(String),
    /// An event broke a rule of [`AuditEvent::validate`].
    #[error("events[{index}].{field} {problem}")]
    Invalid {
        /// Position of the event in the batch.
        index: usize,
        /// The field, e.g. `payload.method`.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The `sender` report, or an event's `sender`, is wrong or does not match the batch's.
    #[error("{0}")]
    Sender(String),
    /// An event of a type only the collector writes.
    #[error("events[{index}].type `{event_type}` is recorded by the collector only; a filter cannot send it")]
    CollectorRecord {
        /// Position of the event in the batch.
        index: usize,
        /// The type.
        event_type: String,
    },
    /// An event larger than [`MAX_EVENT_BYTES`].
    #[error("events[{index}] is {size} bytes of JSON, more than the {MAX_EVENT_BYTES}-byte limit for one event")]
    TooLarge {
        /// Position of the event in the batch.
        index: usize,
        /// Its serialized size.
        size: usize,
    },
}

/// Parses and validates a whole batch; on success every event has become a row.
pub fn parse_batch(body: &[u8]) -> Result<ParsedBatch, BatchError> {
    let batch: IngestBatch = serde_json::from_slice(body).map_err(|error| BatchError::Malformed(error.to_string()))?;
    for (index, event) in batch.events.iter().enumerate() {
        if COLLECTOR_RECORD_TYPES.contains(&event.event_type.as_str()) {
            return Err(BatchError::CollectorRecord { index, event_type: event.event_type.clone() });
        }
    }
    let rows = batch.events.iter().enumerate().map(|(index, event)| to_row(index, event)).collect::<Result<_, _>>()?;
    let sender = sender_activity(&batch)?;
    Ok(ParsedBatch { rows, sender })
}

/// The row of a collector-built event (its own records), as ingest would build it.
pub fn event_row(event: &AuditEvent) -> Result<NewEvent, BatchError> {
    to_row(0, event)
}

/// The batch's sender report with the numbers its events and gap records carry. Every
/// number in the batch must belong to the sender that reports, and be one it has captured.
fn sender_activity(batch: &IngestBatch) -> Result<Option<SenderActivity>, BatchError> {
    let Some(report) = &batch.sender else {
        return match batch.events.iter().position(|event| event.sender.is_some()) {
            Some(index) => Err(BatchError::Sender(format!(
                "events[{index}].sender is set but the batch has no `sender` report; send both or neither"
            ))),
            None => Ok(None),
        };
    };
    report.validate().map_err(|invalid| BatchError::Sender(invalid.to_string()))?;
    let reported_at_ms = parse_rfc3339_millis(&report.at).unwrap_or_default();
    let mut numbered = Vec::with_capacity(batch.events.len());
    let mut named_lost = Vec::new();
    for (index, event) in batch.events.iter().enumerate() {
        numbered.push(match &event.sender {
            Some(sender) => {
                check_number(report, index, "sender", &sender.id, sender.seq)?;
                Some((sender.seq, event.timestamp_millis().unwrap_or_default()))
            }
            None => None,
        });
        let Some(gap) = event.gap.as_ref().filter(|_| event.event_type == DELIVERY_GAP_TYPE) else { continue };
        for range in gap.seqs.iter().flatten() {
            check_number(report, index, "gap.sender", gap.sender.as_deref().unwrap_or_default(), range.last)?;
            named_lost.push(PendingRange {
                range: *range,
                first_at_ms: parse_rfc3339_millis(&gap.first_lost_at).unwrap_or_default(),
                last_at_ms: parse_rfc3339_millis(&gap.last_lost_at).unwrap_or_default(),
                seen_at_ms: 0,
            });
        }
    }
    Ok(Some(SenderActivity {
        id: report.id.clone(),
        captured: report.captured,
        reported_at_ms,
        heartbeat_ms: report.heartbeat_ms,
        numbered,
        named_lost,
        stopping: report.stopping,
    }))
}

fn check_number(report: &SenderReport, index: usize, field: &str, id: &str, seq: u64) -> Result<(), BatchError> {
    if id != report.id {
        return Err(BatchError::Sender(format!(
            "events[{index}].{field} `{id}` is not the batch's sender `{}`; a batch carries one sender's events",
            report.id
        )));
    }
    if seq > report.captured {
        return Err(BatchError::Sender(format!(
            "events[{index}] has number {seq}, more than the {} events `sender.captured` says were captured",
            report.captured
        )));
    }
    Ok(())
}

fn to_row(index: usize, event: &AuditEvent) -> Result<NewEvent, BatchError> {
    let mut row = indexed_columns(index, event)?;
    // The bytes the chain link hashes, RFC 8785, written straight from the validated event
    // (`chain::canonical_typed`), whatever the sender's spacing or key order.
    row.canonical = canonical_of(event).map_err(|error| BatchError::Malformed(error.to_string()))?;
    if row.canonical.len() > MAX_EVENT_BYTES {
        return Err(BatchError::TooLarge { index, size: row.canonical.len() });
    }
    // The stored body is those same bytes: the event serialized once, not twice (a second
    // serialization was ~13k instructions an event, docs/performance.md). It reads back as
    // this event, and its canonical form is itself, which is what `verify` and the viewer
    // recompute (pinned by `tests::the_stored_body_is_its_own_canonical_form`).
    row.body = String::from_utf8(row.canonical.clone()).map_err(|error| BatchError::Malformed(error.to_string()))?;
    Ok(row)
}

/// The row of a validated event, with an empty `body` and `canonical`: the columns `GET /audit` filters
/// on, as ingest fills them (and as `verify` recomputes them from a stored body).
pub fn indexed_columns(index: usize, event: &AuditEvent) -> Result<NewEvent, BatchError> {
    event.validate().map_err(|invalid| BatchError::Invalid {
        index,
        field: invalid.field,
        problem: invalid.problem,
    })?;
    let timestamp_ms = event.timestamp_millis().ok_or(BatchError::Invalid {
        index,
        field: "timestamp",
        problem: "must be an RFC 3339 date-time with an offset",
    })?;
    Ok(NewEvent {
        uuid: event.uuid.clone(),
        timestamp_ms,
        event_type: event.event_type.clone(),
        db_user_id: event.db_user_id,
        user_email: event.user_email.clone(),
        user_id: event.user_id.clone().or_else(|| event.db_user_id.map(|id| id.to_string())),
        user_name: event.user_name.clone(),
        method: event.payload.method.clone(),
        status: event.response.as_ref().map(|response| response.status),
        body: String::new(),
        canonical: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn event(uuid: &str) -> Value {
        json!({
            "uuid": uuid,
            "timestamp": "2019-12-10T09:15:24.864+11:00",
            "type": "PactBroker::Api::Resources::Pact",
            "db_user_id": 2,
            "user_email": "someone@example.com",
            "payload": {"path": "/pacts", "queryString": "", "method": "GET",
                        "userAgent": null, "referer": null, "params": {}},
            "response": {"status": 201, "durationMs": 1.5, "outcome": "success"}
        })
    }

    fn body(events: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({ "events": events })).expect("serializes")
    }

    #[test]
    fn a_valid_batch_becomes_rows_with_the_indexed_columns_filled() {
        let rows = parse_batch(&body(vec![event("16WlpdLpDMzfMYxLTZYXYw")])).expect("valid").rows;
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].timestamp_ms, 1_575_929_724_864);
        assert_eq!(rows[0].method, "GET");
        assert_eq!(rows[0].status, Some(201));
        assert_eq!(rows[0].db_user_id, Some(2));
        let stored: Value = serde_json::from_str(&rows[0].body).expect("stored body is JSON");
        assert_eq!(stored["payload"]["path"], "/pacts");
    }

    #[test]
    fn the_stored_body_is_its_own_canonical_form() {
        let mut odd = event("AAAAAAAAAAAAAAAAAAAAAA");
        odd["response"]["durationMs"] = json!(0.1 + 0.2);
        odd["payload"]["params"] = json!({"\u{fb01}": "x", "\u{1f600}": "y\u{7}\"", "a": "é"});
        odd["db_user_id"] = json!(9_007_199_254_740_993_i64);
        let sent = vec![event("16WlpdLpDMzfMYxLTZYXYw"), odd];
        let rows = parse_batch(&body(sent.clone())).expect("valid").rows;
        for (row, sent) in rows.iter().zip(&sent) {
            let expected = crate::chain::link::canonical_body(&row.body).expect("stored body is JSON");
            assert_eq!(row.canonical, expected, "event {}: canonical form differs from its body's", row.uuid);
            assert_eq!(row.body.as_bytes(), expected, "event {}: the body is not in canonical form", row.uuid);
            // The same JSON value as the event serialized by serde, the body's shape before.
            let event: AuditEvent = serde_json::from_value(sent.clone()).expect("an event");
            let stored: Value = serde_json::from_str(&row.body).expect("stored body is JSON");
            assert_eq!(stored, serde_json::to_value(&event).expect("serializes"), "event {}", row.uuid);
        }
    }

    #[test]
    fn the_trust_keys_are_stored_and_hashed_and_absent_when_empty() {
        let mut attempt = event("16WlpdLpDMzfMYxLTZYXYw");
        attempt["user_name"] = json!("mallory");
        attempt["untrusted_identity"] = json!([{"header": "x-forwarded-email", "value": "alice@corp.example"}]);
        attempt["truncated_fields"] = json!([{"field": "payload.userAgent", "originalBytes": 50000}]);
        attempt["alerts"] = json!(["untrusted_identity_header"]);
        let rows = parse_batch(&body(vec![attempt.clone(), event("AAAAAAAAAAAAAAAAAAAAAA")])).expect("valid").rows;
        let stored: Value = serde_json::from_str(&rows[0].body).expect("stored body is JSON");
        for key in ["untrusted_identity", "truncated_fields", "alerts"] {
            assert_eq!(stored[key], attempt[key], "`{key}` is stored as sent");
            let canonical = String::from_utf8(rows[0].canonical.clone()).expect("UTF-8");
            assert!(canonical.contains(&format!("\"{key}\":")), "`{key}` is in the hashed form: {canonical}");
        }
        let plain: Value = serde_json::from_str(&rows[1].body).expect("stored body is JSON");
        for key in ["untrusted_identity", "truncated_fields", "alerts"] {
            assert!(plain.get(key).is_none(), "`{key}` is omitted when empty, so older events hash as before");
        }
    }

    #[test]
    fn one_bad_event_refuses_the_batch_naming_its_index_and_field() {
        let events = vec![event("16WlpdLpDMzfMYxLTZYXYw"), event("AAAAAAAAAAAAAAAAAAAAAA"), event("short")];
        let error = parse_batch(&body(events)).expect_err("refused").to_string();
        assert!(error.starts_with("events[2].uuid must be 22 characters of base64url"), "{error}");
    }

    #[test]
    fn malformed_json_reports_serdes_line_and_column() {
        let error = parse_batch(b"{\"events\": [\n{\"uuid\": 1}]}").expect_err("refused").to_string();
        assert!(error.contains("line 2 column"), "{error}");
        let error = parse_batch(b"not json").expect_err("refused").to_string();
        assert!(error.contains("at line 1 column"), "{error}");
    }

    const SENDER: &str = "AAAAAAAAAAAAAAAAAAAAAA";

    fn numbered(uuid: &str, seq: u64) -> Value {
        let mut event = event(uuid);
        event["sender"] = json!({"id": SENDER, "seq": seq});
        event
    }

    fn from_sender(events: Vec<Value>, captured: u64) -> Vec<u8> {
        let report = json!({"id": SENDER, "captured": captured, "at": "2026-11-30T02:00:00.000Z", "heartbeatMs": 1000});
        serde_json::to_vec(&json!({ "events": events, "sender": report })).expect("serializes")
    }

    #[test]
    fn a_numbered_batch_carries_its_numbers_and_report_to_the_store() {
        let parsed = parse_batch(&from_sender(vec![numbered("16WlpdLpDMzfMYxLTZYXYw", 7)], 9)).expect("valid");
        let sender = parsed.sender.expect("a sender report");
        assert_eq!((sender.captured, sender.heartbeat_ms), (9, 1000));
        assert_eq!(sender.numbered, [Some((7, 1_575_929_724_864))]);
        let heartbeat = parse_batch(&from_sender(Vec::new(), 9)).expect("an empty batch is a heartbeat");
        assert_eq!(heartbeat.sender.map(|sender| sender.captured), Some(9));
    }

    #[test]
    fn numbers_that_do_not_fit_the_report_are_refused() {
        let error = parse_batch(&from_sender(vec![numbered("16WlpdLpDMzfMYxLTZYXYw", 10)], 9)).expect_err("refused");
        assert!(error.to_string().contains("more than the 9 events"), "{error}");
        let error = parse_batch(&body(vec![numbered("16WlpdLpDMzfMYxLTZYXYw", 1)])).expect_err("refused");
        assert!(error.to_string().contains("no `sender` report"), "{error}");
        let mut other = numbered("16WlpdLpDMzfMYxLTZYXYw", 1);
        other["sender"]["id"] = json!("BBBBBBBBBBBBBBBBBBBBBA");
        let error = parse_batch(&from_sender(vec![other], 9)).expect_err("refused");
        assert!(error.to_string().contains("is not the batch's sender"), "{error}");
    }

    #[test]
    fn a_filter_cannot_send_the_collectors_own_records() {
        let mut forged = event("16WlpdLpDMzfMYxLTZYXYw");
        forged["type"] = json!("AuditSidecar::SenderStopped");
        forged["gap"] = json!({"lostEvents": 0, "firstLostAt": "2026-11-30T02:00:00.000Z",
                               "lastLostAt": "2026-11-30T02:00:00.000Z"});
        let error = parse_batch(&body(vec![forged])).expect_err("refused");
        assert!(matches!(error, BatchError::CollectorRecord { index: 0, .. }), "{error}");
    }

    #[test]
    fn an_event_over_the_size_limit_is_refused() {
        let mut big = event("16WlpdLpDMzfMYxLTZYXYw");
        big["payload"]["userAgent"] = Value::String("x".repeat(MAX_EVENT_BYTES));
        let error = parse_batch(&body(vec![big])).expect_err("refused");
        assert!(matches!(error, BatchError::TooLarge { index: 0, .. }), "{error}");
    }
}
