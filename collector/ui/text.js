// How captured text is written for a person to read: times in UTC.

/** `2026-11-30T02:15:04.123+00:00` as `2026-11-30 02:15:04.123` in UTC (the served text when it is not a time). */
export function utcTime(text) {
  const at = new Date(text);
  return Number.isNaN(at.getTime()) ? String(text) : at.toISOString().replace('T', ' ').replace('Z', '');
}
