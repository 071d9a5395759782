//! [`Ledger`]: which numbers of one sender are accounted for, pure and clock-free. A number
//! is accounted for once its event is stored or a gap record names it. Everything up to
//! `contiguous` is; above it, the accounted ranges that arrived early wait in `pending`
//! (sorted, disjoint, not touching `contiguous`), each with when it was first seen. The
//! numbers between `contiguous` and the first pending range are a hole: the sender sends
//! in order, so once a later number is here, the hole is filled only by a late gap record
//! or a batch committed out of order, and after a grace period the collector records it.

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

    /// The hole below the first pending range, if that range has waited `grace_ms`.
    pub fn overdue_hole(&self, now_ms: i64, grace_ms: i64) -> Option<Hole> {
        let first = self.pending.first()?;
        (now_ms.saturating_sub(first.seen_at_ms) >= grace_ms).then(|| self.hole_below(first))
    }

    /// Every hole up to the last pending range, oldest first, without waiting: for a
    /// sender that stopped. The ledger then accounts for all of them.
    pub fn close_every_hole(&mut self) -> Vec<Hole> {
        let mut holes = Vec::new();
        while let Some(hole) = self.overdue_hole(0, i64::MIN) {
            holes.push(hole);
            self.close_first_hole();
        }
        holes
    }

    /// Counts the hole below the first pending range as recorded, so the prefix moves on.
    pub fn close_first_hole(&mut self) {
        if let Some(first) = self.pending.first() {
            self.contiguous = first.range.first - 1;
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

    /// Moves pending ranges that now touch the prefix into it.
    fn absorb(&mut self) {
        while let Some(first) = self.pending.first().copied() {
            if first.range.first > self.contiguous.saturating_add(1) {
                break;
            }
            self.pending.remove(0);
            self.contiguous = self.contiguous.max(first.range.last);
            self.contiguous_at_ms = self.contiguous_at_ms.max(first.last_at_ms);
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
        assert_eq!(ledger, Ledger { contiguous: 10, contiguous_at_ms: 100, pending: Vec::new() });
    }

    #[test]
    fn a_hole_is_overdue_only_after_the_grace_and_names_its_numbers_and_times() {
        let mut ledger = Ledger::default();
        ledger.account(&numbers(1, 10, 0));
        ledger.account(&numbers(21, 30, 1000));
        assert_eq!(ledger.overdue_hole(1999, 1000), None, "999 ms < grace");
        let hole = ledger.overdue_hole(2000, 1000).expect("overdue");
        assert_eq!(hole, Hole { range: SeqRange { first: 11, last: 20 }, after_ms: 100, before_ms: 210 });
        ledger.close_first_hole();
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
}
