//! [`Ledger`]: which numbers of one sender are accounted for, pure and clock-free. A number
//! is accounted for once its event is stored or a gap record names it. Everything up to
//! `contiguous` is; above it, the accounted ranges that arrived early wait in `pending`
//! (sorted, disjoint, not touching `contiguous`), each with when it was first seen. The
//! numbers between `contiguous` and the first pending range are a hole: the sender sends
//! in order, so once a later number is here, the hole is filled only by a late gap record
//! or a batch committed out of order, and after a grace period the collector records it.
//! A hole after the last accounted number (a lost last batch) shows only in the sender's
//! own count: a heartbeat's `captured` is kept as a [`Claim`], and numbers it names that
//! are still missing a grace period later are a hole too.

use audit_event::SeqRange;

/// Numbers accounted for above the contiguous prefix, and the times that bound them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingRange {
    /// The numbers.
    pub range: SeqRange,
    /// The earliest event time (ms) in the range: its first number was captured about then.
    pub first_at_ms: i64,
    /// The latest event time (ms) in the range.
    pub last_at_ms: i64,
    /// When the collector first stored any of it (its clock, ms): the age of the hole below.
    pub seen_at_ms: i64,
}

/// One sender's accounting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    /// Every number from 1 to this is accounted for.
    pub contiguous: u64,
    /// The latest event time (ms) of the contiguous prefix: the numbers after it were
    /// captured no earlier than about this (0 when unknown).
    pub contiguous_at_ms: i64,
    /// Accounted ranges above `contiguous + 1`, sorted, disjoint, not adjacent to each other.
    pub pending: Vec<PendingRange>,
    /// The oldest heartbeat count not yet accounted for, if any.
    pub claimed: Option<Claim>,
}

/// A sender's heartbeat said it had captured every number up to `upto`; a heartbeat goes
/// only when nothing of the sender's is on the wire or backing off, so those numbers are
/// due within about a flush interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The highest number the sender had captured.
    pub upto: u64,
    /// When it said so, by its clock (ms): the missing numbers were captured before.
    pub reported_at_ms: i64,
    /// When the collector stored that heartbeat (its clock, ms): the claim's age.
    pub seen_at_ms: i64,
}

/// A hole: numbers nobody accounted for, and the event times around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hole {
    /// The missing numbers.
    pub range: SeqRange,
    /// The time of the last accounted event before the hole (ms; 0 when unknown).
    pub after_ms: i64,
    /// The time of the first accounted event after it (ms).
    pub before_ms: i64,
}

impl Ledger {
    /// Accounts for `incoming` (any order, may overlap what is known).
    pub fn account(&mut self, incoming: &[PendingRange]) {
        for new in incoming {
            if new.range.last <= self.contiguous || new.range.is_empty() {
                continue;
            }
            let mut merged = *new;
            merged.range.first = merged.range.first.max(self.contiguous + 1);
            let mut kept = Vec::with_capacity(self.pending.len() + 1);
            for old in self.pending.drain(..) {
                let apart = old.range.last.saturating_add(1) < merged.range.first
                    || merged.range.last.saturating_add(1) < old.range.first;
                if apart {
                    kept.push(old);
                } else {
                    merged = PendingRange {
                        range: SeqRange {
                            first: old.range.first.min(merged.range.first),
                            last: old.range.last.max(merged.range.last),
                        },
                        first_at_ms: old.first_at_ms.min(merged.first_at_ms),
                        last_at_ms: old.last_at_ms.max(merged.last_at_ms),
                        seen_at_ms: old.seen_at_ms.min(merged.seen_at_ms),
                    };
                }
            }
            kept.push(merged);
            kept.sort_by_key(|pending| pending.range.first);
            self.pending = kept;
            self.absorb();
        }
    }

    /// Keeps a heartbeat's count, unless an older claim is still outstanding (that one is
    /// due first; this count is kept by a later heartbeat once it is settled).
    pub fn claim(&mut self, claim: Claim) {
        let outstanding = self.claimed.is_some_and(|old| old.upto > self.contiguous);
        if !outstanding && claim.upto > self.contiguous {
            self.claimed = Some(claim);
        }
    }

    /// The first hole that has waited `grace_ms`: below the first pending range once that
    /// range was stored that long ago, or else below the claimed count once the claim is
    /// that old (up to the next pending range, if one starts below it).
    pub fn overdue_hole(&self, now_ms: i64, grace_ms: i64) -> Option<Hole> {
        let aged = |seen_at_ms: i64| now_ms.saturating_sub(seen_at_ms) >= grace_ms;
        if let Some(first) = self.pending.first().filter(|first| aged(first.seen_at_ms)) {
            return Some(self.hole_below(first));
        }
        let claim = self.claimed.filter(|claim| claim.upto > self.contiguous && aged(claim.seen_at_ms))?;
        match self.pending.first() {
            Some(first) if first.range.first <= claim.upto => Some(self.hole_below(first)),
            _ => Some(Hole {
                range: SeqRange { first: self.contiguous + 1, last: claim.upto },
                after_ms: self.contiguous_at_ms,
                before_ms: claim.reported_at_ms,
            }),
        }
    }

    /// Every hole up to the last pending range, oldest first, without waiting: for a
    /// sender that stopped (what its count says beyond that goes into the stop record).
    /// The ledger then accounts for all of them.
    pub fn close_every_hole(&mut self) -> Vec<Hole> {
        let mut holes = Vec::new();
        while let Some(first) = self.pending.first() {
            let hole = self.hole_below(first);
            self.close_hole(&hole);
            holes.push(hole);
        }
        holes
    }

    /// Counts `hole` (one [`Ledger::overdue_hole`] returned) as recorded, so the prefix
    /// moves on.
    pub fn close_hole(&mut self, hole: &Hole) {
        if hole.range.last > self.contiguous {
            self.contiguous = hole.range.last;
            self.contiguous_at_ms = self.contiguous_at_ms.max(hole.before_ms);
            self.absorb();
        }
    }

    /// Accounts for every number up to `last` (a stopped sender's tail, once recorded).
    pub fn close_through(&mut self, last: u64, at_ms: i64) {
        if last > self.contiguous {
            self.contiguous = last;
            self.contiguous_at_ms = self.contiguous_at_ms.max(at_ms);
            self.pending.retain(|pending| pending.range.last > last);
            self.absorb();
        }
    }

    fn hole_below(&self, first: &PendingRange) -> Hole {
        Hole {
            range: SeqRange { first: self.contiguous + 1, last: first.range.first - 1 },
            after_ms: self.contiguous_at_ms,
            before_ms: first.first_at_ms,
        }
    }

    /// Moves pending ranges that now touch the prefix into it; drops a settled claim.
    fn absorb(&mut self) {
        while let Some(first) = self.pending.first().copied() {
            if first.range.first > self.contiguous.saturating_add(1) {
                break;
            }
            self.pending.remove(0);
            self.contiguous = self.contiguous.max(first.range.last);
            self.contiguous_at_ms = self.contiguous_at_ms.max(first.last_at_ms);
        }
        if self.claimed.is_some_and(|claim| claim.upto <= self.contiguous) {
            self.claimed = None;
        }
    }
}

/// The numbers of a batch's events as ranges: sorted, runs of consecutive numbers joined.
/// `numbered` holds (number, event time in ms).
pub fn ranges_of(numbered: &[(u64, i64)], seen_at_ms: i64) -> Vec<PendingRange> {
    let mut sorted = numbered.to_vec();
    sorted.sort_unstable();
    let mut ranges: Vec<PendingRange> = Vec::new();
    for (seq, at_ms) in sorted {
        match ranges.last_mut() {
            Some(last) if seq <= last.range.last.saturating_add(1) => {
                last.range.last = last.range.last.max(seq);
                last.first_at_ms = last.first_at_ms.min(at_ms);
                last.last_at_ms = last.last_at_ms.max(at_ms);
            }
            _ => ranges.push(PendingRange {
                range: SeqRange { first: seq, last: seq },
                first_at_ms: at_ms,
                last_at_ms: at_ms,
                seen_at_ms,
            }),
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(first: u64, last: u64, seen_at_ms: i64) -> Vec<PendingRange> {
        let numbered: Vec<(u64, i64)> = (first..=last).map(|seq| (seq, i64::try_from(seq).unwrap_or(0) * 10)).collect();
        ranges_of(&numbered, seen_at_ms)
    }

    #[test]
    fn batches_in_order_only_move_the_prefix() {
        let mut ledger = Ledger::default();
        ledger.account(&numbers(1, 500, 0));
        ledger.account(&numbers(501, 800, 0));
        assert_eq!((ledger.contiguous, ledger.contiguous_at_ms, ledger.pending.len()), (800, 8000, 0));
        assert_eq!(ledger.overdue_hole(1_000_000, 0), None);
    }

    #[test]
    fn a_retried_batch_changes_nothing() {
        let mut ledger = Ledger::default();
        ledger.account(&numbers(1, 10, 0));
        ledger.account(&numbers(1, 10, 5));
        ledger.account(&numbers(4, 6, 5));
        assert_eq!(ledger, Ledger { contiguous: 10, contiguous_at_ms: 100, ..Ledger::default() });
    }

    #[test]
    fn a_hole_is_overdue_only_after_the_grace_and_names_its_numbers_and_times() {
        let mut ledger = Ledger::default();
        ledger.account(&numbers(1, 10, 0));
        ledger.account(&numbers(21, 30, 1000));
        assert_eq!(ledger.overdue_hole(1999, 1000), None, "999 ms < grace");
        let hole = ledger.overdue_hole(2000, 1000).expect("overdue");
        assert_eq!(hole, Hole { range: SeqRange { first: 11, last: 20 }, after_ms: 100, before_ms: 210 });
        ledger.close_hole(&hole);
        assert_eq!((ledger.contiguous, ledger.pending.len()), (30, 0));
    }

    #[test]
    fn a_late_batch_fills_the_hole_before_it_is_recorded() {
        let mut ledger = Ledger::default();
        ledger.account(&numbers(1, 10, 0));
        ledger.account(&numbers(21, 30, 0));
        ledger.account(&numbers(11, 20, 500));
        assert_eq!((ledger.contiguous, ledger.pending.len()), (30, 0));
    }

    #[test]
    fn overlapping_and_adjacent_ranges_merge_keeping_the_oldest_sighting() {
        let mut ledger = Ledger::default();
        ledger.account(&numbers(50, 60, 7));
        ledger.account(&numbers(61, 70, 9));
        ledger.account(&numbers(55, 80, 11));
        ledger.account(&numbers(90, 95, 12));
        let summary: Vec<(u64, u64, i64)> =
            ledger.pending.iter().map(|p| (p.range.first, p.range.last, p.seen_at_ms)).collect();
        assert_eq!(summary, [(50, 80, 7), (90, 95, 12)]);
        let holes: Vec<SeqRange> = ledger.close_every_hole().into_iter().map(|hole| hole.range).collect();
        assert_eq!(holes, [SeqRange { first: 1, last: 49 }, SeqRange { first: 81, last: 89 }]);
        assert_eq!(ledger.contiguous, 95);
    }

    #[test]
    fn closing_a_stopped_senders_tail_accounts_for_everything_below() {
        let mut ledger = Ledger::default();
        ledger.account(&numbers(1, 10, 0));
        ledger.close_through(25, 400);
        assert_eq!((ledger.contiguous, ledger.contiguous_at_ms), (25, 400));
        ledger.account(&numbers(20, 26, 0));
        assert_eq!(ledger.contiguous, 26, "a number after the recorded tail still counts");
    }

    fn claim(upto: u64, seen_at_ms: i64) -> Claim {
        Claim { upto, reported_at_ms: 5000, seen_at_ms }
    }

    #[test]
    fn a_claimed_count_still_missing_after_the_grace_is_a_hole_after_the_last_number() {
        let mut ledger = Ledger::default();
        ledger.account(&numbers(1, 10, 0));
        ledger.claim(claim(15, 1000));
        ledger.claim(claim(18, 1500));
        assert_eq!(ledger.claimed, Some(claim(15, 1000)), "the older outstanding claim is kept");
        assert_eq!(ledger.overdue_hole(1999, 1000), None, "999 ms < grace");
        let hole = ledger.overdue_hole(2000, 1000).expect("overdue");
        assert_eq!(hole, Hole { range: SeqRange { first: 11, last: 15 }, after_ms: 100, before_ms: 5000 });
        ledger.close_hole(&hole);
        assert_eq!((ledger.contiguous, ledger.claimed, ledger.overdue_hole(i64::MAX, 0)), (15, None, None));
        ledger.claim(claim(18, 3000));
        assert_eq!(ledger.claimed, Some(claim(18, 3000)), "a new claim once the old one is settled");
    }

    #[test]
    fn a_claim_filled_in_time_or_below_the_prefix_is_no_hole() {
        let mut ledger = Ledger::default();
        ledger.account(&numbers(1, 10, 0));
        ledger.claim(claim(10, 0));
        assert_eq!(ledger.claimed, None, "nothing missing: nothing claimed");
        ledger.claim(claim(14, 0));
        ledger.account(&numbers(11, 14, 500));
        assert_eq!((ledger.claimed, ledger.overdue_hole(i64::MAX, 0)), (None, None));
    }

    #[test]
    fn a_claim_over_a_pending_range_stops_at_it() {
        let mut ledger = Ledger::default();
        ledger.account(&numbers(1, 10, 0));
        ledger.account(&numbers(14, 15, 900));
        ledger.claim(claim(20, 100));
        let hole = ledger.overdue_hole(500, 300).expect("the claim is overdue, the pending range not yet");
        assert_eq!((hole.range, hole.before_ms), (SeqRange { first: 11, last: 13 }, 140));
        ledger.close_hole(&hole);
        let tail = ledger.overdue_hole(500, 300).expect("the rest of the claim");
        assert_eq!(tail.range, SeqRange { first: 16, last: 20 });
        assert_eq!(ledger.close_every_hole(), [], "a stopped sender's claim goes into its stop record instead");
    }
}
