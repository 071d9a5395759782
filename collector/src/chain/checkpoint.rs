//! What a checkpoint signature covers. The signed message is the canonical JSON (see
//! [`super::canonical`]) of the checkpoint as served, without `signature` and with
//! `"format": "audit-sidecar/checkpoint/v1"` added; the next checkpoint's
//! `prevCheckpointHash` is SHA-256 of that message, so checkpoints form a chain too.

use audit_event::chain::Checkpoint;
use serde_json::{json, Value};

use super::canonical::canonical_json;
use super::link::{sha256, to_hex, Digest, GENESIS};
use super::signing::TrailSigner;

/// The `format` member of every signed checkpoint message.
pub const CHECKPOINT_FORMAT: &str = "audit-sidecar/checkpoint/v1";

/// The bytes the checkpoint's signature signs.
pub fn signed_message(checkpoint: &Checkpoint) -> Vec<u8> {
    let value: Value = json!({
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
    canonical_json(&value)
}

/// What the next checkpoint names as `prevCheckpointHash`.
pub fn checkpoint_hash(checkpoint: &Checkpoint) -> Digest {
    sha256(&signed_message(checkpoint))
}

/// The signed checkpoint that follows `previous` for a chain whose newest link is
/// `(head_seq, head_hash)` and whose retention anchor is `(anchor_seq, anchor_hash)`, or
/// `None` when `previous` already says the same (no new events, no new purge). Every store
/// builds its checkpoints here, so they cannot differ in what they sign.
pub fn next_checkpoint(
    head: (i64, &Digest),
    anchor: (i64, &Digest),
    previous: Option<&Checkpoint>,
    signer: &TrailSigner,
    now_ms: i64,
) -> Option<Checkpoint> {
    let unchanged = match previous {
        Some(last) => last.last_seq == head.0 && last.anchor_seq == anchor.0,
        None => head.0 == 0,
    };
    if unchanged {
        return None;
    }
    let mut checkpoint = Checkpoint {
        number: previous.map_or(1, |last| last.number + 1),
        last_seq: head.0,
        last_hash: to_hex(head.1),
        anchor_seq: anchor.0,
        anchor_hash: to_hex(anchor.1),
        issued_at_ms: now_ms,
        prev_checkpoint_hash: to_hex(&previous.map_or(GENESIS, checkpoint_hash)),
        key_id: signer.key_id().to_owned(),
        signature: String::new(),
    };
    checkpoint.signature = to_hex(&signer.sign(&signed_message(&checkpoint)));
    Some(checkpoint)
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
        };
        let message = String::from_utf8(signed_message(&checkpoint)).expect("UTF-8");
        assert_eq!(
            message,
            r#"{"anchorHash":"00","anchorSeq":0,"format":"audit-sidecar/checkpoint/v1","issuedAtMs":5,"keyId":"k","lastHash":"ab","lastSeq":2,"number":1,"prevCheckpointHash":"00"}"#
        );
    }
}
