//! What a checkpoint signature covers. The signed message is the canonical JSON (see
//! [`super::canonical`]) of the checkpoint as served, without `signature` and with
//! `"format": "audit-sidecar/checkpoint/v1"` added; the next checkpoint's
//! `prevCheckpointHash` is SHA-256 of that message, so checkpoints form a chain too.
//! A handover checkpoint (key rotation) also signs `nextPublicKey`; checkpoints without one
//! sign exactly the members they always did, so older signatures stay valid.

use audit_event::chain::Checkpoint;
use serde_json::{json, Value};

use super::canonical::canonical_json;
use super::link::{sha256, to_hex, Digest, GENESIS};
use super::signing::{TrailSigner, TrailVerifier};

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

/// A checkpoint offered to a key that may not sign it: after `previous`, the chain
/// expects the key that signed it, or the key its handover named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("checkpoints must now be signed by key {expected}, but this collector's signing key is {found}; start it with the key the newest checkpoint names (--signing-key / AUDIT_SIGNING_KEY), or hand over with `audit-collector rotate-key`")]
pub struct WrongSigner {
    /// The key id the chain expects.
    pub expected: String,
    /// The key id of the signer offered.
    pub found: String,
}

/// The key id that must sign the checkpoint after `previous` (`None` before the first:
/// any key may start a trail). A handover whose key cannot be read expects no key at all.
pub fn expected_key_id(previous: Option<&Checkpoint>) -> Option<String> {
    let previous = previous?;
    Some(match &previous.next_public_key {
        Some(next) => TrailVerifier::parse(next)
            .map_or_else(|_| format!("(unreadable key {next})"), |key| key.key_id().to_owned()),
        None => previous.key_id.clone(),
    })
}

/// The signed checkpoint that follows `previous` for a chain whose newest link is
/// `(head_seq, head_hash)` and whose retention anchor is `(anchor_seq, anchor_hash)`, or
/// `None` when `previous` already says the same (no new events, no new purge). Every store
/// builds its checkpoints here, so they cannot differ in what they sign, and none signs
/// with a key the chain does not expect.
pub fn next_checkpoint(
    head: (i64, &Digest),
    anchor: (i64, &Digest),
    previous: Option<&Checkpoint>,
    signer: &TrailSigner,
    now_ms: i64,
) -> Result<Option<Checkpoint>, WrongSigner> {
    check_signer(previous, signer)?;
    let unchanged = match previous {
        Some(last) => last.last_seq == head.0 && last.anchor_seq == anchor.0,
        None => head.0 == 0,
    };
    if unchanged {
        return Ok(None);
    }
    Ok(Some(signed(head, anchor, previous, signer, now_ms, None)))
}

/// Key rotation: the checkpoint, signed by the current key, that names `next` as the key of
/// every later checkpoint. Always issued, even when nothing else changed.
pub fn handover_checkpoint(
    head: (i64, &Digest),
    anchor: (i64, &Digest),
    previous: Option<&Checkpoint>,
    signer: &TrailSigner,
    next: &TrailVerifier,
    now_ms: i64,
) -> Result<Checkpoint, WrongSigner> {
    check_signer(previous, signer)?;
    Ok(signed(head, anchor, previous, signer, now_ms, Some(next)))
}

fn check_signer(previous: Option<&Checkpoint>, signer: &TrailSigner) -> Result<(), WrongSigner> {
    match expected_key_id(previous) {
        Some(expected) if expected != signer.key_id() => {
            Err(WrongSigner { expected, found: signer.key_id().to_owned() })
        }
        _ => Ok(()),
    }
}

fn signed(
    head: (i64, &Digest),
    anchor: (i64, &Digest),
    previous: Option<&Checkpoint>,
    signer: &TrailSigner,
    now_ms: i64,
    next: Option<&TrailVerifier>,
) -> Checkpoint {
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
        next_public_key: next.map(|next| next.public_key().public_key_hex),
    };
    checkpoint.signature = to_hex(&signer.sign(&signed_message(&checkpoint)));
    checkpoint
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
