//! What a checkpoint signature covers. The signed message is the canonical JSON (see
//! [`super::canonical`]) of the checkpoint as served, without `signature` and with
//! `"format": "audit-sidecar/checkpoint/v1"` added; the next checkpoint's
//! `prevCheckpointHash` is SHA-256 of that message, so checkpoints form a chain too.
//! A handover checkpoint (key rotation) also signs `nextPublicKey`; checkpoints without one
//! sign exactly the members they always did, so older signatures stay valid.

use audit_event::chain::Checkpoint;
use serde_json::{json, Value};

use super::canonical::canonical_json;
use super::link::{sha256, Digest};

/// The `format` member of every signed checkpoint message.
pub const CHECKPOINT_FORMAT: &str = "audit-sidecar/checkpoint/v1";

/// The bytes the checkpoint's signature signs.
pub fn signed_message(checkpoint: &Checkpoint) -> Vec<u8> {
    let mut value: Value = json!({
        "format": CHECKPOINT_FORMAT,
        "number": checkpoint.number,
        "lastSeq": checkpoint.last_seq,
        "lastHash": checkpoint.last_hash,
        "anchorSeq": checkpoint.anchor_seq,
        "anchorHash": checkpoint.anchor_hash,
        "issuedAtMs": checkpoint.issued_at_ms,
        "prevCheckpointHash": checkpoint.prev_checkpoint_hash,
        "keyId": checkpoint.key_id,
    });
    if let (Some(next), Some(object)) = (&checkpoint.next_public_key, value.as_object_mut()) {
        object.insert("nextPublicKey".to_owned(), Value::String(next.clone()));
    }
    canonical_json(&value)
}

/// What the next checkpoint names as `prevCheckpointHash`.
pub fn checkpoint_hash(checkpoint: &Checkpoint) -> Digest {
    sha256(&signed_message(checkpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_is_canonical_json_without_the_signature() {
        let checkpoint = Checkpoint {
            number: 1,
            last_seq: 2,
            last_hash: "ab".into(),
            anchor_seq: 0,
            anchor_hash: "00".into(),
            issued_at_ms: 5,
            prev_checkpoint_hash: "00".into(),
            key_id: "k".into(),
            signature: "ignored".into(),
            next_public_key: None,
        };
        let message = String::from_utf8(signed_message(&checkpoint)).expect("UTF-8");
        assert_eq!(
            message,
            r#"{"anchorHash":"00","anchorSeq":0,"format":"audit-sidecar/checkpoint/v1","issuedAtMs":5,"keyId":"k","lastHash":"ab","lastSeq":2,"number":1,"prevCheckpointHash":"00"}"#
        );
        let handover = Checkpoint { next_public_key: Some("cd".into()), ..checkpoint };
        let message = String::from_utf8(signed_message(&handover)).expect("UTF-8");
        assert!(
            message.contains(r#""keyId":"k","lastHash""#) && message.contains(r#""nextPublicKey":"cd","number":1"#),
            "{message}"
        );
    }
}
