// Integrity: the newest signed checkpoint, and "verify what I see": recompute the hash of
// every loaded event from its canonical form (WebCrypto SHA-256), check that events with
// consecutive sequence numbers link to each other, that the event a checkpoint names has the
// hash it signed, and the checkpoint's Ed25519 signature with the collector's public key
// (where this browser's WebCrypto has Ed25519). The first problem found is named, and its
// row is marked. What the check cannot prove (events between those loaded, a key that is
// not the operator's) is said in the result.

import { el, clear, show, fact } from './dom.js';
import { getJson } from './api.js';
import { checkpointMessage, fromHex, linkHash, sha256Hex, storedEvent } from './canonical.js';
import { utcTime } from './events.js';

/** Pages of events "verify" may load to reach the event the newest checkpoint signed. */
const MAX_BRIDGE_PAGES = 20;

/** The newest signed checkpoint, or null before the first. */
async function newestCheckpoint() {
  const page = await getJson('../checkpoints?latest=true');
  return page.checkpoints[0] ?? null;
}

/** Checks `checkpoint`'s signature; a finding (problem or note), or null when it verifies. */
async function checkSignature(checkpoint, key) {
  if (!crypto.subtle) {
    return { note: 'the signature was not checked: this page is not a secure context (serve it over HTTPS or from localhost), so the browser offers no WebCrypto' };
  }
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

/** Verifies `events` (as served) against their links and `checkpoint`; a verdict. */
export async function verifyEvents(events, checkpoint, key) {
  if (!crypto.subtle) {
    return { ok: false, problems: [{ text: 'nothing was checked: this page is not a secure context (serve it over HTTPS or from localhost), so the browser offers no WebCrypto' }], notes: [] };
  }
  const problems = [];
  const notes = [];
  const linked = events.filter((event) => event.chain).sort((a, b) => a.chain.seq - b.chain.seq);
  if (linked.length < events.length) notes.push(`${events.length - linked.length} events carry no chain link (stored before the chain existed) and were not checked`);
  for (const event of linked) {
    const { seq, hash, prevHash } = event.chain;
    let recomputed;
    try {
      recomputed = await linkHash(prevHash, seq, storedEvent(event));
    } catch (error) {
      problems.push({ seq, text: `seq ${seq}: its chain link is unreadable (${error.message})` });
      continue;
    }
    if (recomputed !== hash) {
      problems.push({ seq, text: `seq ${seq} (event ${event.uuid}, ${utcTime(event.timestamp)}): event CHANGED: its content hashes to ${recomputed}, but the chain recorded ${hash}` });
    }
  }
  let runs = 0;
  for (let i = 0; i < linked.length; i += 1) {
    const [before, after] = [linked[i - 1], linked[i]];
    if (!before || after.chain.seq !== before.chain.seq + 1) {
      runs += 1;
      continue;
    }
    if (after.chain.prevHash !== before.chain.hash) {
      problems.push({ seq: after.chain.seq, text: `seq ${after.chain.seq}: chain BROKEN: its prevHash is not the hash of seq ${before.chain.seq}` });
    }
  }
  if (runs > 1) notes.push(`the loaded events are ${runs} separate runs of the trail (filters, or pages not loaded): each event is checked against its own link, and links only between neighbours`);
  if (checkpoint) {
    const signature = await checkSignature(checkpoint, key);
    if (signature?.problem) problems.push({ text: signature.problem });
    if (signature?.note) notes.push(signature.note);
    const signed = linked.find((event) => event.chain.seq === checkpoint.lastSeq);
    if (signed && signed.chain.hash !== checkpoint.lastHash) {
      problems.push({ seq: signed.chain.seq, text: `seq ${signed.chain.seq}: does NOT MATCH checkpoint ${checkpoint.number}, which signed hash ${checkpoint.lastHash}` });
    } else if (signed) {
      notes.push(`seq ${signed.chain.seq} carries the hash checkpoint ${checkpoint.number} signed`);
      const newer = linked.filter((event) => event.chain.seq > checkpoint.lastSeq).length;
      if (newer) notes.push(`${newer} loaded events are newer than checkpoint ${checkpoint.number}: the chain from seq ${checkpoint.lastSeq} proves them until the next checkpoint signs them`);
    } else if (linked.length) {
      notes.push(`checkpoint ${checkpoint.number} signs seq ${checkpoint.lastSeq}, which is not among the loaded events: they are proven by the chain only`);
    }
  } else {
    notes.push('no checkpoint has been signed yet: the events are proven by the chain only');
  }
  problems.sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity));
  return { ok: problems.length === 0, checked: linked.length, problems, notes };
}

export class IntegrityPanel {
  constructor(elements, { onProblem, events }) {
    this.dom = elements;
    this.onProblem = onProblem;
    this.events = events;
    elements.verify.addEventListener('click', () => this.verify());
  }

  async load() {
    clear(this.dom.facts);
    try {
      const [checkpoint, key] = await Promise.all([newestCheckpoint(), getJson('../public-key', { withToken: false })]);
      this.checkpoint = checkpoint;
      this.key = key;
      if (checkpoint) {
        fact(this.dom.facts, 'newest checkpoint', `number ${checkpoint.number}, signed ${utcTime(new Date(checkpoint.issuedAtMs).toISOString())} UTC`);
        fact(this.dom.facts, 'covers', `seq ${checkpoint.anchorSeq + 1} to ${checkpoint.lastSeq}`);
      } else {
        fact(this.dom.facts, 'newest checkpoint', 'none yet (the collector signs one every few minutes when the trail grew)');
      }
      fact(this.dom.facts, 'key id', key.keyId, 'mono');
      fact(this.dom.facts, 'compare', 'with the key your operator gave you (audit-collector public-key)', 'muted');
    } catch (problem) {
      this.onProblem(problem);
    }
  }

  async verify() {
    const { result } = this.dom;
    for (const row of document.querySelectorAll('tr.broken')) row.classList.remove('broken');
    result.className = 'verdict';
    result.textContent = 'verifying…';
    show(result, true);
    await this.load();
    const checkpoint = this.checkpoint;
    // On the whole trail, newest first, load back to the event the checkpoint signed, so the
    // signature covers the chain that reaches what is shown.
    if (checkpoint && this.events.isWholeTrailNewestFirst()) {
      await this.events.loadThrough(checkpoint.lastSeq, MAX_BRIDGE_PAGES);
    }
    const events = this.events.current();
    const verdict = await verifyEvents(events, this.checkpoint, this.key ?? {});
    clear(result);
    result.classList.add(verdict.ok ? 'pass' : 'fail');
    result.append(
      el('strong', {
        text: verdict.ok
          ? `Intact: ${verdict.checked} loaded events verify`
          : `NOT INTACT: ${verdict.problems.length} problem${verdict.problems.length === 1 ? '' : 's'} in what is loaded`,
      }),
    );
    const list = el('ul');
    for (const problem of verdict.problems) list.append(el('li', { cls: 'problem', text: problem.text }));
    for (const note of verdict.notes) list.append(el('li', { cls: 'note', text: note }));
    result.append(list);
    for (const problem of verdict.problems) {
      const row = problem.seq !== undefined ? this.events.rowOf(problem.seq) : null;
      row?.classList.add('broken');
    }
    const first = verdict.problems.find((problem) => problem.seq !== undefined);
    if (first) this.events.rowOf(first.seq)?.scrollIntoView({ block: 'center' });
  }
}
