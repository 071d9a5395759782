//! The collector's ingest parser (`POST /v1/events` bodies) on arbitrary bytes: it must
//! answer rows or a `BatchError` that says what was wrong, never panic. An accepted batch
//! must also keep the promises the trail rests on: each stored body is within the event
//! bound, reads back as the same event and is stored again byte for byte, its chain bytes
//! are the canonical form of that body, and the filterable columns are what `verify`
//! recomputes from the body.
#![no_main]

use audit_collector::batch::{indexed_columns, parse_batch};
use audit_collector::chain::link::canonical_body;
use audit_event::event::MAX_EVENT_BYTES;
use audit_event::AuditEvent;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rows = match parse_batch(data) {
        Ok(rows) => rows,
        Err(error) => {
            assert!(!error.to_string().is_empty(), "a refusal that says nothing");
            return;
        }
    };
    let mut bodies = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        assert!(row.body.len() <= MAX_EVENT_BYTES, "events[{index}]: a stored body over the bound");
        let event: AuditEvent = serde_json::from_str(&row.body).expect("a stored body reads back as an event");
        assert_eq!(serde_json::to_string(&event).expect("serializes"), row.body, "events[{index}]: not stable");
        let canonical = canonical_body(&row.body).expect("a stored body is JSON");
        assert_eq!(row.canonical, canonical, "events[{index}]: chain bytes differ from the body's canonical form");
        let mut recomputed = indexed_columns(index, &event).expect("a stored event validates again");
        recomputed.body.clone_from(&row.body);
        recomputed.canonical.clone_from(&row.canonical);
        assert_eq!(&recomputed, row, "events[{index}]: columns differ from those of its body");
        bodies.push(event);
    }
    // The stored events, sent again as a batch, are accepted as the same rows.
    let again = serde_json::to_vec(&serde_json::json!({ "events": bodies })).expect("serializes");
    assert_eq!(parse_batch(&again).as_ref(), Ok(&rows), "the stored batch does not parse to itself");
});
