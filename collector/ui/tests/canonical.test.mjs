// The chain's arithmetic in the viewer (canonical.js) against the test vector of
// docs/verifying.md, read from the document itself so the two cannot drift apart.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import test from 'node:test';

import { canonicalJson, checkpointMessage, fromHex, linkHash, storedEvent, toHex } from '../canonical.js';

const doc = readFileSync(new URL('../../../docs/verifying.md', import.meta.url), 'utf8');

/** The rest of the line of the vector that starts with `label`. */
function vector(label) {
  const line = doc.split('\n').find((one) => one.startsWith(label));
  assert.ok(line, `docs/verifying.md has no line starting ${JSON.stringify(label)}`);
  return line.slice(label.length).trim();
}

const event = JSON.parse(vector('event:'));
const GENESIS = '0'.repeat(64);

test('the canonical form of the vector event is the documented one', () => {
  assert.equal(canonicalJson(event), vector('canonical:'));
});

test('the link hashes of seq 1 and seq 2 are the documented ones', async () => {
  const first = vector('seq 1 (prevHash = 64 zeros):');
  const second = vector('seq 2 (same event again):');
  assert.equal(await linkHash(GENESIS, 1, event), first);
  assert.equal(await linkHash(first, 2, event), second);
});

test('a served event is hashed without its chain link, and a changed one hashes differently', async () => {
  const served = { ...event, chain: { seq: 1, hash: 'x', prevHash: GENESIS } };
  assert.equal(await linkHash(GENESIS, 1, storedEvent(served)), vector('seq 1 (prevHash = 64 zeros):'));
  assert.notEqual(await linkHash(GENESIS, 1, { ...event, user_email: 'someone.else@example.com' }), vector('seq 1 (prevHash = 64 zeros):'));
});

test('keys sort by UTF-16 code units, nested and in arrays, with no whitespace', () => {
  assert.equal(canonicalJson({ b: [{ d: 1, c: null }], a: 'é', '\u00e9': 2, Z: true }), '{"Z":true,"a":"é","b":[{"c":null,"d":1}],"é":2}');
});

test('a prevHash that is not 64 hex digits is refused, not hashed', async () => {
  await assert.rejects(linkHash('abc', 1, event), /64 hex digits/);
  assert.equal(fromHex('0g'), null);
  assert.equal(toHex(fromHex('00ff10')), '00ff10');
});

test("a checkpoint's signed message leaves out the signature and names the format", () => {
  const message = new TextDecoder().decode(checkpointMessage({ number: 1, signature: 'aa', lastSeq: 2 }));
  assert.equal(message, '{"format":"audit-sidecar/checkpoint/v1","lastSeq":2,"number":1}');
});
