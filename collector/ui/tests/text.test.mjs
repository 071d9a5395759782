// What the viewer writes for the records of lost delivery (text.js): a sender that stopped
// cleanly reads as such, in the muted style, and one that fell silent as a loss with its
// unknown window, so an auditor does not take every deploy for an incident.

import assert from 'node:assert/strict';
import test from 'node:test';

import { gapText } from '../text.js';

test('a sender that finished with nothing lost is a clean stop', () => {
  const line = gapText('AuditSidecar::SenderFinished', { lostEvents: 0, captured: 12, delivered: 12 });
  assert.equal(line.clean, true);
  assert.match(line.text, /stopped cleanly: all 12 of its events stored/);
});

test('a sender that fell silent is a loss with its unknown window, as is one that finished short', () => {
  const silent = gapText('AuditSidecar::SenderStopped', {
    lostEvents: 3, firstLostAt: 'a', lastLostAt: 'b', lastHeardAt: 'c', unknownUntil: 'd',
  });
  assert.equal(silent.clean, false);
  assert.match(silent.text, /^sender fell silent: 3 events lost between a and b, and an unknown number after c until d$/);
  const short = gapText('AuditSidecar::SenderFinished', { lostEvents: 2, firstLostAt: 'a', lastLostAt: 'b' });
  assert.deepEqual(short, { text: 'sender stopped: 2 events lost between a and b', clean: false });
  assert.equal(gapText('AuditSidecar::DeliveryGap', { lostEvents: 1, firstLostAt: 'a', lastLostAt: 'b' }).clean, false);
});
