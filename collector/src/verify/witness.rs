//! `verify --witness`: the trail checked against checkpoints kept somewhere its operator
//! cannot reach (the lines `audit-collector tail` wrote into a SIEM, or the collector's
//! `--witness-file`). Hash chains alone cannot show that the newest events were cut off;
//! a copy of a newer signed checkpoint can.
//!
//! Each witnessed checkpoint must verify with the key the trail's own checkpoints lead to
//! (following handovers), so a forged line cannot make an honest trail fail. Then:
//! - the trail has that checkpoint number with the same signed content, or
//! - the trail ends before it: TRUNCATED (events and checkpoints were cut off), or
//! - the trail has a different checkpoint with that number: REWRITTEN (history forked).

use std::io::BufRead;
use std::path::Path;

use audit_event::chain::Checkpoint;
use serde_json::Value;

use super::problem::TrailProblem;
use super::report::{TrailReport, WitnessSummary};
use super::walk::{check_checkpoints, check_signature};
use super::VerifyError;
use crate::chain::checkpoint::checkpoint_hash;
use crate::chain::signing::TrailVerifier;
use crate::tail::checkpoint_record::checkpoint_of_line;

/// One checkpoint found in a witness file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witnessed {
    /// Where it was found, e.g. `siem.ndjson:120`.
    pub place: String,
    /// The checkpoint.
    pub checkpoint: Checkpoint,
}

/// Reads every checkpoint line of a witness file (lines that are events or anything else
/// are skipped: a SIEM export holds both).
pub fn read_witness(path: &Path) -> Result<Vec<Witnessed>, VerifyError> {
    let unreadable = |error: std::io::Error| VerifyError::Read(format!("witness {}: {error}", path.display()));
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut found = Vec::new();
    for (index, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(unreadable)?;
        let Ok(value) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if let Some(checkpoint) = checkpoint_of_line(&value) {
            found.push(Witnessed { place: format!("{}:{}", path.display(), index + 1), checkpoint });
        }
    }
    Ok(found)
}

/// Checks the verified trail of `report` against `witnessed`; `key` is the key the auditor
/// holds (the oldest). On success the report says what the witness confirmed.
pub fn check_witness(
    mut report: TrailReport,
    key: &TrailVerifier,
    witnessed: &[Witnessed],
) -> Result<TrailReport, VerifyError> {
    let mut witnessed: Vec<&Witnessed> = witnessed.iter().collect();
    witnessed.sort_by_key(|witness| witness.checkpoint.number);
    witnessed.dedup_by(|a, b| a.checkpoint == b.checkpoint);
    let keys = check_checkpoints(&report.checkpoints, key)?;
    let first_number = report.checkpoints.first().map_or(1, |first| first.number);
    // The key of the checkpoint after the trail's newest.
    let beyond_key = keys.next.clone();
    let beyond_number = report.checkpoints.last().map_or(0, |last| last.number);
    for witness in &witnessed {
        let theirs = &witness.checkpoint;
        let index = usize::try_from(theirs.number - first_number).ok();
        let in_trail = index.and_then(|index| report.checkpoints.get(index).map(|ours| (index, ours)));
        match in_trail {
            Some((index, ours)) => {
                let signer = keys.signers.get(index).unwrap_or(&keys.next);
                authentic(witness, signer)?;
                if checkpoint_hash(ours) != checkpoint_hash(theirs) {
                    return Err(TrailProblem::Rewritten {
                        number: theirs.number,
                        seq: theirs.last_seq.min(ours.last_seq),
                        detail: format!(
                            "the witness ({}) holds checkpoint {} signed for seq {} with hash {}; the trail's checkpoint {} says seq {} with hash {}: the history was rewritten after it was witnessed",
                            witness.place, theirs.number, theirs.last_seq, theirs.last_hash, ours.number, ours.last_seq, ours.last_hash
                        ),
                    }
                    .into());
                }
            }
            None if theirs.number > beyond_number => {
                // With a gap in the trail's numbers before it, the key may have changed in
                // the gap; then the line cannot be checked and is refused, not believed.
                authentic(witness, &beyond_key)?;
                let newest = report.checkpoints.last();
                return Err(TrailProblem::Truncated {
                    seq: newest.map_or(0, |newest| newest.last_seq) + 1,
                    detail: format!(
                        "the witness ({}) holds checkpoint {} signed for seq {} (hash {}), but the trail's newest checkpoint is {}: checkpoints and the events after seq {} were removed",
                        witness.place,
                        theirs.number,
                        theirs.last_seq,
                        theirs.last_hash,
                        newest.map_or_else(|| "none".to_owned(), |newest| format!("{} (seq {})", newest.number, newest.last_seq)),
                        newest.map_or(0, |newest| newest.last_seq)
                    ),
                }
                .into());
            }
            None => {
                return Err(VerifyError::Read(format!(
                    "witness {}: checkpoint {} is older than the trail's first checkpoint {first_number}",
                    witness.place, theirs.number
                )))
            }
        }
    }
    report.witness = Some(WitnessSummary {
        checkpoints: witnessed.len(),
        newest: witnessed.last().map(|witness| (witness.checkpoint.number, witness.checkpoint.last_seq)),
    });
    Ok(report)
}

/// A witnessed checkpoint counts only when it verifies with the key at its place in the
/// chain: a line anyone could have written proves nothing either way.
fn authentic(witness: &Witnessed, key: &TrailVerifier) -> Result<(), VerifyError> {
    check_signature(&witness.checkpoint, key, false).map_err(|problem| {
        VerifyError::Read(format!(
            "witness {}: checkpoint {} is not a valid signed checkpoint of this trail ({problem}); the witness cannot be used",
            witness.place, witness.checkpoint.number
        ))
    })
}
