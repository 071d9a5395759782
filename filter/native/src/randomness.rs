//! Randomness for event uuids (from a per-thread pool refilled by the OS, 64 uuids at a
//! time: the core's [`EntropyPool`]) and for backoff jitter.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use audit_filter_core::worker::entropy::EntropyPool;

thread_local!(static ENTROPY: RefCell<EntropyPool> = RefCell::new(EntropyPool::default()));

/// 16 random bytes for a uuid. Should the OS ever refuse, the clock and a process-wide
/// counter still give a uuid unique within this Envoy.
pub fn random_event_id() -> [u8; 16] {
    let pooled = ENTROPY.with(|pool| pool.try_borrow_mut().ok()?.take16(|bytes| getrandom::fill(bytes).is_ok()));
    pooled.unwrap_or_else(fallback_id)
}

/// Randomness for backoff jitter; the clock will do if the OS has none.
pub fn random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| now_unix_nanos().unsigned_abs())
}

/// Wall-clock nanoseconds since the Unix epoch (0 before it).
pub fn now_unix_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|since| i64::try_from(since.as_nanos()).ok())
        .unwrap_or(0)
}

/// Wall-clock milliseconds since the Unix epoch, as delivery counts time.
pub fn now_ms() -> u64 {
    u64::try_from(now_unix_nanos() / 1_000_000).unwrap_or(0)
}

fn fallback_id() -> [u8; 16] {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut bytes = [0u8; 16];
    let (clock, sequence) = bytes.split_at_mut(8);
    clock.copy_from_slice(&now_unix_nanos().to_le_bytes());
    sequence.copy_from_slice(&count.to_le_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_differ() {
        assert_ne!(random_event_id(), random_event_id());
        assert_ne!(fallback_id(), fallback_id());
    }
}
