// The filters' URL (filters.js): a view written into the page's URL reads back as the same
// view, so a shared or reloaded link shows what its author saw.

import assert from 'node:assert/strict';
import test from 'node:test';

import { FILTER_NAMES, queryString, stateFromUrl, urlQuery } from '../filters.js';

test('every filter, the order and the bucket survive the round trip through the URL', () => {
  const state = {
    filters: {
      since: '2026-01-02T03:04:05Z',
      until: '2026-01-03T00:00:00Z',
      type: 'PactBroker::Api::Resources::Pact',
      userUuid: 'a b&c=d',
      user_email: 'someone+tag@example.com',
      method: 'DELETE',
      status: '403',
    },
    sort: '+timestamp',
    bucket: 'day',
  };
  assert.deepEqual(stateFromUrl(`?${urlQuery(state)}`), state);
});

test('the default view is an empty query, and an empty query is the default view', () => {
  const defaults = { filters: {}, sort: '-timestamp', bucket: 'hour' };
  assert.equal(urlQuery(defaults), '');
  assert.deepEqual(stateFromUrl(''), defaults);
});

test('unknown parameters and values are dropped, blank filters too', () => {
  const state = stateFromUrl('?type=%20&sort=sideways&bucket=week&evil=1&method=GET');
  assert.deepEqual(state, { filters: { method: 'GET' }, sort: '-timestamp', bucket: 'hour' });
});

test('the /audit query carries the filters in their order, then the extras', () => {
  const filters = Object.fromEntries([...FILTER_NAMES].reverse().map((name) => [name, `${name}-value`]));
  const query = queryString(filters, { bucket: 'hour', pageSize: undefined });
  assert.deepEqual([...new URLSearchParams(query).keys()], [...FILTER_NAMES, 'bucket']);
});
