// The events table: the first page of the filtered trail, further pages through `next`
// ("Load more", or scrolling to the end while Find hides nothing), follow mode (polling
// from the newest event in the trail's order), and an event's detail. Every field is
// rendered as text.

import { el, clear, show, fact, setJson } from './dom.js';
import { getJson } from './api.js';
import { queryString } from './filters.js';
import { gapText, utcTime } from './text.js';
import { matches } from './find.js';

const PAGE_SIZE = 50;
const FOLLOW_EVERY_MS = 2000;
/** Pages one poll may read before it waits for the next tick. */
const FOLLOW_PAGES_PER_POLL = 10;
const OUTCOME_CLASS = { success: 'ok', unauthenticated: 'login', forbidden: 'forbidden' };

/** The `from` of a `_links.next` href: pages are fetched on this origin whatever host the link names. */
function nextFrom(page) {
  const href = page?._links?.next?.href;
  return href ? new URL(href, window.location.href).searchParams.get('from') : null;
}

function auditUrl(filters, extra) {
  return `../../audit?${queryString(filters, extra)}`;
}

/** Who did it, as the event says: email, name or user id; else anonymous. */
export function whoOf(event) {
  return event.user_email ?? event.user_name ?? event.user_id ?? (event.db_user_id != null ? String(event.db_user_id) : null);
}

export class EventList {
  constructor(elements, { onProblem, onChange }) {
    this.dom = elements;
    this.onProblem = onProblem;
    this.onChange = onChange;
    this.events = [];
    this.seen = new Set();
    this.generation = 0;
    this.following = false;
    this.timer = null;
    this.loading = false;
    new IntersectionObserver((entries) => {
      if (entries.some((entry) => entry.isIntersecting)) this.sentinelReached();
    }).observe(elements.sentinel);
    elements.loadMore.addEventListener('click', () => this.loadMore());
    elements.follow.addEventListener('click', () => this.setFollowing(!this.following));
    elements.closeDetail.addEventListener('click', () => this.closeDetail());
    elements.find.addEventListener('input', () => this.applyFind());
  }

  /** Hides the rows of loaded events that do not hold the words in "Find", and says how many do. */
  applyFind() {
    const query = this.dom.find.value.trim();
    if (!query) {
      for (const row of this.dom.body.querySelectorAll('tr.unmatched')) row.classList.remove('unmatched');
      this.dom.findState.textContent = '';
      return;
    }
    let shown = 0;
    for (const event of this.events) {
      const row = this.dom.body.querySelector(`tr[data-uuid="${CSS.escape(event.uuid)}"]`);
      const hit = matches(event, query);
      row?.classList.toggle('unmatched', !hit);
      if (hit) shown += 1;
    }
    this.dom.findState.textContent = `${shown} of ${this.events.length} loaded events match${this.nextFrom ? '; events not loaded yet are not searched (load more, or use the filters above)' : ''}`;
  }

  /** Starts again with `state`'s filters and order. */
  async reset(state) {
    this.generation += 1;
    this.state = state;
    this.events = [];
    this.seen = new Set();
    this.nextFrom = null;
    this.loading = false;
    clear(this.dom.body);
    this.closeDetail();
    await this.fetchPage(null);
  }

  async loadMore() {
    if (this.nextFrom && !this.loading) await this.fetchPage(this.nextFrom);
  }

  /**
   * Scrolling to the end of the table loads the next page. Not while "Find" hides rows: the
   * table shrinks and the end comes into view without a scroll, and a page loaded then would
   * change what Find has searched under the reader's eyes (its message says how to load
   * more). Nor on an observation made before the rows above it arrived: the end must be in
   * view now.
   */
  sentinelReached() {
    if (this.dom.find.value.trim()) return;
    if (this.dom.sentinel.getBoundingClientRect().top > window.innerHeight) return;
    this.loadMore();
  }

  /** True when the view is the whole trail, newest first: its pages run back without gaps. */
  get isWholeTrailNewestFirst() {
    return this.state.sort === '-timestamp' && Object.keys(this.state.filters).length === 0;
  }

  /** Loads further pages until the event `seq` is shown, reading at most `maxPages`. */
  async loadThrough(seq, maxPages) {
    for (let pages = 0; pages < maxPages && this.nextFrom && !this.rowOf(seq); pages += 1) {
      await this.fetchPage(this.nextFrom);
    }
    return Boolean(this.rowOf(seq));
  }

  async fetchPage(from) {
    const generation = this.generation;
    this.loading = true;
    try {
      const page = await getJson(auditUrl(this.state.filters, { sort: this.state.sort, pageSize: PAGE_SIZE, from }));
      if (generation !== this.generation) return;
      this.nextFrom = nextFrom(page);
      this.append(page.events ?? []);
    } catch (problem) {
      if (generation === this.generation) this.onProblem(problem);
    } finally {
      if (generation === this.generation) {
        this.loading = false;
        this.updateFooter();
      }
    }
  }

  append(events) {
    for (const event of events) {
      if (this.seen.has(event.uuid)) continue;
      this.seen.add(event.uuid);
      this.events.push(event);
      this.dom.body.append(this.row(event));
    }
    this.applyFind();
    this.onChange(this.events);
  }

  /** New events in trail order, put where the view's order wants them. */
  addNewer(events) {
    const fresh = events.filter((event) => !this.seen.has(event.uuid));
    for (const event of fresh) {
      this.seen.add(event.uuid);
      const row = this.row(event);
      row.classList.add('fresh');
      if (this.state.sort === '-timestamp') {
        this.events.unshift(event);
        this.dom.body.prepend(row);
      } else {
        this.events.push(event);
        this.dom.body.append(row);
      }
    }
    if (fresh.length) {
      this.applyFind();
      this.onChange(this.events);
    }
    this.updateFooter();
    return fresh.length;
  }

  setFollowing(on) {
    this.following = on;
    this.dom.follow.setAttribute('aria-pressed', String(on));
    this.dom.follow.textContent = on ? 'Pause' : 'Follow';
    this.dom.followState.textContent = on ? 'following: new events appear as they are stored' : '';
    clearTimeout(this.timer);
    if (on) this.poll();
  }

  async poll() {
    if (!this.following) return;
    const generation = this.generation;
    try {
      const added = await this.readNewer();
      if (generation === this.generation && added > 0) {
        this.dom.followState.textContent = `following: ${added} new at ${utcTime(new Date().toISOString())}`;
      }
    } catch (problem) {
      this.onProblem(problem);
      if (problem.isTokenProblem) this.setFollowing(false);
    }
    if (this.following) this.timer = setTimeout(() => this.poll(), FOLLOW_EVERY_MS);
  }

  /** Reads the events stored after the newest one shown, oldest first (from=<uuid> is inclusive). */
  async readNewer() {
    const newestFirst = this.state.sort === '-timestamp';
    // Oldest first with pages still unread: the new events come at the end of those pages.
    if (!newestFirst && this.nextFrom) return 0;
    const generation = this.generation;
    const newest = newestFirst ? this.events[0] : this.events[this.events.length - 1];
    let from = newest?.uuid ?? null;
    let added = 0;
    for (let pages = 0; pages < FOLLOW_PAGES_PER_POLL; pages += 1) {
      const extra = from
        ? { sort: '+timestamp', pageSize: 100, from }
        : { sort: '-timestamp', pageSize: 100 };
      const page = await getJson(auditUrl(this.state.filters, extra));
      if (generation !== this.generation) return 0;
      const events = page.events ?? [];
      added += this.addNewer(from ? events : [...events].reverse());
      if (!from) break;
      from = nextFrom(page);
      if (!from) break;
    }
    return added;
  }

  updateFooter() {
    const count = this.events.length;
    this.dom.count.textContent = `${count} shown${this.nextFrom ? ', more below' : ''}`;
    show(this.dom.loadMore, Boolean(this.nextFrom));
    show(this.dom.end, !this.nextFrom && count > 0);
    show(this.dom.empty, count === 0 && !this.loading);
  }

  row(event) {
    const payload = event.payload ?? {};
    const response = event.response ?? {};
    const gap = event.gap;
    const who = whoOf(event);
    const record = gap ? gapText(event.type, gap) : null;
    const path = record
      ? record.text
      : `${payload.path ?? ''}${payload.queryString ? `?${payload.queryString}` : ''}`;
    const type = String(event.type ?? '');
    const outcome = String(response.outcome ?? '');
    const tr = el('tr', { attrs: { tabindex: 0, 'data-uuid': event.uuid, 'data-seq': event.chain?.seq } }, [
      el('td', { cls: 'time', text: utcTime(event.timestamp), attrs: { title: event.timestamp } }),
      el('td', { cls: 'who' }, [
        el('span', { text: who ?? 'anonymous', cls: who ? null : 'muted' }),
        el('span', { cls: 'sub', text: event.identity_source ?? payload.clientIp ?? '' }),
      ]),
      el('td', { cls: 'method', text: payload.method ?? '' }),
      el('td', { cls: record ? `path gap${record.clean ? ' clean' : ''}` : 'path', text: path, attrs: { title: path } }),
      el('td', { cls: 'type', text: type.split('::').pop(), attrs: { title: type } }),
      el('td', { cls: 'status' }, [
        el('span', {
          cls: `badge ${OUTCOME_CLASS[outcome] ?? (response.status ? 'error' : 'none')}`,
          text: response.status ?? '—',
          attrs: { title: outcome },
        }),
      ]),
    ]);
    const open = () => this.openDetail(event, tr);
    tr.addEventListener('click', open);
    tr.addEventListener('keydown', (key) => {
      if (key.key === 'Enter') open();
    });
    return tr;
  }

  /** The row of the event with sequence number `seq`, if shown. */
  rowOf(seq) {
    return this.dom.body.querySelector(`tr[data-seq="${Number(seq)}"]`);
  }

  openDetail(event, row) {
    for (const selected of this.dom.body.querySelectorAll('tr.selected')) selected.classList.remove('selected');
    row?.classList.add('selected');
    const payload = event.payload ?? {};
    const response = event.response ?? {};
    const facts = this.dom.detailFacts;
    clear(facts);
    fact(facts, 'uuid', event.uuid);
    fact(facts, 'time', event.timestamp);
    fact(facts, 'type', event.type);
    fact(facts, 'who', whoOf(event) ?? 'anonymous');
    fact(facts, 'identity from', event.identity_source ?? '—');
    if (event.token_fingerprint) fact(facts, 'token fingerprint', event.token_fingerprint);
    if (Array.isArray(event.alerts) && event.alerts.length) fact(facts, 'alerts', event.alerts.join(', '), 'alert');
    fact(facts, 'request', `${payload.method ?? ''} ${payload.path ?? ''}${payload.queryString ? `?${payload.queryString}` : ''}`);
    fact(facts, 'client', payload.clientIp ?? '—');
    fact(facts, 'user agent', payload.userAgent ?? '—');
    fact(facts, 'response', `${response.status ?? '—'} ${response.outcome ?? ''} ${response.durationMs != null ? `in ${response.durationMs} ms` : ''}`);
    if (event.chain) fact(facts, 'chain', `seq ${event.chain.seq}, hash ${event.chain.hash}`, 'mono');
    setJson(this.dom.detailJson, event);
    show(this.dom.detail, true);
  }

  closeDetail() {
    show(this.dom.detail, false);
    for (const selected of this.dom.body.querySelectorAll('tr.selected')) selected.classList.remove('selected');
  }
}
