// The checks behind "verify": an event's link (its hash recomputed from its canonical form
// with WebCrypto SHA-256), the links between events with consecutive sequence numbers, and a
// checkpoint's Ed25519 signature with the collector's public key (where this browser's
// WebCrypto has Ed25519). What the loaded events prove, and what they do not, is worked out
// with coverage.js: only the run of events that reaches the event a valid checkpoint signed
// is proven by the signature; other loaded runs are consistent with their own hashes only.

import { checkpointMessage, fromHex, linkHash, sha256Hex, storedEvent } from './canonical.js';
import { gapsWithin, runsOf } from './coverage.js';
import { utcTime } from './text.js';

export const NO_WEBCRYPTO = 'this page is not a secure context (serve it over HTTPS or from localhost), so the browser offers no WebCrypto';

/** Checks `checkpoint`'s signature; a finding (problem or note), or null when it verifies. */
export async function checkSignature(checkpoint, key) {
  if (!crypto.subtle) return { note: `the signature was not checked: ${NO_WEBCRYPTO}` };
  const raw = fromHex(key.publicKeyHex);
  if (!raw || raw.length !== 32) return { problem: 'the public key served is not 32 bytes of hex' };
  const keyId = (await sha256Hex(raw)).slice(0, 16);
  if (keyId !== key.keyId) return { problem: `the public key served hashes to key id ${keyId}, not the ${key.keyId} it claims` };
  if (checkpoint.keyId !== keyId) {
    return { problem: `checkpoint ${checkpoint.number} is signed by key ${checkpoint.keyId}, but the collector serves key ${keyId}` };
  }
  let publicKey;
  try {
    publicKey = await crypto.subtle.importKey('raw', raw, { name: 'Ed25519' }, false, ['verify']);
  } catch {
    return { note: "the signature was not checked: this browser's WebCrypto has no Ed25519; run audit-collector verify --url instead" };
  }
  const signature = fromHex(checkpoint.signature);
  const valid = signature && (await crypto.subtle.verify({ name: 'Ed25519' }, publicKey, signature, checkpointMessage(checkpoint)));
  return valid ? null : { problem: `checkpoint ${checkpoint.number}: SIGNATURE INVALID for key ${keyId}` };
}

/** The problem with `event`'s own link (its content against the hash recorded), or null. */
export async function linkProblem(event) {
  const { seq, hash, prevHash } = event.chain;
  let recomputed;
  try {
    recomputed = await linkHash(prevHash, seq, storedEvent(event));
  } catch (error) {
    return { seq, text: `seq ${seq}: its chain link is unreadable (${error.message})` };
  }
  if (recomputed === hash) return null;
  return { seq, text: `seq ${seq} (event ${event.uuid}, ${utcTime(event.timestamp)}): event CHANGED: its content hashes to ${recomputed}, but the chain recorded ${hash}` };
}

/**
 * Verifies `events` (as served) against their links and `checkpoint`. The verdict: problems,
 * notes, and the seq runs that are `proven` (linked without a break to the event the checkpoint
 * signs, whose signature verified), `consistent` (loaded, each matching its own hash and its
 * neighbours, but not linked to a signature) and `unchecked` (covered by the checkpoint, not loaded).
 */
export async function verifyEvents(events, checkpoint, key) {
  if (!crypto.subtle) {
    return { problems: [{ text: `nothing was checked: ${NO_WEBCRYPTO}` }], notes: [], proven: [], consistent: [], unchecked: [], newer: [] };
  }
  const problems = [];
  const notes = [];
  const linked = events.filter((event) => event.chain).sort((a, b) => a.chain.seq - b.chain.seq);
  // The collector serves every event with its link, so one without was changed on the way.
  if (linked.length < events.length) problems.push({ text: `${events.length - linked.length} events carry NO chain link (the collector serves every event with one): they were not checked` });
  for (const event of linked) {
    const problem = await linkProblem(event);
    if (problem) problems.push(problem);
  }
  for (let i = 1; i < linked.length; i += 1) {
    const [before, after] = [linked[i - 1], linked[i]];
    if (after.chain.seq === before.chain.seq + 1 && after.chain.prevHash !== before.chain.hash) {
      problems.push({ seq: after.chain.seq, text: `seq ${after.chain.seq}: chain BROKEN: its prevHash is not the hash of seq ${before.chain.seq}` });
    }
  }
  const loaded = runsOf(linked.map((event) => event.chain.seq));
  let proven = [];
  let consistent = loaded;
  let unchecked = [];
  let newer = [];
  if (checkpoint) {
    const first = checkpoint.anchorSeq + 1;
    const last = checkpoint.lastSeq;
    const signature = await checkSignature(checkpoint, key);
    if (signature?.problem) problems.push({ text: signature.problem });
    if (signature?.note) notes.push(signature.note);
    const signed = linked.find((event) => event.chain.seq === last);
    if (signed && signed.chain.hash !== checkpoint.lastHash) {
      problems.push({ seq: last, text: `seq ${last}: does NOT MATCH checkpoint ${checkpoint.number}, which signed hash ${checkpoint.lastHash}` });
    } else if (signed && !signature) {
      const run = loaded.find(([from, to]) => from <= last && last <= to);
      proven = [[Math.max(run[0], first), last]];
      notes.push(`seq ${last} carries the hash checkpoint ${checkpoint.number} signed`);
    } else if (!signed && linked.length) {
      notes.push(`checkpoint ${checkpoint.number} signs seq ${last}, which is not among the loaded events: no loaded event is proven by its signature`);
    }
    consistent = loaded.flatMap(([from, to]) => gapsWithin(proven, from, Math.min(to, last))).filter(([from, to]) => from <= to);
    unchecked = gapsWithin(loaded, first, last);
    newer = loaded.flatMap(([from, to]) => (to > last ? [[Math.max(from, last + 1), to]] : []));
  } else {
    notes.push('no checkpoint has been signed yet: nothing is proven by a signature');
  }
  problems.sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity));
  return { problems, notes, proven, consistent, unchecked, newer, checked: linked.length };
}
