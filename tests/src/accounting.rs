//! Does the trail account for every request Envoy answered? Each one must be stored, or
//! counted lost by a recorded gap (`SenderGap`, `SenderStopped`, `SenderFinished`, the
//! filter's `DeliveryGap`), or have been answered inside the unknown tail of a sender the
//! collector recorded as stopped (after its last report). A sender recorded as finished
//! has no unknown tail. The property every way of stopping or
//! reconfiguring Envoy is held to (`tests/tests/completeness.rs`, `envoy_restarts.rs`).

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use audit_event::sender::{SENDER_FINISHED_TYPE, SENDER_GAP_TYPE, SENDER_STOPPED_TYPE};
use audit_event::timestamp::parse_rfc3339_millis;
use audit_event::{AuditEvent, DELIVERY_GAP_TYPE};

use crate::client::walk_trail;
use crate::load::Answered;

/// `on_log` runs just after the answer is sent: an answer up to this long before a report
/// may be captured after it, so a tail is taken to start that much earlier.
const CAPTURE_AFTER_ANSWER_MS: i64 = 100;

/// Every event of the trail at `collector_url`.
pub fn trail(collector_url: &str, read_token: &str) -> Result<Vec<AuditEvent>> {
    Ok(walk_trail(collector_url, read_token, 100).context("reading the trail")?.0)
}

/// The events of one type.
pub fn of_type<'a>(events: &'a [AuditEvent], event_type: &'a str) -> impl Iterator<Item = &'a AuditEvent> + 'a {
    events.iter().filter(move |event| event.event_type == event_type)
}

/// The events that records of `event_type` say were lost.
pub fn lost_in(events: &[AuditEvent], event_type: &str) -> u64 {
    of_type(events, event_type).map(|event| event.gap.as_ref().map_or(0, |gap| gap.lost_events)).sum()
}

/// The events every kind of gap record says were lost.
pub fn recorded_lost(events: &[AuditEvent]) -> u64 {
    [SENDER_STOPPED_TYPE, SENDER_FINISHED_TYPE, SENDER_GAP_TYPE, DELIVERY_GAP_TYPE]
        .iter()
        .map(|kind| lost_in(events, kind))
        .sum()
}

/// How often each user agent starting with `prefix` was stored.
pub fn stored_markers<'a>(events: &'a [AuditEvent], prefix: &str) -> HashMap<&'a str, usize> {
    let mut found = HashMap::new();
    for agent in events.iter().filter_map(|e| e.payload.user_agent.as_deref()).filter(|a| a.starts_with(prefix)) {
        *found.entry(agent).or_insert(0) += 1;
    }
    found
}

/// The senders that stored events whose user agent starts with `prefix`.
pub fn senders_of(events: &[AuditEvent], prefix: &str) -> Vec<String> {
    let mut senders: Vec<String> = events
        .iter()
        .filter(|e| e.payload.user_agent.as_deref().is_some_and(|a| a.starts_with(prefix)))
        .filter_map(|e| e.sender.as_ref().map(|sender| sender.id.clone()))
        .collect();
    senders.sort();
    senders.dedup();
    senders
}

/// The collector's record that `sender` stopped (fell silent, or finished), if it made one.
pub fn stopped_record<'a>(events: &'a [AuditEvent], sender: &str) -> Option<&'a AuditEvent> {
    events
        .iter()
        .filter(|e| e.event_type == SENDER_STOPPED_TYPE || e.event_type == SENDER_FINISHED_TYPE)
        .find(|e| e.gap.as_ref().and_then(|gap| gap.sender.as_deref()) == Some(sender))
}

/// The senders recorded as finished (they said they were stopping and their count is
/// accounted for) and those recorded as fallen silent.
pub fn finished_and_silent(events: &[AuditEvent]) -> (usize, usize) {
    (of_type(events, SENDER_FINISHED_TYPE).count(), of_type(events, SENDER_STOPPED_TYPE).count())
}

/// The trail once every sender in `senders` has been recorded as stopped or finished.
pub fn wait_for_records_of(
    collector_url: &str,
    read_token: &str,
    senders: &[String],
    timeout: Duration,
) -> Result<Vec<AuditEvent>> {
    let mut events = Vec::new();
    poll_until("a SenderStopped or SenderFinished record for every sender", timeout, || {
        events = trail(collector_url, read_token)?;
        Ok(senders.iter().all(|sender| stopped_record(&events, sender).is_some()))
    })?;
    Ok(events)
}

/// Polls `condition` every 100 ms, failing after `timeout`.
pub fn poll_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> Result<bool>) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !condition()? {
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// What became of the answered requests of one load, from the trail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounting {
    pub answered: usize,
    pub stored: usize,
    /// Markers stored more than once (must be 0).
    pub stored_twice: usize,
    /// Events every gap record of the trail counts as lost.
    pub counted_lost: u64,
    /// Answered, not stored, inside a stopped sender's unknown tail.
    pub in_tail: usize,
    /// Answered, not stored, outside every unknown tail: must be covered by `counted_lost`.
    pub missing_before_tail: usize,
    /// The widest recorded unknown tail (ms).
    pub widest_tail_ms: i64,
}

impl Accounting {
    /// Accounts for `answered` (markers starting with `prefix`) against `events`; the
    /// `stopped` senders' records (fell silent or finished) must all be there. The unknown
    /// tails are those of every `SenderStopped` record of the trail.
    pub fn of(events: &[AuditEvent], answered: &[Answered], prefix: &str, stopped: &[String]) -> Result<Accounting> {
        let stored = stored_markers(events, prefix);
        if let Some(missing) = stopped.iter().find(|sender| stopped_record(events, sender).is_none()) {
            bail!("no SenderStopped or SenderFinished record for sender {missing}");
        }
        let mut tails = Vec::new();
        for gap in of_type(events, SENDER_STOPPED_TYPE).filter_map(|record| record.gap.as_ref()) {
            let sender = gap.sender.as_deref().unwrap_or("?");
            let time = |value: Option<&str>, what: &str| {
                value.and_then(parse_rfc3339_millis).ok_or_else(|| anyhow!("the record of {sender} has no {what}"))
            };
            tails.push((
                time(gap.last_heard_at.as_deref(), "lastHeardAt")?,
                time(gap.unknown_until.as_deref(), "unknownUntil")?,
            ));
        }
        let mut accounting = Accounting {
            answered: answered.len(),
            stored: stored.len(),
            stored_twice: stored.values().filter(|times| **times > 1).count(),
            counted_lost: recorded_lost(events),
            widest_tail_ms: tails.iter().map(|(heard, until)| until - heard).max().unwrap_or(0),
            ..Accounting::default()
        };
        for (marker, answered_at) in answered {
            if stored.contains_key(marker.as_str()) {
                continue;
            }
            let in_a_tail = tails
                .iter()
                .any(|(heard, until)| *answered_at >= heard - CAPTURE_AFTER_ANSWER_MS && answered_at <= until);
            if in_a_tail {
                accounting.in_tail += 1;
            } else {
                accounting.missing_before_tail += 1;
            }
        }
        Ok(accounting)
    }

    /// Answered requests that are not stored (in a tail or not).
    pub fn not_stored(&self) -> usize {
        self.in_tail + self.missing_before_tail
    }

    /// Fails unless every answered request is accounted for, nothing was stored twice,
    /// and no tail is much wider than one heartbeat interval (`heartbeat_ms`).
    pub fn check(&self, heartbeat_ms: i64) -> Result<()> {
        if self.stored_twice > 0 {
            bail!("{} requests were stored twice", self.stored_twice);
        }
        if self.missing_before_tail as u64 > self.counted_lost {
            bail!(
                "{} answered requests are neither stored nor in an unknown tail, but the trail counts only {} lost",
                self.missing_before_tail,
                self.counted_lost
            );
        }
        if self.widest_tail_ms > 2 * heartbeat_ms + 1000 {
            bail!(
                "an unknown tail of {} ms is far more than one heartbeat interval ({heartbeat_ms} ms)",
                self.widest_tail_ms
            );
        }
        Ok(())
    }
}

impl fmt::Display for Accounting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} answered, {} stored, {} counted lost by recorded gaps, {} missing inside a sender's unknown tail \
             (widest {} ms), {} missing before it",
            self.answered, self.stored, self.counted_lost, self.in_tail, self.widest_tail_ms, self.missing_before_tail
        )
    }
}
