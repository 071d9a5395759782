// Characters a reader cannot see (text.js, find.js): shown as their code points, in JSON as
// escapes that parse back to the same value, and found by the code point shown.

import assert from 'node:assert/strict';
import test from 'node:test';

import { matches } from '../find.js';
import { hasHidden, jsonEscape, splitHidden, visible } from '../text.js';

const SPOOF = 'admin\u202Egnp.exe';

test('bidi controls, zero-width, format and control characters are hidden; printable text in any script is not', () => {
  for (const char of ['\u202A', '\u202E', '\u2066', '\u2069', '\u200E', '\u200F', '\u200B', '\u200D', '\u2060', '\uFEFF', '\u00AD', '\u0000', '\t', '\u007F', '\u0085', '\u2028', '\u{E0001}', '\uD800']) {
    assert.ok(hasHidden(`a${char}b`), `U+${char.codePointAt(0).toString(16)}`);
  }
  for (const text of ['alice', 'Zoë', '日本語', 'עברית', '😀', 'a\u00A0b']) assert.equal(hasHidden(text), false, text);
});

test('each hidden character is written as its code point, the rest unchanged', () => {
  assert.equal(visible(SPOOF), 'admin⟨U+202E⟩gnp.exe');
  assert.equal(visible('tag\u{E0041}'), 'tag⟨U+E0041⟩');
  assert.deepEqual(splitHidden(SPOOF), ['admin', { hidden: 'U+202E', char: '\u202E' }, 'gnp.exe']);
});

test('in JSON a hidden character becomes an escape, and the text still parses to the same value', () => {
  const json = JSON.stringify({ user_name: SPOOF, tag: '\u{E0041}' }).replace(/[\u202E]|\u{E0041}/gu, jsonEscape);
  assert.equal(json, '{"user_name":"admin\\u202Egnp.exe","tag":"\\uDB40\\uDC41"}');
  assert.deepEqual(JSON.parse(json), { user_name: SPOOF, tag: '\u{E0041}' });
});

test('find matches every word in any case, and a hidden character by its code point', () => {
  const event = { uuid: 'u1', user_name: SPOOF, payload: { method: 'DELETE', path: '/pacticipants/Foo' }, response: { status: 204 } };
  assert.ok(matches(event, 'delete FOO'));
  assert.ok(matches(event, 'U+202E'));
  assert.ok(!matches(event, 'delete bar'));
  assert.ok(matches(event, '  '), 'an empty query matches all');
});
