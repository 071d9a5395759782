//! The wire shapes of the tamper-evident trail: the [`ChainLink`] every event carries in
//! `GET /audit` (under the [`CHAIN_KEY`] key, next to PactFlow's fields), the signed
//! [`Checkpoint`]s of `GET /audit/checkpoints`, and the [`TrailPublicKey`] of
//! `GET /audit/public-key`. How hashes and signatures are computed is specified in the
//! README ("Verifying the trail"); these are only the shapes.

use serde::{Deserialize, Serialize};

use crate::page::PageLinks;

/// The key of the [`ChainLink`] in an event served by `GET /audit`. It is not part of the
/// event the filter sends: the collector adds it when it serves the event.
pub const CHAIN_KEY: &str = "chain";

/// The path of the checkpoint list.
pub const CHECKPOINTS_PATH: &str = "/audit/checkpoints";

/// The path of the public key that signs checkpoints.
pub const PUBLIC_KEY_PATH: &str = "/audit/public-key";

/// Where an event sits in the hash chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChainLink {
    /// The event's sequence number: its position in the trail, from 1, without gaps.
    pub seq: i64,
    /// SHA-256 of `prevHash || seq || canonical event`, lower-case hex.
    pub hash: String,
    /// The `hash` of the event before (or of the retention anchor, or 64 zeros), hex.
    pub prev_hash: String,
}

/// A signed statement of the collector: "the trail ran up to `lastSeq` with hash
/// `lastHash`, and events up to `anchorSeq` (hash `anchorHash`) were purged by retention".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// 1 for the first checkpoint, then one more each time.
    pub number: i64,
    /// The newest event covered.
    pub last_seq: i64,
    /// Its chain hash, hex.
    pub last_hash: String,
    /// The newest event retention had purged (0 when none).
    pub anchor_seq: i64,
    /// Its chain hash (64 zeros when none), hex: where the kept chain starts.
    pub anchor_hash: String,
    /// When the checkpoint was signed, in milliseconds since the Unix epoch.
    pub issued_at_ms: i64,
    /// SHA-256 of the previous checkpoint's signed message (64 zeros for the first), hex.
    pub prev_checkpoint_hash: String,
    /// The id of the key that signed it (see [`TrailPublicKey::key_id`]).
    pub key_id: String,
    /// The Ed25519 signature of the checkpoint's signed message, hex.
    pub signature: String,
    /// Key rotation: the raw Ed25519 public key (hex) that signs every checkpoint after
    /// this one. Present only on the handover checkpoint, which the old key signs, so one
    /// trusted key verifies the whole history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_public_key: Option<String>,
}

/// The `record` member of a [`CheckpointRecord`].
pub const CHECKPOINT_RECORD: &str = "audit-sidecar/checkpoint";

/// A checkpoint as a line of its own in a witness: what `audit-collector tail` writes into
/// its event stream (native format) and the collector's `--witness-file` appends, so a copy
/// of every signature lives where the database's operator cannot rewrite it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    /// Always [`CHECKPOINT_RECORD`]: what tells this line from an event.
    pub record: String,
    /// The checkpoint, exactly as `GET /audit/checkpoints` serves it.
    pub checkpoint: Checkpoint,
}

impl CheckpointRecord {
    /// The record of `checkpoint`.
    pub fn of(checkpoint: Checkpoint) -> CheckpointRecord {
        CheckpointRecord { record: CHECKPOINT_RECORD.to_owned(), checkpoint }
    }
}

/// The body of `GET /audit/checkpoints`: checkpoints in ascending `number`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointPage {
    /// The checkpoints of this page.
    pub checkpoints: Vec<Checkpoint>,
    /// `self` and, unless this is the last page, `next`.
    #[serde(rename = "_links")]
    pub links: PageLinks,
}

/// The body of `GET /audit/public-key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrailPublicKey {
    /// Always `Ed25519`.
    pub algorithm: String,
    /// The first 16 hex digits of SHA-256 of the 32 raw public key bytes.
    pub key_id: String,
    /// The 32 raw public key bytes, hex.
    pub public_key_hex: String,
    /// The same key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as OpenSSL writes it.
    pub public_key_pem: String,
}
