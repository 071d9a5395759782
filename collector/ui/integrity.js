// Integrity: the newest signed checkpoint, "verify what I see" over the loaded events, and
// "check all that checkpoint N signs" (rangecheck.js). A verdict states exactly which seq
// runs were proven by the signature, which were only consistent with their own hashes, which
// of the signed range were NOT checked, and which are newer than any signature; it says
// "Intact" only when the whole signed range was checked. The first problem found is named,
// and its row is marked.

import { el, clear, show, fact } from './dom.js';
import { getJson } from './api.js';
import { countOf, describeRuns } from './coverage.js';
import { checkSignedRange, MAX_RANGE_EVENTS } from './rangecheck.js';
import { utcTime } from './text.js';
import { verifyEvents } from './verify.js';

/** Pages of events "verify" may load to reach the event the newest checkpoint signed. */
const MAX_BRIDGE_PAGES = 20;

/** The newest signed checkpoint, or null before the first. */
async function newestCheckpoint() {
  const page = await getJson('../checkpoints?latest=true');
  return page.checkpoints[0] ?? null;
}

const plural = (n, one, many = `${one}s`) => `${n.toLocaleString('en')} ${n === 1 ? one : many}`;

/** The verdict's headline and class for a check of the loaded events. */
function headline(verdict, checkpoint) {
  if (verdict.problems.length) {
    return { cls: 'fail', text: `NOT INTACT: ${plural(verdict.problems.length, 'problem')} in what was checked` };
  }
  if (checkpoint && verdict.proven.length && !verdict.unchecked.length && !verdict.consistent.length) {
    return { cls: 'pass', text: `Intact: ${describeRuns(verdict.proven)}, all that checkpoint ${checkpoint.number} signs, verify against its signature` };
  }
  return { cls: 'partial', text: `No problem in the ${plural(verdict.checked, 'loaded event')}, but NOT everything was checked (below)` };
}

/** One line per kind of run: what was proven, what only matched itself, what was not checked. */
function coverageLines(verdict, checkpoint) {
  const lines = [];
  const number = checkpoint?.number;
  if (verdict.proven.length) lines.push({ cls: 'checked', text: `proven by checkpoint ${number}'s signature: ${describeRuns(verdict.proven)} (${plural(countOf(verdict.proven), 'event')})` });
  if (verdict.consistent.length) {
    lines.push({ cls: 'unproven', text: `checked against their own hashes only, NOT linked to a signature: ${describeRuns(verdict.consistent)} (${plural(countOf(verdict.consistent), 'event')}); whoever holds the database could have rewritten them with their hashes` });
  }
  if (verdict.unchecked.length) {
    lines.push({ cls: 'unchecked', text: `NOT checked: ${describeRuns(verdict.unchecked)} (${plural(countOf(verdict.unchecked), 'event')} that checkpoint ${number} signs, not loaded)` });
  }
  if (verdict.newer.length) {
    lines.push({ cls: 'unproven', text: `newer than checkpoint ${number}: ${describeRuns(verdict.newer)}: chain-consistent only, until a checkpoint signs them` });
  }
  return lines;
}

export class IntegrityPanel {
  constructor(elements, { onProblem, events }) {
    this.dom = elements;
    this.onProblem = onProblem;
    this.events = events;
    this.walk = null;
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
        fact(this.dom.facts, 'signs', `seq ${checkpoint.anchorSeq + 1} to ${checkpoint.lastSeq} (not checked until you verify)`);
      } else {
        fact(this.dom.facts, 'newest checkpoint', 'none yet (the collector signs one every few minutes when the trail grew)');
      }
      fact(this.dom.facts, 'key id', key.keyId, 'mono');
      fact(this.dom.facts, 'compare', 'with the key your operator gave you (audit-collector public-key)', 'muted');
    } catch (problem) {
      this.onProblem(problem);
    }
  }

  /** Starts a verdict: clears marks and any running walk, says what is happening. */
  begin(text) {
    if (this.walk) this.walk.cancelled = true;
    this.walk = null;
    for (const row of document.querySelectorAll('tr.broken')) row.classList.remove('broken');
    const { result } = this.dom;
    clear(result);
    result.className = 'verdict';
    result.textContent = text;
    show(result, true);
    return result;
  }

  /** Writes a verdict: headline, problems, lines, notes; marks and scrolls to the first bad row. */
  render({ cls, text }, problems, lines, notes, action) {
    const { result } = this.dom;
    clear(result);
    result.className = `verdict ${cls}`;
    result.append(el('strong', { text }));
    const list = el('ul');
    for (const problem of problems) list.append(el('li', { cls: 'problem', text: problem.text }));
    for (const line of lines) list.append(el('li', { cls: line.cls, text: line.text }));
    for (const note of notes) list.append(el('li', { cls: 'note', text: note }));
    result.append(list);
    if (action) result.append(action);
    for (const problem of problems) {
      if (problem.seq !== undefined) this.events.rowOf(problem.seq)?.classList.add('broken');
    }
    const first = problems.find((problem) => problem.seq !== undefined);
    if (first) this.events.rowOf(first.seq)?.scrollIntoView({ block: 'center' });
  }

  async verify() {
    this.begin('verifying…');
    await this.load();
    const checkpoint = this.checkpoint;
    // On the whole trail, newest first, load back to the event the checkpoint signed, so the
    // signature covers the chain that reaches what is shown.
    if (checkpoint && this.events.isWholeTrailNewestFirst()) {
      await this.events.loadThrough(checkpoint.lastSeq, MAX_BRIDGE_PAGES);
    }
    const verdict = await verifyEvents(this.events.current(), checkpoint, this.key ?? {});
    const lines = coverageLines(verdict, checkpoint);
    const action = checkpoint && (verdict.unchecked.length || verdict.consistent.length) ? this.rangeButton(checkpoint) : null;
    this.render(headline(verdict, checkpoint), verdict.problems, lines, verdict.notes, action);
  }

  /** The offer to check every event the checkpoint signs, or why the page will not. */
  rangeButton(checkpoint) {
    const total = checkpoint.lastSeq - checkpoint.anchorSeq;
    if (total > MAX_RANGE_EVENTS) {
      return el('p', { cls: 'note', text: `checkpoint ${checkpoint.number} signs ${plural(total, 'event')}, more than this page checks (${MAX_RANGE_EVENTS.toLocaleString('en')}): run audit-collector verify --url for all of them` });
    }
    const button = el('button', { attrs: { type: 'button', id: 'verify-range' }, text: `Check all ${plural(total, 'event')} checkpoint ${checkpoint.number} signs (seq ${checkpoint.anchorSeq + 1} to ${checkpoint.lastSeq})` });
    button.addEventListener('click', () => this.checkRange(checkpoint));
    return el('div', { cls: 'verdict-actions' }, [button]);
  }

  async checkRange(checkpoint) {
    const result = this.begin('');
    const walk = { cancelled: false };
    this.walk = walk;
    const status = el('span', { text: 'checking…' });
    const bar = el('progress', { attrs: { max: 1, value: 0 } });
    const cancel = el('button', { attrs: { type: 'button', id: 'cancel-range' }, text: 'Cancel' });
    cancel.addEventListener('click', () => {
      walk.cancelled = true;
    });
    result.append(el('div', { cls: 'progress' }, [bar, status, cancel]));
    let outcome;
    try {
      outcome = await checkSignedRange(checkpoint, this.key ?? {}, {
        cancelled: () => walk.cancelled,
        progress: (checked, total) => {
          bar.max = total;
          bar.value = checked;
          status.textContent = `checked ${checked.toLocaleString('en')} of ${plural(total, 'event')}`;
        },
      });
    } catch (problem) {
      if (this.walk === walk) this.render({ cls: 'partial', text: 'The check stopped: NOT everything was checked' }, [], [], [String(problem.message ?? problem)], this.rangeButton(checkpoint));
      return;
    }
    if (this.walk !== walk) return;
    this.walk = null;
    const range = `seq ${checkpoint.anchorSeq + 1} to ${checkpoint.lastSeq}`;
    const notes = outcome.signatureNote ? [outcome.signatureNote] : [];
    if (outcome.problemCount > outcome.problems.length) notes.unshift(`${outcome.problemCount - outcome.problems.length} more problems not listed`);
    if (outcome.problemCount) {
      this.render({ cls: 'fail', text: `NOT INTACT: ${plural(outcome.problemCount, 'problem')} in ${range}, which checkpoint ${checkpoint.number} signs` }, outcome.problems, [], notes);
    } else if (!outcome.complete || outcome.signatureNote) {
      const why = outcome.stoppedBy === 'cancelled' ? 'cancelled' : 'the signature was not checked';
      const lines = [{ cls: 'unchecked', text: `NOT checked: seq ${checkpoint.anchorSeq + 1 + outcome.checked} to ${checkpoint.lastSeq}` }];
      this.render({ cls: 'partial', text: `Stopped (${why}) after ${plural(outcome.checked, 'event')} without a problem: NOT everything was checked` }, [], outcome.complete ? [] : lines, notes, this.rangeButton(checkpoint));
    } else {
      this.render({ cls: 'pass', text: `Intact: all ${plural(outcome.total, 'event')} checkpoint ${checkpoint.number} signs (${range}) verify against its signature` }, [], [{ cls: 'checked', text: `checked: ${range}, every link from ${checkpoint.anchorSeq === 0 ? 'the first event' : `the retention anchor (seq ${checkpoint.anchorSeq})`} to the hash the checkpoint signed` }], [
        `events after seq ${checkpoint.lastSeq} are not signed yet; older checkpoints and key handovers: audit-collector verify --url`,
      ]);
    }
  }
}
