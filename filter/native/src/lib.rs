//! audit-filter-native: the audit filter as an Envoy dynamic module, a native shared library
//! (`libaudit_filter_native.so`) that Envoy loads through its C ABI. A thin host over
//! `audit-filter-core`: it reads each request through the core's
//! [`RequestView`](audit_filter_core::request::host::RequestView) and executes delivery's
//! decisions through its [`DeliveryHost`](audit_filter_core::worker::delivery::DeliveryHost);
//! what to capture, strip, refuse, send and retry is the core's.
//!
//! # Layout
//! - [`abi`]: the raw `extern "C"` declarations and `#[repr(C)]` types, nothing else;
//!   [`envoy`]: the safe layer above them (slices borrowed for the hook, `Option`/`Result`).
//! - `hooks`: the exported `envoy_dynamic_module_on_*` functions, each a trampoline through
//!   [`guard`], which catches a panic and lets the request through (counted), never aborts.
//! - [`config_registry`]: the live configurations by the id Envoy holds (a late event for a
//!   destroyed one finds nothing). [`module_config`]: one filter configuration: the core's parsed configuration, the
//!   per-worker delivery slots ([`worker_slot`]), the tick thread ([`ticker`]) and metrics.
//! - [`stream`]: one HTTP stream: strip untrusted identity headers and refuse (fail-closed)
//!   at the request headers, capture at stream end; [`request_view`] is what capture reads.
//! - `exit_hooks`: the module as a bootstrap extension, for its shutdown hook: at Envoy's
//!   exit [`envoy_exit`] has every configuration send what it holds and holds the exit until
//!   that is answered (bounded by the calls' timeout).
//! - [`delivery_host`]: the core's `DeliveryHost` on Envoy's main thread (callouts to the
//!   collector cluster) and on a worker (local replies); [`retired`]: the deliveries of
//!   deleted configurations, adopted by a live one until they are drained.
//!
//! Delivery runs on Envoy's main thread: a thread of the module's own only ticks (it commits
//! the configuration's scheduler), and each tick and each collector answer is handled in the
//! configuration's hooks, which send through the collector cluster (README.md says why).

// Natively only the tests call into the crate without the hooks (cfg(not(test))), so dead
// code is judged by the library build, which `make lint` runs with `-D warnings`.
#![cfg_attr(test, allow(dead_code))]

pub mod abi;
pub mod config_registry;
pub mod delivery_host;
pub mod envoy;
pub mod envoy_exit;
#[cfg(not(test))]
mod exit_hooks;
pub mod guard;
pub mod held;
#[cfg(not(test))]
pub mod hooks;
pub mod metrics;
pub mod module_config;
pub mod randomness;
pub mod request_view;
pub mod retired;
pub mod stream;
pub mod ticker;
pub mod worker_slot;

#[cfg(test)]
mod fake_envoy;
#[cfg(test)]
mod golden;
