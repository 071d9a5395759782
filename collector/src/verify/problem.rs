//! [`TrailProblem`]: the first thing found wrong with a trail, phrased for an auditor:
//! which sequence number (or checkpoint), and what is wrong with it.

/// Why a trail does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrailProblem {
    /// The event's content no longer hashes to its recorded link.
    #[error("seq {seq}: event CHANGED: its content hashes to {computed}, but the chain recorded {recorded}")]
    Changed {
        /// The event.
        seq: i64,
        /// What its content hashes to now.
        computed: String,
        /// What the chain recorded.
        recorded: String,
    },
    /// A seq is missing: events were deleted from the middle of the trail.
    #[error("seq {seq}: event MISSING: the trail jumps from seq {before} to seq {after}")]
    Missing {
        /// The first missing seq.
        seq: i64,
        /// The seq before the gap.
        before: i64,
        /// The seq after the gap.
        after: i64,
    },
    /// Seqs out of order.
    #[error("seq {seq}: events REORDERED: seq {seq} comes after seq {after}")]
    Reordered {
        /// The event out of place.
        seq: i64,
        /// The event before it.
        after: i64,
    },
    /// The event does not link to the one before it.
    #[error("seq {seq}: chain BROKEN: its prevHash is {recorded}, but the event before it hashes to {expected} (an event before it was removed, replaced or reordered)")]
    LinkBroken {
        /// The event.
        seq: i64,
        /// The prevHash it carries.
        recorded: String,
        /// The hash of the event before.
        expected: String,
    },
    /// The trail's first event is neither seq 1 nor right after a signed anchor.
    #[error("seq {seq}: history TRUNCATED: {detail}")]
    Truncated {
        /// The first seq that should be there.
        seq: i64,
        /// What is missing.
        detail: String,
    },
    /// A stored event cannot be read.
    #[error("seq {seq}: event UNREADABLE: {detail}")]
    Unreadable {
        /// The event.
        seq: i64,
        /// Why.
        detail: String,
    },
    /// A column the API filters on disagrees with the event's body.
    #[error("seq {seq}: column `{column}` CHANGED: it says {column_value} but the event says {body_value}")]
    ColumnChanged {
        /// The event.
        seq: i64,
        /// The column.
        column: &'static str,
        /// The column's value.
        column_value: String,
        /// The body's value.
        body_value: String,
    },
    /// A checkpoint's signature does not verify with the public key.
    #[error("checkpoint {number} (seq {seq}): SIGNATURE INVALID: {detail}")]
    BadSignature {
        /// The checkpoint.
        number: i64,
        /// Its last seq.
        seq: i64,
        /// Why.
        detail: String,
    },
    /// Checkpoints do not follow each other.
    #[error("checkpoint {number} (seq {seq}): checkpoint chain BROKEN: {detail}")]
    CheckpointChainBroken {
        /// The checkpoint.
        number: i64,
        /// Its last seq.
        seq: i64,
        /// Why.
        detail: String,
    },
    /// A checkpoint's hash differs from the recomputed chain.
    #[error("seq {seq}: does NOT MATCH checkpoint {number}: the signed {what} is {signed}, the recomputed chain has {computed}")]
    CheckpointMismatch {
        /// The seq.
        seq: i64,
        /// The checkpoint.
        number: i64,
        /// `last hash` or `anchor hash`.
        what: &'static str,
        /// The signed hash.
        signed: String,
        /// The recomputed hash.
        computed: String,
    },
    /// A witness holds a different signed checkpoint under the same number: the history
    /// was forked after it was witnessed.
    #[error("checkpoint {number} (seq {seq}): history REWRITTEN: {detail}")]
    Rewritten {
        /// The checkpoint.
        number: i64,
        /// The first seq concerned.
        seq: i64,
        /// What differs.
        detail: String,
    },
    /// The anchor row disagrees with the signed anchor.
    #[error("seq {seq}: retention ANCHOR {detail}")]
    Anchor {
        /// The anchor seq concerned.
        seq: i64,
        /// What is wrong.
        detail: String,
    },
}
