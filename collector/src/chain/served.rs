//! The event as `GET /audit` serves it: the stored body with the `chain` key added as its
//! last member. The body is stored as one JSON object (its canonical form since 2026-12-05,
//! written by serde before), so the link is spliced in before its closing brace: a page is
//! served without parsing any event.

use audit_event::chain::{ChainLink, CHAIN_KEY};

use super::link::{digest_from_blob, to_hex};

/// `body` with `"chain": {seq, hash, prevHash}` added; `None` when the body is not a JSON
/// object or the stored hashes are not 32 bytes.
pub fn with_chain_link(body: &str, seq: i64, prev_hash: &[u8], hash: &[u8]) -> Option<String> {
    let link =
        ChainLink { seq, hash: to_hex(&digest_from_blob(hash)?), prev_hash: to_hex(&digest_from_blob(prev_hash)?) };
    let link = serde_json::to_string(&link).ok()?;
    let open = body.trim_end().strip_suffix('}')?;
    let separator = if open.trim_end().ends_with('{') { "" } else { "," };
    Some(format!("{open}{separator}\"{CHAIN_KEY}\":{link}}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn the_link_is_the_last_key_and_the_event_is_otherwise_unchanged() {
        let served = with_chain_link(r#"{"uuid":"u","n":1}"#, 7, &[0; 32], &[0xab; 32]).expect("spliced");
        let value: Value = serde_json::from_str(&served).expect("still JSON");
        assert_eq!(value["uuid"], "u");
        assert_eq!(value["chain"], json!({"seq": 7, "hash": "ab".repeat(32), "prevHash": "00".repeat(32)}));
        assert!(served.starts_with(r#"{"uuid":"u","n":1,"chain":"#), "{served}");
    }

    #[test]
    fn an_empty_object_and_a_non_object_are_handled() {
        let served = with_chain_link("{}", 1, &[0; 32], &[1; 32]).expect("spliced");
        assert!(serde_json::from_str::<Value>(&served).is_ok(), "{served}");
        assert_eq!(with_chain_link("[1]", 1, &[0; 32], &[1; 32]), None);
        assert_eq!(with_chain_link("{}", 1, &[0; 31], &[1; 32]), None);
    }
}
