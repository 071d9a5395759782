//! [`TrailReport`]: what a successful verification proved, printed for the auditor.

use std::fmt;

use audit_event::chain::Checkpoint;

/// The summary of a trail that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailReport {
    /// Events checked.
    pub events: u64,
    /// The first seq present.
    pub first_seq: Option<i64>,
    /// The last seq present.
    pub last_seq: Option<i64>,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// The newest checkpoint and its hash.
    pub latest_checkpoint: Option<(Checkpoint, String)>,
}

impl TrailReport {
    /// Events newer than the newest checkpoint: proven by the chain only.
    pub fn unsigned_events(&self) -> i64 {
        let signed_up_to = self.latest_checkpoint.as_ref().map_or(0, |(latest, _)| latest.last_seq);
        self.last_seq.map_or(0, |last| (last - signed_up_to).max(0))
    }
}

impl fmt::Display for TrailReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.first_seq, self.last_seq) {
            (Some(first), Some(last)) => writeln!(
                f,
                "trail intact: {} events, {} checkpoints, chain intact from seq {first} to {last}",
                self.events, self.checkpoints
            )?,
            _ => writeln!(f, "trail intact: no events, {} checkpoints", self.checkpoints)?,
        }
        if let Some(first) = self.first_seq.filter(|first| *first > 1) {
            writeln!(
                f,
                "  starts after seq {}: older events were purged by retention; the anchor (seq {} and its hash) is signed",
                first - 1,
                first - 1
            )?;
        }
        match &self.latest_checkpoint {
            Some((latest, hash)) => {
                writeln!(
                    f,
                    "  newest checkpoint: {} (signed by key {}, covers seq {} to {}); its hash {hash}",
                    latest.number,
                    latest.key_id,
                    latest.anchor_seq + 1,
                    latest.last_seq
                )?;
                writeln!(
                    f,
                    "  keep that hash: a later run that does not reach checkpoint {} means the trail was rolled back",
                    latest.number
                )?;
            }
            None => writeln!(f, "  no checkpoint yet: nothing is signed, the chain only shows internal consistency")?,
        }
        let unsigned = self.unsigned_events();
        if let (true, Some(last)) = (unsigned > 0, self.last_seq) {
            writeln!(
                f,
                "  {unsigned} events after the newest checkpoint (seq {} to {last}) are verified by the chain only, not yet by a signature",
                last - unsigned + 1
            )?;
        }
        Ok(())
    }
}
