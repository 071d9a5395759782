//! [`TrailReport`]: what a verification proved, printed for the auditor word for word. It
//! separates what a signature covers from what only the chain shows: events after the
//! newest checkpoint link to each other, but whoever holds the database could rewrite them
//! and recompute every hash, so they are never called intact. [`Coverage`] is the verdict
//! and the exit status.

use std::fmt;

use audit_event::chain::Checkpoint;
use audit_event::timestamp::format_rfc3339_millis;

/// The summary of a trail whose chain and checkpoints verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailReport {
    /// Events checked.
    pub events: u64,
    /// Of those, events covered by the newest signed checkpoint.
    pub covered_events: u64,
    /// The first seq present.
    pub first_seq: Option<i64>,
    /// The last seq present.
    pub last_seq: Option<i64>,
    /// Every checkpoint checked, oldest first.
    pub checkpoints: Vec<Checkpoint>,
    /// The newest checkpoint and its hash.
    pub latest_checkpoint: Option<(Checkpoint, String)>,
    /// What a witness file confirmed, when one was given.
    pub witness: Option<WitnessSummary>,
}

/// What a witness confirmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WitnessSummary {
    /// Checkpoints in the witness.
    pub checkpoints: usize,
    /// The newest witnessed checkpoint: (number, last seq).
    pub newest: Option<(i64, i64)>,
}

impl std::fmt::Display for WitnessSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.newest {
            Some((number, seq)) => write!(
                f,
                "witness: all {} witnessed checkpoints are in the trail unchanged; the newest witnessed is checkpoint {number} (seq {seq}), so the trail was not cut back before it",
                self.checkpoints
            ),
            None => write!(f, "witness: the witness holds no checkpoint, so it proves nothing about truncation"),
        }
    }
}

/// How much of a verified trail a signature proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coverage {
    /// Every event is covered by a valid signed checkpoint (exit 0).
    Full,
    /// The signed part is intact; newer events are only chain-consistent (exit 3).
    UncoveredTail,
    /// No checkpoint at all: nothing is signed, the key was never used (exit 3).
    NothingSigned,
}

/// The exit status of `verify` for each outcome.
pub mod exit_code {
    /// Intact, and every event covered by a valid signed checkpoint.
    pub const COVERED: i32 = 0;
    /// Not intact (tampered, truncated, forked), or full coverage was required and missing.
    pub const NOT_INTACT: i32 = 1;
    /// The trail (or the key, or the witness file) could not be read.
    pub const UNREADABLE: i32 = 2;
    /// The signed part is intact, but events after the newest checkpoint (or all of them,
    /// with no checkpoint) are only chain-consistent.
    pub const UNCOVERED_TAIL: i32 = 3;
}

impl TrailReport {
    /// Events newer than the newest checkpoint: chain-consistent only.
    pub fn uncovered_events(&self) -> u64 {
        self.events - self.covered_events
    }

    /// The verdict.
    pub fn coverage(&self) -> Coverage {
        match (&self.latest_checkpoint, self.uncovered_events()) {
            (None, _) => Coverage::NothingSigned,
            (Some(_), 0) => Coverage::Full,
            (Some(_), _) => Coverage::UncoveredTail,
        }
    }

    /// The exit status of `verify` for this report.
    pub fn exit_code(&self) -> i32 {
        match self.coverage() {
            Coverage::Full => exit_code::COVERED,
            Coverage::UncoveredTail | Coverage::NothingSigned => exit_code::UNCOVERED_TAIL,
        }
    }

    /// The keys that signed, oldest first, with the checkpoint that handed over to each.
    fn key_handovers(&self) -> Vec<(String, Option<i64>)> {
        let mut keys: Vec<(String, Option<i64>)> = Vec::new();
        let mut handed_over_at = None;
        for checkpoint in &self.checkpoints {
            if keys.last().map(|(key, _)| key) != Some(&checkpoint.key_id) {
                keys.push((checkpoint.key_id.clone(), handed_over_at));
            }
            handed_over_at = checkpoint.next_public_key.as_ref().map(|_| checkpoint.number);
        }
        keys
    }

    /// `N events (seq a to b)`, or `0 events`.
    fn span(count: u64, first: i64, last: i64) -> String {
        if count == 0 {
            "0 events".to_owned()
        } else {
            format!("{count} events (seq {first} to {last})")
        }
    }
}

fn time_of(ms: i64) -> String {
    format_rfc3339_millis(ms.saturating_mul(1_000_000))
}

impl fmt::Display for TrailReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = self.first_seq.unwrap_or(0);
        let last = self.last_seq.unwrap_or(0);
        let uncovered = self.uncovered_events();
        match self.coverage() {
            Coverage::Full => writeln!(f, "TRAIL INTACT AND SIGNED: every event is covered by a valid signed checkpoint")?,
            Coverage::UncoveredTail => writeln!(
                f,
                "TRAIL NOT FULLY SIGNED: the signed part is intact; {uncovered} newer events are only chain-consistent"
            )?,
            Coverage::NothingSigned => writeln!(
                f,
                "TRAIL NOT PROVEN: there is no signed checkpoint, so no event is covered by a signature (the public key was not used)"
            )?,
        }
        let covered_last = self.latest_checkpoint.as_ref().map_or(0, |(latest, _)| latest.last_seq);
        writeln!(
            f,
            "  covered:   {} by signed checkpoints",
            TrailReport::span(self.covered_events, first, covered_last.min(last))
        )?;
        if uncovered == 0 {
            writeln!(f, "  uncovered: 0 events")?;
        } else {
            let from = if self.covered_events == 0 { first } else { covered_last + 1 };
            writeln!(
                f,
                "  uncovered: {}: the chain links them, but no signature covers them, so whoever holds the database could have rewritten them; sign a checkpoint (`audit-collector checkpoint`) and verify again",
                TrailReport::span(uncovered, from, last)
            )?;
        }
        match &self.latest_checkpoint {
            Some((latest, hash)) => {
                writeln!(
                    f,
                    "  newest checkpoint: {} at seq {}, signed {} by key {}; its hash {hash}",
                    latest.number,
                    latest.last_seq,
                    time_of(latest.issued_at_ms),
                    latest.key_id
                )?;
            }
            None => writeln!(f, "  newest checkpoint: none")?,
        }
        if let Some(start) = self.first_seq.filter(|first| *first > 1) {
            writeln!(
                f,
                "  starts after seq {}: older events were purged by retention; the anchor (seq {} and its hash) is signed",
                start - 1,
                start - 1
            )?;
        }
        let keys = self.key_handovers();
        if keys.len() > 1 {
            let chain: Vec<String> = keys
                .iter()
                .map(|(key, at)| match at {
                    Some(number) => format!("{key} (handed over by checkpoint {number})"),
                    None => key.clone(),
                })
                .collect();
            writeln!(
                f,
                "  signing keys, each handed over by a checkpoint the previous key signed: {}",
                chain.join(" -> ")
            )?;
        }
        match &self.witness {
            Some(witness) => writeln!(f, "  {witness}")?,
            None => {
                if let Some((latest, _)) = &self.latest_checkpoint {
                    writeln!(
                        f,
                        "  no witness given: a trail cut back to an older checkpoint looks the same; check it against a copy kept elsewhere (--witness) or keep the hash of checkpoint {}",
                        latest.number
                    )?;
                }
            }
        }
        Ok(())
    }
}
