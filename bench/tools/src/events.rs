//! The bench's events: the realistic ones of `audit_event::sample` (one definition for every
//! measurement), and the clock they are stamped with.

pub use audit_event::sample::{realistic, uuid};

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
