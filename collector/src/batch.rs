//! An ingest body turned into rows to store. Every event is parsed and validated before
//! any is stored, so a batch is stored whole or not at all; the error says which event and
//! which field, because the filter's operator has to find it in a batch of hundreds.

use audit_event::event::MAX_EVENT_BYTES;
use audit_event::{AuditEvent, IngestBatch};

use crate::chain::canonical::canonical_json;
use crate::store::NewEvent;

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
pub fn parse_batch(body: &[u8]) -> Result<Vec<NewEvent>, BatchError> {
    let batch: IngestBatch = serde_json::from_slice(body).map_err(|error| BatchError::Malformed(error.to_string()))?;
    batch.events.iter().enumerate().map(|(index, event)| to_row(index, event)).collect()
}

fn to_row(index: usize, event: &AuditEvent) -> Result<NewEvent, BatchError> {
    let mut row = indexed_columns(index, event)?;
    // Serialized once here, from the validated event, so every stored body has one
    // canonical shape whatever the sender's spacing or key order.
    row.body = serde_json::to_string(event).map_err(|error| BatchError::Malformed(error.to_string()))?;
    if row.body.len() > MAX_EVENT_BYTES {
        return Err(BatchError::TooLarge { index, size: row.body.len() });
    }
    // The bytes the chain link hashes, from the typed event rather than by parsing the body
    // again: the same JSON value, since the body is this event serialized (pinned by
    // `tests::the_canonical_form_is_that_of_the_stored_body`).
    let value = serde_json::to_value(event).map_err(|error| BatchError::Malformed(error.to_string()))?;
    row.canonical = canonical_json(&value);
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
        let rows = parse_batch(&body(vec![event("16WlpdLpDMzfMYxLTZYXYw")])).expect("valid");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].timestamp_ms, 1_575_929_724_864);
        assert_eq!(rows[0].method, "GET");
        assert_eq!(rows[0].status, Some(201));
        assert_eq!(rows[0].db_user_id, Some(2));
        let stored: Value = serde_json::from_str(&rows[0].body).expect("stored body is JSON");
        assert_eq!(stored["payload"]["path"], "/pacts");
    }

    #[test]
    fn the_canonical_form_is_that_of_the_stored_body() {
        let mut odd = event("AAAAAAAAAAAAAAAAAAAAAA");
        odd["response"]["durationMs"] = json!(0.1 + 0.2);
        odd["payload"]["params"] = json!({"\u{fb01}": "x", "\u{1f600}": "y\u{7}\"", "a": "é"});
        odd["db_user_id"] = json!(9_007_199_254_740_993_i64);
        let rows = parse_batch(&body(vec![event("16WlpdLpDMzfMYxLTZYXYw"), odd])).expect("valid");
        for row in rows {
            let expected = crate::chain::link::canonical_body(&row.body).expect("stored body is JSON");
            assert_eq!(row.canonical, expected, "event {}: canonical form differs from its body's", row.uuid);
        }
    }

    #[test]
    fn the_trust_keys_are_stored_and_hashed_and_absent_when_empty() {
        let mut attempt = event("16WlpdLpDMzfMYxLTZYXYw");
        attempt["user_name"] = json!("mallory");
        attempt["untrusted_identity"] = json!([{"header": "x-forwarded-email", "value": "alice@corp.example"}]);
        attempt["truncated_fields"] = json!([{"field": "payload.userAgent", "originalBytes": 50000}]);
        attempt["alerts"] = json!(["untrusted_identity_header"]);
        let rows = parse_batch(&body(vec![attempt.clone(), event("AAAAAAAAAAAAAAAAAAAAAA")])).expect("valid");
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

    #[test]
    fn an_event_over_the_size_limit_is_refused() {
        let mut big = event("16WlpdLpDMzfMYxLTZYXYw");
        big["payload"]["userAgent"] = Value::String("x".repeat(MAX_EVENT_BYTES));
        let error = parse_batch(&body(vec![big])).expect_err("refused");
        assert!(matches!(error, BatchError::TooLarge { index: 0, .. }), "{error}");
    }
}
