// The chart's window (chart.js): which buckets the chart asks for and draws.

import assert from 'node:assert/strict';
import test from 'node:test';

import { windowOf } from '../chart.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const now = Date.parse('2026-03-04T05:06:07.890Z');

test('without since, hourly shows the last 48 hours from the start of an hour', () => {
  const span = windowOf({}, 'hour', now);
  assert.equal(span.width, HOUR);
  assert.equal(span.defaulted, true);
  assert.equal(new Date(span.first).toISOString(), '2026-03-02T05:00:00.000Z');
  assert.equal(new Date(span.last).toISOString(), '2026-03-04T06:00:00.000Z');
});

test('without since, daily shows the last 30 days from the start of a day', () => {
  const span = windowOf({}, 'day', now);
  assert.equal(span.width, DAY);
  assert.equal(new Date(span.first).toISOString(), '2026-02-02T00:00:00.000Z');
  assert.equal(new Date(span.last).toISOString(), '2026-03-05T00:00:00.000Z');
});

test('since and until widen to whole buckets and the window is never empty', () => {
  const span = windowOf({ since: '2026-03-01T10:30:00Z', until: '2026-03-01T12:00:00Z' }, 'hour', now);
  assert.equal(span.defaulted, false);
  assert.equal(new Date(span.first).toISOString(), '2026-03-01T10:00:00.000Z');
  assert.equal(new Date(span.last).toISOString(), '2026-03-01T12:00:00.000Z');
  const instant = windowOf({ since: '2026-03-01T10:00:00Z', until: '2026-03-01T10:00:00Z' }, 'day', now);
  assert.equal(instant.last - instant.first, DAY);
});

test('an until without since shows the default span before it', () => {
  const span = windowOf({ until: '2026-01-10T00:00:00Z' }, 'hour', now);
  assert.equal((span.last - span.first) / HOUR, 48);
});
