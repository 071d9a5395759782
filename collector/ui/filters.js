// The filters: the form, the page's URL (so a view can be shared and reloaded) and the
// query strings of /audit and /audit/activity, which take the same filter names.

/** The /audit filter parameters, in the order links carry them. */
export const FILTER_NAMES = ['since', 'until', 'type', 'userUuid', 'user_email', 'user_name', 'path_prefix', 'method', 'status'];

/** The view's state from the page's URL: filters, order and chart bucket. */
export function stateFromUrl(search = window.location.search) {
  const params = new URLSearchParams(search);
  const state = { filters: {}, sort: params.get('sort') === '+timestamp' ? '+timestamp' : '-timestamp' };
  for (const name of FILTER_NAMES) {
    const value = (params.get(name) ?? '').trim();
    if (value) state.filters[name] = value;
  }
  state.bucket = params.get('bucket') === 'day' ? 'day' : 'hour';
  return state;
}

/** The page's query string for the state (without `?`); `stateFromUrl` reads it back. */
export function urlQuery(state) {
  const params = new URLSearchParams();
  for (const name of FILTER_NAMES) if (state.filters[name]) params.set(name, state.filters[name]);
  if (state.sort !== '-timestamp') params.set('sort', state.sort);
  if (state.bucket !== 'hour') params.set('bucket', state.bucket);
  return params.toString();
}

/** Writes the state into the page's URL without reloading. */
export function stateToUrl(state) {
  const query = urlQuery(state);
  window.history.replaceState(null, '', query ? `?${query}` : window.location.pathname);
}

/** The query string for /audit or /audit/activity: the filters plus `extra`. */
export function queryString(filters, extra = {}) {
  const params = new URLSearchParams();
  for (const name of FILTER_NAMES) if (filters[name]) params.set(name, filters[name]);
  for (const [name, value] of Object.entries(extra)) if (value !== undefined && value !== null) params.set(name, value);
  return params.toString();
}

/** Fills the form from the state. Times show as UTC wall-clock time. */
export function fillForm(form, state) {
  for (const name of FILTER_NAMES) {
    const value = state.filters[name] ?? '';
    form.elements[name].value = name === 'since' || name === 'until' ? toInputTime(value) : value;
  }
  form.elements.sort.value = state.sort;
}

/** The filters the form holds. */
export function readForm(form) {
  const filters = {};
  for (const name of FILTER_NAMES) {
    const raw = form.elements[name].value.trim();
    if (!raw) continue;
    filters[name] = name === 'since' || name === 'until' ? fromInputTime(raw) : raw;
  }
  return { filters, sort: form.elements.sort.value === '+timestamp' ? '+timestamp' : '-timestamp' };
}

/** `2026-01-02T03:04:05Z` (or any offset) as a datetime-local value in UTC. */
function toInputTime(text) {
  const at = new Date(text);
  return Number.isNaN(at.getTime()) ? '' : at.toISOString().slice(0, 19);
}

/** A datetime-local value, read as UTC, as RFC 3339. */
function fromInputTime(value) {
  const withSeconds = value.length === 16 ? `${value}:00` : value;
  return `${withSeconds}Z`;
}
