// The viewer's entry point: asks for the read token once per tab, then wires the filters
// (kept in the URL), the events table, the activity chart and the integrity panel.

import { ApiProblem, forgetToken, setToken, token, tokenMessage } from './api.js';
import { setText, show } from './dom.js';
import { fillForm, readForm, stateFromUrl, stateToUrl } from './filters.js';
import { EventList } from './events.js';
import { ActivityChart } from './chart.js';
import { IntegrityPanel } from './integrity.js';

const $ = (id) => document.getElementById(id);
const form = $('filters');
let state = stateFromUrl();

function reportProblem(problem) {
  if (problem instanceof ApiProblem && problem.isTokenProblem) {
    askForToken(tokenMessage(problem));
    return;
  }
  const banner = $('problem');
  setText(banner, problem instanceof ApiProblem ? `The collector answered: ${problem.message}` : String(problem));
  show(banner, true);
}

const events = new EventList(
  {
    body: $('events-body'),
    count: $('events-count'),
    empty: $('events-empty'),
    loadMore: $('load-more'),
    end: $('end-of-trail'),
    sentinel: $('scroll-sentinel'),
    follow: $('follow'),
    followState: $('follow-state'),
    detail: $('detail'),
    detailFacts: $('detail-facts'),
    detailJson: $('detail-json'),
    closeDetail: $('close-detail'),
    find: $('find'),
    findState: $('find-state'),
  },
  {
    onProblem: reportProblem,
    onChange: (shown) => {
      const types = $('known-types');
      const known = new Set(Array.from(types.options, (option) => option.value));
      for (const event of shown) {
        if (typeof event.type === 'string' && !known.has(event.type)) {
          known.add(event.type);
          const option = document.createElement('option');
          option.value = event.type;
          types.append(option);
        }
      }
    },
  },
);

const chart = new ActivityChart(
  { chart: $('activity-chart'), legend: $('activity-legend'), range: $('activity-range') },
  {
    onProblem: reportProblem,
    onSelect: (since, until) => {
      state = { ...state, filters: { ...state.filters, since, until } };
      refresh();
    },
  },
);

const integrity = new IntegrityPanel(
  { facts: $('checkpoint-facts'), verify: $('verify'), result: $('verify-result') },
  {
    onProblem: reportProblem,
    events: {
      current: () => events.events,
      rowOf: (seq) => events.rowOf(seq),
      isWholeTrailNewestFirst: () => events.isWholeTrailNewestFirst,
      loadThrough: (seq, maxPages) => events.loadThrough(seq, maxPages),
    },
  },
);

function refresh() {
  show($('problem'), false);
  show($('verify-result'), false);
  stateToUrl(state);
  fillForm(form, state);
  for (const button of document.querySelectorAll('[data-bucket]')) {
    button.setAttribute('aria-pressed', String(button.dataset.bucket === state.bucket));
  }
  events.reset(state);
  chart.load(state.filters, state.bucket);
  integrity.load();
}

function askForToken(message) {
  forgetToken();
  events.setFollowing(false);
  $('session-state').textContent = 'not signed in';
  show($('forget-token'), false);
  const error = $('token-error');
  setText(error, message ?? '');
  show(error, Boolean(message));
  const dialog = $('token-dialog');
  if (!dialog.open) dialog.showModal();
  $('token-input').focus();
}

function signedIn() {
  $('session-state').textContent = 'read token set for this tab';
  show($('forget-token'), true);
}

$('token-form').addEventListener('submit', (submit) => {
  submit.preventDefault();
  const value = $('token-input').value.trim();
  if (!value) return;
  setToken(value);
  $('token-input').value = '';
  $('token-dialog').close();
  signedIn();
  refresh();
});
$('token-dialog').addEventListener('cancel', (cancel) => cancel.preventDefault());
$('forget-token').addEventListener('click', () => askForToken());

form.addEventListener('submit', (submit) => {
  submit.preventDefault();
  state = { ...state, ...readForm(form) };
  refresh();
});
$('clear-filters').addEventListener('click', () => {
  state = { ...state, filters: {} };
  refresh();
});
for (const button of document.querySelectorAll('[data-bucket]')) {
  button.addEventListener('click', () => {
    state = { ...state, bucket: button.dataset.bucket };
    stateToUrl(state);
    for (const other of document.querySelectorAll('[data-bucket]')) {
      other.setAttribute('aria-pressed', String(other === button));
    }
    chart.load(state.filters, state.bucket);
  });
}

$('host').textContent = window.location.host;
fillForm(form, state);
if (token()) {
  signedIn();
  refresh();
} else {
  askForToken();
}
