// How captured text is written for a person to read: times in UTC.

/** `2026-11-30T02:15:04.123+00:00` as `2026-11-30 02:15:04.123` in UTC (the served text when it is not a time). */
export function utcTime(text) {
  const at = new Date(text);
  return Number.isNaN(at.getTime()) ? String(text) : at.toISOString().replace('T', ' ').replace('Z', '');
}

/**
 * What a record of lost or stopped delivery says, for the path column: `clean` when nothing
 * was lost and nothing is unknown (a sender that stopped cleanly, or was heard again).
 */
export function gapText(type, gap) {
  const kind = String(type ?? '').split('::').pop();
  const unknown = gap.unknownUntil ? `, and an unknown number after ${gap.lastHeardAt} until ${gap.unknownUntil}` : '';
  if (kind === 'SenderFinished' && !gap.lostEvents) {
    return { text: `sender stopped cleanly: all ${gap.captured ?? 0} of its events stored, nothing unknown`, clean: true };
  }
  if (kind === 'SenderResumed') return { text: 'sender heard again after it was recorded as stopped', clean: true };
  const what = kind === 'SenderStopped' ? 'sender fell silent' : kind === 'SenderFinished' ? 'sender stopped' : 'delivery gap';
  return {
    text: `${what}: ${gap.lostEvents} events lost between ${gap.firstLostAt} and ${gap.lastLostAt}${unknown}`,
    clean: false,
  };
}
