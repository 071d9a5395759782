// "Find in loaded events": a free-text search over the fields the page shows of each loaded
// event (time, who, identity source, method, path and query, type, status, user agent,
// client, uuid, alerts). It never asks the collector: it is bounded by what is loaded, and
// says so. For the whole trail, use the filters (`user_name`, `user_email`, ... of GET /audit).

import { utcTime, visible } from './text.js';

/** The text of `event` a search matches against, lower case: as shown, and escaped as shown. */
export function searchableText(event) {
  const payload = event.payload ?? {};
  const response = event.response ?? {};
  const fields = [
    utcTime(event.timestamp), event.uuid, event.type, event.user_email, event.user_name, event.user_id,
    event.db_user_id, event.identity_source, payload.method, payload.path, payload.queryString, payload.userAgent,
    payload.referer, payload.clientIp, payload.host, response.status, response.outcome, event.token_fingerprint,
    ...(Array.isArray(event.alerts) ? event.alerts : []),
  ];
  const text = fields.filter((field) => field !== undefined && field !== null).map(String).join('\n');
  return `${text}\n${visible(text)}`.toLowerCase();
}

/** True when `event` holds every word of `query` (case-insensitive); an empty query matches all. */
export function matches(event, query) {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return true;
  const text = searchableText(event);
  return words.every((word) => text.includes(word));
}
