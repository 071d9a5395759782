//! The checks themselves, independent of where the trail comes from: [`check_checkpoints`]
//! (signatures, numbering, and the checkpoints' own chain), then a [`ChainWalker`] fed the
//! events in sequence order, which recomputes every link and compares it with what each
//! checkpoint signed. It stops at the first problem, so the problem names the first bad seq.

use std::collections::BTreeMap;

use audit_event::chain::Checkpoint;

use super::problem::TrailProblem;
use super::report::TrailReport;
use crate::chain::checkpoint::{checkpoint_hash, signed_message};
use crate::chain::link::{digest_from_hex, from_hex, link_hash, to_hex, Digest, GENESIS};
use crate::chain::signing::TrailVerifier;

/// One event as a source delivers it.
#[derive(Debug, Clone)]
pub struct TrailEvent {
    /// Its seq.
    pub seq: i64,
    /// The prevHash it carries (`None` when absent or not a 32-byte hash).
    pub prev_hash: Option<Digest>,
    /// The hash it carries.
    pub hash: Option<Digest>,
    /// The canonical bytes of its content.
    pub canonical: Vec<u8>,
}

/// The keys that signed the checkpoints: `signers[i]` signed checkpoint `i` of the list,
/// and `next` must sign the checkpoint after the last one.
pub struct KeyChain {
    /// The key of each checkpoint, in the order given.
    pub signers: Vec<TrailVerifier>,
    /// The key expected for the next checkpoint.
    pub next: TrailVerifier,
}

/// Checks every checkpoint: the key, the signature, the numbering from 1, and that each
/// names the hash of the one before. Checkpoints must be in ascending `number`. The first
/// is checked with `key`; a handover checkpoint (signed by the current key) names the key
/// of every later one, so `key` (the oldest) verifies the whole history.
pub fn check_checkpoints(checkpoints: &[Checkpoint], key: &TrailVerifier) -> Result<KeyChain, TrailProblem> {
    let mut previous: Option<&Checkpoint> = None;
    let mut active = key.clone();
    let mut signers = Vec::with_capacity(checkpoints.len());
    for checkpoint in checkpoints {
        let broken = |detail: String| TrailProblem::CheckpointChainBroken {
            number: checkpoint.number,
            seq: checkpoint.last_seq,
            detail,
        };
        // The numbering first: with a handover checkpoint removed, the next one is signed by a
        // key the chain has not reached, and "SIGNATURE INVALID" would name the wrong fault.
        let expected_number = previous.map_or(1, |previous| previous.number + 1);
        if checkpoint.number != expected_number {
            return Err(broken(format!(
                "expected checkpoint {expected_number} here; checkpoints were removed (or the list does not start at 1)"
            )));
        }
        check_signature(checkpoint, &active, previous.is_none())?;
        let expected_prev = previous.map_or(GENESIS, checkpoint_hash);
        if digest_from_hex(&checkpoint.prev_checkpoint_hash) != Some(expected_prev) {
            return Err(broken(format!(
                "it names {} as the previous checkpoint's hash, but that is {}",
                checkpoint.prev_checkpoint_hash,
                to_hex(&expected_prev)
            )));
        }
        if let Some(previous) = previous {
            if checkpoint.last_seq < previous.last_seq || checkpoint.anchor_seq < previous.anchor_seq {
                return Err(broken(format!("it goes back from checkpoint {}", previous.number)));
            }
        }
        if checkpoint.anchor_seq > checkpoint.last_seq || checkpoint.anchor_seq < 0 {
            return Err(broken("its anchor is past its last seq".to_owned()));
        }
        signers.push(active.clone());
        active = next_key(checkpoint, &active)?;
        previous = Some(checkpoint);
    }
    Ok(KeyChain { signers, next: active })
}

/// The checkpoint must be signed by `key`. `first` says it is the first checkpoint, signed
/// by the key the auditor holds, so a mismatch there says which key to ask for.
pub fn check_signature(checkpoint: &Checkpoint, key: &TrailVerifier, first: bool) -> Result<(), TrailProblem> {
    let bad =
        |detail: String| TrailProblem::BadSignature { number: checkpoint.number, seq: checkpoint.last_seq, detail };
    if checkpoint.key_id != key.key_id() {
        return Err(bad(if first {
            format!(
                "signed by key {}, not by the public key given ({}); give the key that signed the oldest checkpoint: later keys are followed through their handover",
                checkpoint.key_id,
                key.key_id()
            )
        } else {
            format!(
                "signed by key {}, but the checkpoints before it hand over to key {}",
                checkpoint.key_id,
                key.key_id()
            )
        }));
    }
    let signature = from_hex(&checkpoint.signature).unwrap_or_default();
    if !key.verifies(&signed_message(checkpoint), &signature) {
        return Err(bad("the signature does not match the checkpoint's content with this public key".to_owned()));
    }
    Ok(())
}

/// The key that signs the checkpoint after `checkpoint` (already verified with `current`).
pub fn next_key(checkpoint: &Checkpoint, current: &TrailVerifier) -> Result<TrailVerifier, TrailProblem> {
    match &checkpoint.next_public_key {
        None => Ok(current.clone()),
        Some(next) => TrailVerifier::parse(next).map_err(|error| TrailProblem::CheckpointChainBroken {
            number: checkpoint.number,
            seq: checkpoint.last_seq,
            detail: format!("it hands over to a key that cannot be read ({error})"),
        }),
    }
}

/// A hash a checkpoint signed for a seq.
#[derive(Debug, Clone)]
struct SignedPoint {
    number: i64,
    what: &'static str,
    hash: Option<Digest>,
}

/// Recomputes the chain event by event; see [`ChainWalker::next`] and [`ChainWalker::finish`].
pub struct ChainWalker {
    points: BTreeMap<i64, Vec<SignedPoint>>,
    anchors: BTreeMap<i64, Option<Digest>>,
    latest: Option<Checkpoint>,
    checkpoints: Vec<Checkpoint>,
    head: Option<(i64, Digest)>,
    first_seq: Option<i64>,
    events: u64,
    covered_events: u64,
}

impl ChainWalker {
    /// A walker over checkpoints that [`check_checkpoints`] accepted.
    pub fn new(checkpoints: &[Checkpoint]) -> ChainWalker {
        let mut points: BTreeMap<i64, Vec<SignedPoint>> = BTreeMap::new();
        let mut anchors = BTreeMap::new();
        for checkpoint in checkpoints {
            let last = SignedPoint {
                number: checkpoint.number,
                what: "last hash",
                hash: digest_from_hex(&checkpoint.last_hash),
            };
            points.entry(checkpoint.last_seq).or_default().push(last);
            let anchor_hash = digest_from_hex(&checkpoint.anchor_hash);
            let anchor = SignedPoint { number: checkpoint.number, what: "anchor hash", hash: anchor_hash };
            points.entry(checkpoint.anchor_seq).or_default().push(anchor);
            anchors.insert(checkpoint.anchor_seq, anchor_hash);
        }
        anchors.insert(0, Some(GENESIS));
        ChainWalker {
            points,
            anchors,
            latest: checkpoints.last().cloned(),
            checkpoints: checkpoints.to_vec(),
            head: None,
            first_seq: None,
            events: 0,
            covered_events: 0,
        }
    }

    /// Checks the next event (in the order the source gives them).
    pub fn next(&mut self, event: &TrailEvent) -> Result<(), TrailProblem> {
        let (prev_seq, prev_hash) = match self.head {
            Some(head) => head,
            None => self.start(event)?,
        };
        if event.seq > prev_seq + 1 {
            return Err(TrailProblem::Missing { seq: prev_seq + 1, before: prev_seq, after: event.seq });
        }
        if event.seq <= prev_seq {
            return Err(TrailProblem::Reordered { seq: event.seq, after: prev_seq });
        }
        if event.prev_hash != Some(prev_hash) {
            return Err(TrailProblem::LinkBroken {
                seq: event.seq,
                recorded: event.prev_hash.map_or_else(|| "missing".to_owned(), |hash| to_hex(&hash)),
                expected: to_hex(&prev_hash),
            });
        }
        let computed = link_hash(&prev_hash, event.seq, &event.canonical);
        if event.hash != Some(computed) {
            return Err(TrailProblem::Changed {
                seq: event.seq,
                computed: to_hex(&computed),
                recorded: event.hash.map_or_else(|| "no hash".to_owned(), |hash| to_hex(&hash)),
            });
        }
        self.check_points(event.seq, &computed)?;
        self.head = Some((event.seq, computed));
        self.events += 1;
        if self.latest.as_ref().is_some_and(|latest| event.seq <= latest.last_seq) {
            self.covered_events += 1;
        }
        Ok(())
    }

    /// Where the chain may start: right after seq 0 (genesis) or after a signed anchor.
    fn start(&mut self, first: &TrailEvent) -> Result<(i64, Digest), TrailProblem> {
        let before = first.seq - 1;
        let Some(expected) = self.anchors.get(&before).copied().flatten() else {
            let covered = self.latest.as_ref().map_or(0, |latest| latest.anchor_seq);
            return Err(TrailProblem::Truncated {
                seq: covered + 1,
                detail: format!(
                    "the trail starts at seq {}, but the signed retention anchor covers only seq 1 to {covered}; events {} to {before} were removed",
                    first.seq,
                    covered + 1
                ),
            });
        };
        self.check_points(before, &expected)?;
        self.first_seq = Some(first.seq);
        Ok((before, expected))
    }

    fn check_points(&self, seq: i64, computed: &Digest) -> Result<(), TrailProblem> {
        for point in self.points.get(&seq).into_iter().flatten() {
            if point.hash != Some(*computed) {
                return Err(TrailProblem::CheckpointMismatch {
                    seq,
                    number: point.number,
                    what: point.what,
                    signed: point.hash.map_or_else(|| "not a hash".to_owned(), |hash| to_hex(&hash)),
                    computed: to_hex(computed),
                });
            }
        }
        Ok(())
    }

    /// After the last event: the trail must reach at least as far as the newest checkpoint.
    pub fn finish(self) -> Result<TrailReport, TrailProblem> {
        let last_seq = self.head.map(|(seq, _)| seq);
        if let Some(latest) = &self.latest {
            let reached = last_seq.unwrap_or(latest.anchor_seq);
            if reached < latest.last_seq {
                return Err(TrailProblem::Truncated {
                    seq: reached + 1,
                    detail: format!(
                        "checkpoint {} signed the trail up to seq {}, but it ends at seq {reached}; events {} to {} were removed",
                        latest.number,
                        latest.last_seq,
                        reached + 1,
                        latest.last_seq
                    ),
                });
            }
        }
        Ok(TrailReport {
            events: self.events,
            covered_events: self.covered_events,
            first_seq: self.first_seq,
            last_seq,
            latest_checkpoint: self.latest.as_ref().map(|latest| (latest.clone(), to_hex(&checkpoint_hash(latest)))),
            checkpoints: self.checkpoints,
            witness: None,
        })
    }
}
