// The activity chart: events per hour or per day (UTC) split by outcome, from the
// collector's aggregate (GET /audit/activity), for the filters in force. Without `since`
// it shows the last 48 hours (hourly) or 30 days (daily), from the start of that hour or day. A bar's tooltip gives its counts;
// clicking a bar narrows the filters to its hour or day.

import { el, svg, clear } from './dom.js';
import { getJson } from './api.js';
import { queryString } from './filters.js';

const HOUR_MS = 3_600_000;
const DEFAULT_SPAN = { hour: 48 * HOUR_MS, day: 30 * 24 * HOUR_MS };
/** Bars drawn at most; a wider window is drawn from its newest end, and says so. */
const MAX_BARS = 400;
export const OUTCOMES = [
  { key: 'success', label: 'Success', cls: 'ok' },
  { key: 'failedLogin', label: 'Failed login (401)', cls: 'login' },
  { key: 'forbidden', label: 'Forbidden (403)', cls: 'forbidden' },
  { key: 'error', label: 'Errors', cls: 'error' },
];
const WIDTH = 800;
const HEIGHT = 170;
const PLOT = { left: 40, right: 8, top: 8, bottom: 22 };

/** The chart's window [first, last) in ms, aligned to whole buckets of `width`. */
export function windowOf(filters, bucket, now) {
  const width = bucket === 'day' ? 24 * HOUR_MS : HOUR_MS;
  const until = filters.until ? Date.parse(filters.until) : now;
  const since = filters.since ? Date.parse(filters.since) : until - DEFAULT_SPAN[bucket];
  const first = Math.floor(since / width) * width;
  const last = Math.ceil(until / width) * width;
  return { width, first, last: Math.max(last, first + width), defaulted: !filters.since };
}

function label(ms, bucket) {
  const text = new Date(ms).toISOString();
  return bucket === 'day' ? text.slice(5, 10) : `${text.slice(5, 10)} ${text.slice(11, 16)}`;
}

export class ActivityChart {
  constructor(elements, { onProblem, onSelect }) {
    this.dom = elements;
    this.onProblem = onProblem;
    this.onSelect = onSelect;
    this.generation = 0;
  }

  async load(filters, bucket) {
    const generation = ++this.generation;
    const span = windowOf(filters, bucket, Date.now());
    const asked = { ...filters };
    // /audit/activity counts nothing by path (it refuses `path_prefix`): the chart counts
    // the other filters, and says so.
    delete asked.path_prefix;
    this.pathIgnored = Boolean(filters.path_prefix);
    // The default window starts on a whole bucket, so the collector answers it from its
    // hourly rollup alone (an explicit `since` is asked as given: exact, edges counted).
    if (span.defaulted) asked.since = new Date(span.first).toISOString();
    try {
      const answer = await getJson(`../activity?${queryString(asked, { bucket })}`);
      if (generation === this.generation) this.draw(answer, span, bucket);
    } catch (problem) {
      if (generation === this.generation) this.onProblem(problem);
    }
  }

  draw(answer, span, bucket) {
    const counts = new Map(answer.buckets.map((one) => [Date.parse(one.start), one]));
    let first = span.first;
    const cut = (span.last - first) / span.width > MAX_BARS;
    if (cut) first = span.last - MAX_BARS * span.width;
    const bars = [];
    for (let start = first; start < span.last; start += span.width) bars.push({ start, ...(counts.get(start) ?? {}) });
    const totals = Object.fromEntries(OUTCOMES.map(({ key }) => [key, 0]));
    for (const one of answer.buckets) for (const { key } of OUTCOMES) totals[key] += one[key];

    const range = `${span.defaulted ? (bucket === 'day' ? 'last 30 days' : 'last 48 hours') : 'the filtered period'}, per ${bucket} (UTC)${cut ? `; the newest ${MAX_BARS} ${bucket}s drawn` : ''}${this.pathIgnored ? '; all paths (the path filter applies to the events below)' : ''}`;
    this.dom.range.textContent = range;
    clear(this.dom.legend);
    for (const { key, label: name, cls } of OUTCOMES) {
      this.dom.legend.append(
        el('li', { attrs: { 'data-outcome': key } }, [
          el('span', { cls: `swatch ${cls}` }),
          el('span', { text: name }),
          el('strong', { cls: 'count', text: totals[key] }),
        ]),
      );
    }

    const highest = Math.max(1, ...bars.map((bar) => bar.total ?? 0));
    const plotWidth = WIDTH - PLOT.left - PLOT.right;
    const plotHeight = HEIGHT - PLOT.top - PLOT.bottom;
    const step = plotWidth / bars.length;
    const chart = svg('svg', { attrs: { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', 'aria-label': `Events ${range}` } });
    for (const fraction of [0, 0.5, 1]) {
      const y = PLOT.top + plotHeight * (1 - fraction);
      chart.append(svg('line', { cls: 'grid', attrs: { x1: PLOT.left, x2: WIDTH - PLOT.right, y1: y, y2: y } }));
      chart.append(svg('text', { cls: 'axis', text: Math.round(highest * fraction), attrs: { x: PLOT.left - 6, y: y + 4, 'text-anchor': 'end' } }));
    }
    const every = Math.max(1, Math.ceil(bars.length / 8));
    bars.forEach((bar, index) => {
      const x = PLOT.left + index * step;
      const group = svg('g', { cls: 'bar', attrs: { 'data-start': new Date(bar.start).toISOString(), 'data-total': bar.total ?? 0 } });
      let y = PLOT.top + plotHeight;
      for (const { key, cls } of OUTCOMES) {
        const value = bar[key] ?? 0;
        if (!value) continue;
        const height = (value / highest) * plotHeight;
        y -= height;
        group.append(svg('rect', { cls, attrs: { x: x + step * 0.12, y, width: Math.max(1, step * 0.76), height } }));
      }
      group.append(svg('rect', { cls: 'hit', attrs: { x, y: PLOT.top, width: step, height: plotHeight } }));
      const summary = OUTCOMES.map(({ key, label: name }) => `${name}: ${bar[key] ?? 0}`).join(', ');
      group.append(svg('title', { text: `${label(bar.start, bucket)} UTC: ${bar.total ?? 0} events (${summary})` }));
      group.addEventListener('click', () =>
        this.onSelect(new Date(bar.start).toISOString(), new Date(bar.start + span.width).toISOString()),
      );
      chart.append(group);
      if (index % every === 0) {
        chart.append(svg('text', { cls: 'axis', text: label(bar.start, bucket), attrs: { x: x + step / 2, y: HEIGHT - 6, 'text-anchor': 'middle' } }));
      }
    });
    clear(this.dom.chart);
    this.dom.chart.append(chart);
  }
}
