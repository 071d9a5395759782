//! The collector's ingest parser (`POST /v1/events` bodies) on arbitrary bytes: it must
//! answer rows or a `BatchError` that says what was wrong, never panic. An accepted batch
//! must also keep the promises the trail rests on: each stored body is within the event
//! bound, is its own canonical form (the chain's bytes), reads back as the same event and
//! is stored again byte for byte, and the filterable columns are what `verify`
//! recomputes from the body; the stored events sent again with the same sender report
//! parse to the same batch.
#![no_main]

use audit_collector::batch::{indexed_columns, parse_batch};
use audit_collector::chain::canonical_typed::canonical_of;
use audit_collector::chain::link::canonical_body;
use audit_event::event::MAX_EVENT_BYTES;
use audit_event::{AuditEvent, IngestBatch};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = match parse_batch(data) {
        Ok(parsed) => parsed,
        Err(error) => {
            assert!(!error.to_string().is_empty(), "a refusal that says nothing");
            return;
        }
    };
    let mut stored = Vec::with_capacity(parsed.rows.len());
    for (index, row) in parsed.rows.iter().enumerate() {
        assert!(row.body.len() <= MAX_EVENT_BYTES, "events[{index}]: a stored body over the bound");
        let event: AuditEvent = serde_json::from_str(&row.body).expect("a stored body reads back as an event");
        let canonical = canonical_body(&row.body).expect("a stored body is JSON");
        assert_eq!(row.canonical, canonical, "events[{index}]: chain bytes differ from the body's canonical form");
        assert_eq!(row.body.as_bytes(), canonical, "events[{index}]: the stored body is not its canonical form");
        let again = canonical_of(&event).expect("a stored event has a canonical form");
        assert_eq!(again, canonical, "events[{index}]: not stable: the event read back is stored differently");
        let mut recomputed = indexed_columns(index, &event).expect("a stored event validates again");
        recomputed.body.clone_from(&row.body);
        recomputed.canonical.clone_from(&row.canonical);
        assert_eq!(&recomputed, row, "events[{index}]: columns differ from those of its body");
        stored.push(event);
    }
    let sent: IngestBatch = serde_json::from_slice(data).expect("an accepted body is an ingest batch");
    let again = serde_json::to_vec(&IngestBatch { events: stored, sender: sent.sender }).expect("serializes");
    assert_eq!(parse_batch(&again).as_ref(), Ok(&parsed), "the stored batch does not parse to itself");
});
