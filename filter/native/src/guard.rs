//! No panic crosses the native boundary: every exported hook runs its body through
//! [`guarded`], which catches the unwinding (the crate is built with `panic = "unwind"`),
//! counts it, logs it, and returns the hook's fallback: let the request through. A panic
//! in Envoy's process would take Envoy down with every request in flight.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};

/// Panics caught in hooks since the module was loaded (the `audit_sidecar.hook_panics`
/// counter publishes it).
static PANICS: AtomicU64 = AtomicU64::new(0);

/// Runs `body`; if it panics, counts and logs the panic and returns `fallback`.
pub fn guarded<T>(hook: &str, fallback: T, body: impl FnOnce() -> T) -> T {
    caught(hook, body).unwrap_or(fallback)
}

/// Runs `body`; None if it panicked (counted and logged).
pub fn caught<T>(hook: &str, body: impl FnOnce() -> T) -> Option<T> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => Some(value),
        Err(payload) => {
            PANICS.fetch_add(1, Ordering::Relaxed);
            let reason = payload
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            // Logging may itself fail in a broken state: a second panic is caught too.
            let _ = catch_unwind(|| {
                crate::envoy::log(
                    log::Level::Error,
                    &format!("audit-filter: {hook} panicked ({reason}); the request goes on, counted in hook_panics"),
                )
            });
            None
        }
    }
}

/// Panics caught so far.
pub fn panics() -> u64 {
    PANICS.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::panic)]
    fn a_panicking_body_gives_the_fallback_is_counted_and_logged() {
        let before = panics();
        assert_eq!(guarded("on_test_hook", 7, || -> i32 { panic!("boom") }), 7);
        assert!(panics() > before);
        let logged = crate::fake_envoy::logged();
        assert!(
            logged.iter().any(|line| line.contains("on_test_hook panicked (boom); the request goes on")),
            "{logged:?}"
        );
    }

    #[test]
    fn a_body_that_returns_gives_its_value() {
        assert_eq!(guarded("on_test_hook", 0, || 42), 42);
    }
}
