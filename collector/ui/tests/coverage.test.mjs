// The seq arithmetic behind a verdict (coverage.js): which runs were checked, which part of a
// checkpoint's range was not, and how they are written.

import assert from 'node:assert/strict';
import test from 'node:test';

import { countOf, describeRuns, gapsWithin, runsOf } from '../coverage.js';

test('runs of consecutive numbers, whatever their order and repeats', () => {
  assert.deepEqual(runsOf([7, 3, 1, 2, 2, 9, 8]), [[1, 3], [7, 9]]);
  assert.deepEqual(runsOf([]), []);
});

test('the gaps of a range are exactly what no run holds', () => {
  assert.deepEqual(gapsWithin([[51, 100]], 1, 100), [[1, 50]]);
  assert.deepEqual(gapsWithin([[3, 4], [8, 8]], 1, 10), [[1, 2], [5, 7], [9, 10]]);
  assert.deepEqual(gapsWithin([[1, 20]], 5, 10), [], 'a run past both ends leaves nothing');
  assert.deepEqual(gapsWithin([], 1, 3), [[1, 3]]);
  assert.deepEqual(gapsWithin([[1, 3]], 5, 4), [], 'an empty range has no gap');
});

test('runs are written by seq and counted', () => {
  assert.equal(describeRuns([[1, 12]]), 'seq 1 to 12');
  assert.equal(describeRuns([[1, 3], [7, 7], [9, 12]]), 'seq 1 to 3, 7, 9 to 12');
  assert.equal(describeRuns([[1, 1], [3, 3], [5, 5]], 2), 'seq 1, 3, and 1 more runs');
  assert.equal(countOf([[1, 3], [7, 7]]), 4);
});
