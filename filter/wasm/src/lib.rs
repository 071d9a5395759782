//! audit-filter: the audit filter as a proxy-wasm module (wasm32-wasip1, built as
//! `audit_filter.wasm`), the portable host of [`audit_filter_core`]. The only code that
//! talks to the proxy: the entry point, the per-worker root context that delivers batches,
//! and the HTTP context that captures one request in `on_log`. Everything it decides is
//! delegated to the core.
//!
//! Host calls go through `proxy_wasm::hostcalls` (which return errors) rather than the
//! `Context` trait helpers (which unwrap and would panic the VM).

// Compiled for wasm32 only: natively the crate is empty (the core's tests run natively).
#![cfg(target_arch = "wasm32")]

#[cfg(feature = "cost-stages")]
mod cost_stage;
mod host_view;
mod http;
mod metrics;
mod proxy_host;
mod root;
mod worker;

use proxy_wasm::hostcalls;
use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    // Replaces the SDK's hook (which unwraps its own log call): a panic is logged at
    // critical level, and the VM aborts (wasm-release has panic = "abort").
    std::panic::set_hook(Box::new(|panic_info| {
        let _ = hostcalls::log(LogLevel::Critical, &format!("audit-filter panicked: {panic_info}"));
    }));
    proxy_wasm::set_root_context(|_context_id| new_root());
}}

/// The audit filter's root context.
#[cfg(not(feature = "cost-stages"))]
fn new_root() -> Box<dyn proxy_wasm::traits::RootContext> {
    Box::new(root::AuditRoot::default())
}

/// The bench's ablation build (feature `cost-stages`): the same root, wrapped, so the
/// shipped contexts carry no trace of it.
#[cfg(feature = "cost-stages")]
fn new_root() -> Box<dyn proxy_wasm::traits::RootContext> {
    Box::new(cost_stage::StagedRoot::default())
}

/// Wall-clock nanoseconds since the Unix epoch, as the proxy sees it (0 if unavailable).
fn now_unix_nanos() -> i64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|now| now.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|since_epoch| i64::try_from(since_epoch.as_nanos()).ok())
        .unwrap_or(0)
}

fn now_ms() -> u64 {
    u64::try_from(now_unix_nanos() / 1_000_000).unwrap_or(0)
}
