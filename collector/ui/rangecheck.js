// "Check all that checkpoint N signs": walks the trail oldest first through /audit pages,
// from the first event after the checkpoint's retention anchor to the event it signed, and
// checks every link on the way (no event missing, each hash recomputed, each prevHash the
// previous hash, the first one the signed anchor's) and, at the end, that the chain reaches
// the hash the checkpoint signed. Only one event is held at a time, so memory stays flat; the
// walk is bounded (MAX_RANGE_EVENTS) and can be cancelled. This is what `audit-collector
// verify --url` does for one checkpoint; the command line also checks every older checkpoint.

import { getJson } from './api.js';
import { queryString } from './filters.js';
import { checkSignature, linkProblem } from './verify.js';

/** The most events the page walks; beyond, `audit-collector verify --url` is the tool. */
export const MAX_RANGE_EVENTS = 100_000;
const PAGE_SIZE = 100;
/** Problems listed before the walk only counts them. */
const MAX_PROBLEMS = 20;

/** The `from` of a page's `_links.next`, or null on the last page. */
function nextFrom(page) {
  const href = page?._links?.next?.href;
  return href ? new URL(href, window.location.href).searchParams.get('from') : null;
}

/**
 * Checks seq anchorSeq + 1 to lastSeq of `checkpoint`. `progress(checked, total)` is called
 * after each page; `cancelled()` is asked before each. The result: problems (first MAX_PROBLEMS,
 * and how many in all), how many events were checked, and whether the walk reached lastSeq.
 */
export async function checkSignedRange(checkpoint, key, { progress, cancelled }) {
  const first = checkpoint.anchorSeq + 1;
  const last = checkpoint.lastSeq;
  const total = last - first + 1;
  const problems = [];
  let problemCount = 0;
  const report = (problem) => {
    problemCount += 1;
    if (problems.length < MAX_PROBLEMS) problems.push(problem);
  };
  const signature = await checkSignature(checkpoint, key);
  if (signature?.problem) report({ text: signature.problem });
  let expected = first;
  let previousHash = checkpoint.anchorHash;
  let from = null;
  let reached = false;
  let stoppedBy = null;
  while (!reached) {
    if (cancelled()) {
      stoppedBy = 'cancelled';
      break;
    }
    const page = await getJson(`../../audit?${queryString({}, { sort: '+timestamp', pageSize: PAGE_SIZE, from })}`);
    for (const event of page.events ?? []) {
      const seq = event.chain?.seq;
      if (seq === undefined || seq < expected) continue;
      if (seq > last) {
        report({ seq: expected, text: `seq ${expected}: event MISSING: the trail jumps from seq ${expected - 1} to seq ${seq}, past seq ${last} that checkpoint ${checkpoint.number} signed` });
        reached = true;
        break;
      }
      if (seq > expected) report({ seq: expected, text: `seq ${expected}: event MISSING: the trail jumps from seq ${expected - 1} to seq ${seq}` });
      else if (event.chain.prevHash !== previousHash) {
        report({ seq, text: seq === first && checkpoint.anchorSeq > 0
          ? `seq ${seq}: retention ANCHOR does not match: its prevHash is not the anchor hash checkpoint ${checkpoint.number} signed for seq ${checkpoint.anchorSeq}`
          : `seq ${seq}: chain BROKEN: its prevHash is not the hash of seq ${seq - 1}` });
      }
      const problem = await linkProblem(event);
      if (problem) report(problem);
      previousHash = event.chain.hash;
      expected = seq + 1;
      if (seq === last) {
        if (event.chain.hash !== checkpoint.lastHash) {
          report({ seq, text: `seq ${seq}: does NOT MATCH checkpoint ${checkpoint.number}, which signed hash ${checkpoint.lastHash}` });
        }
        reached = true;
        break;
      }
    }
    progress(Math.min(expected - first, total), total);
    from = nextFrom(page);
    if (!reached && !from) {
      report({ seq: expected, text: `seq ${expected}: history TRUNCATED: the trail ends before seq ${last}, which checkpoint ${checkpoint.number} signed` });
      break;
    }
  }
  return { problems, problemCount, checked: Math.min(expected - first, total), total, complete: reached, stoppedBy, signatureNote: signature?.note ?? null };
}
