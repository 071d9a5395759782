//! When a failed batch is tried again: an exponential backoff (doubling from
//! `initialBackoffMs`, capped at `maxBackoffMs`) with "equal jitter": half the delay is
//! fixed, half is random, so workers that failed together spread out.

/// The failures in a row so far, and when the next attempt may go.
#[derive(Debug, Clone, Copy)]
pub(super) struct Backoff {
    failures: u32,
    retry_at_ms: u64,
    /// The delay chosen after the last failure.
    pub(super) delay_ms: u64,
}

impl Backoff {
    /// The backoff after one more failure at `now_ms`; `previous` is None after a success.
    /// The delays start at `initial_ms` and stop growing at `max_ms`.
    pub(super) fn after_failure(
        previous: Option<Backoff>,
        (initial_ms, max_ms): (u64, u64),
        now_ms: u64,
        random: u64,
    ) -> Backoff {
        let failures = previous.map_or(0, |backoff| backoff.failures).saturating_add(1);
        let exponential = initial_ms.saturating_mul(1u64.checked_shl(failures - 1).unwrap_or(u64::MAX));
        let ceiling = exponential.min(max_ms);
        let fixed = ceiling / 2;
        let delay_ms = fixed + random % (ceiling - fixed + 1);
        Backoff { failures, retry_at_ms: now_ms.saturating_add(delay_ms), delay_ms }
    }

    /// Whether the next attempt may go at `now_ms`.
    pub(super) fn has_passed(&self, now_ms: u64) -> bool {
        now_ms >= self.retry_at_ms
    }
}
