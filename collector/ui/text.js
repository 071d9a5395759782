// How captured text is written for a person to read. A client chooses every captured field,
// and characters a reader cannot see can make it read as something else: a right-to-left
// override turns `admin` U+202E `gnp.exe` into "admin" followed by "exe.png", zero-width
// characters make two different names look the same. So every such character is shown as
// its code point, e.g. ⟨U+202E⟩, while the value itself (the evidence) is never changed.

/**
 * What is shown escaped: control characters (C0, DEL, C1), format characters (bidi embeddings,
 * overrides, isolates and marks, zero-width spaces and joiners, the word joiner, the BOM, soft
 * hyphen, tags, ...), line and paragraph separators, and lone surrogates.
 */
const HIDDEN = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}]/u;
const HIDDEN_ALL = new RegExp(HIDDEN.source, 'gu');

/** True when `text` holds a character a reader cannot see. */
export function hasHidden(text) {
  return HIDDEN.test(text);
}

/** `U+202E` for a character. */
export function codePointOf(char) {
  return `U+${char.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

/** `text` as pieces: plain text as strings, each hidden character as { hidden: 'U+202E' }. */
export function splitHidden(text) {
  const pieces = [];
  let from = 0;
  for (const match of text.matchAll(HIDDEN_ALL)) {
    if (match.index > from) pieces.push(text.slice(from, match.index));
    pieces.push({ hidden: codePointOf(match[0]), char: match[0] });
    from = match.index + match[0].length;
  }
  if (from < text.length) pieces.push(text.slice(from));
  return pieces;
}

/** `text` with each hidden character written ⟨U+202E⟩: for attributes, which cannot be styled. */
export function visible(text) {
  return text.replace(HIDDEN_ALL, (char) => `⟨${codePointOf(char)}⟩`);
}

/** A hidden character as the JSON escape of its UTF-16 code units (`\u202E`): still the same JSON. */
export function jsonEscape(char) {
  return Array.from({ length: char.length }, (_, i) => `\\u${char.charCodeAt(i).toString(16).toUpperCase().padStart(4, '0')}`).join('');
}

/** `2026-11-30T02:15:04.123+00:00` as `2026-11-30 02:15:04.123` in UTC (the served text when it is not a time). */
export function utcTime(text) {
  const at = new Date(text);
  return Number.isNaN(at.getTime()) ? String(text) : at.toISOString().replace('T', ' ').replace('Z', '');
}

/**
 * What a record of lost or stopped delivery says, for the path column: `clean` when nothing
 * was lost and nothing is unknown (a sender that stopped cleanly, or was heard again).
 */
export function gapText(type, gap) {
  const kind = String(type ?? '').split('::').pop();
  const unknown = gap.unknownUntil ? `, and an unknown number after ${gap.lastHeardAt} until ${gap.unknownUntil}` : '';
  if (kind === 'SenderFinished' && !gap.lostEvents) {
    return { text: `sender stopped cleanly: all ${gap.captured ?? 0} of its events stored, nothing unknown`, clean: true };
  }
  if (kind === 'SenderResumed') return { text: 'sender heard again after it was recorded as stopped', clean: true };
  const what = kind === 'SenderStopped' ? 'sender fell silent' : kind === 'SenderFinished' ? 'sender stopped' : 'delivery gap';
  return {
    text: `${what}: ${gap.lostEvents} events lost between ${gap.firstLostAt} and ${gap.lastLostAt}${unknown}`,
    clean: false,
  };
}
