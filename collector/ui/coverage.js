// Sequence-number ranges, so a verdict can say exactly which events it checked and which of
// the range a checkpoint signs it did not: a verdict that names only what it checked reads,
// beside "covers seq 1 to 12", as "1 to 12 intact". Pure functions, no page.

/** Sorted runs of consecutive numbers: [3, 1, 2, 7] → [[1, 3], [7, 7]]. */
export function runsOf(seqs) {
  const sorted = [...new Set(seqs)].sort((a, b) => a - b);
  const runs = [];
  for (const seq of sorted) {
    const last = runs[runs.length - 1];
    if (last && seq === last[1] + 1) last[1] = seq;
    else runs.push([seq, seq]);
  }
  return runs;
}

/** The parts of [first, last] that no run holds, as runs. */
export function gapsWithin(runs, first, last) {
  const gaps = [];
  let next = first;
  for (const [from, to] of runs) {
    if (to < next) continue;
    if (from > last) break;
    if (from > next) gaps.push([next, Math.min(from - 1, last)]);
    next = Math.max(next, to + 1);
  }
  if (next <= last) gaps.push([next, last]);
  return gaps;
}

/** How many numbers the runs hold. */
export function countOf(runs) {
  return runs.reduce((sum, [from, to]) => sum + (to - from + 1), 0);
}

/** "seq 4", "seq 1 to 12", "seq 1 to 3, 7, 9 to 12"; at most `limit` runs, then how many more. */
export function describeRuns(runs, limit = 6) {
  const parts = runs.slice(0, limit).map(([from, to]) => (from === to ? `${from}` : `${from} to ${to}`));
  if (runs.length > limit) parts.push(`and ${runs.length - limit} more runs`);
  return `seq ${parts.join(', ')}`;
}
