//! audit-filter: the proxy-wasm filter that records every request through Envoy as an
//! audit event and delivers the events, in batches, to the collector.
//!
//! # Layout
//! The two halves the design names, each a folder; everything but `glue` is pure and tested
//! natively with `cargo test -p audit-filter`.
//! - [`request`] (per request, in the HTTP context): capture, identity, client address,
//!   token fingerprint, redaction, field bounds, the event's JSON, and the host view
//!   ([`request::host::RequestView`], the only seam capture reads the proxy through).
//! - [`worker`] (per worker, in the root context): delivery ([`worker::delivery`], behind
//!   the host trait [`worker::delivery::DeliveryHost`]), the outbox, the failure policy,
//!   what an answer means, entropy for uuids.
//! - [`config`]: the plugin configuration, one pure parse-and-validate function (each
//!   section checks its own rules); [`config_error`]: why a configuration was refused.
//! - [`routes`]: the service's route table, which gives an event its `type` and `params`.
//! - `glue` (wasm32 only): the root and HTTP contexts; the only code that imports
//!   `proxy_wasm`, as thin adapters onto the two halves.

// Natively only the tests call into the crate (the glue, its one caller, is wasm32-only), so
// dead code is judged by the wasm32 build, which `make lint` runs with `-D warnings`.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub(crate) mod config;
pub(crate) mod config_error;
pub(crate) mod request;
pub(crate) mod routes;
pub(crate) mod worker;

// The fuzz targets (`fuzz/`) reach the per-request path and the configuration parser here.
#[cfg(feature = "fuzzing")]
pub mod fuzzing;

#[cfg(target_arch = "wasm32")]
mod glue;
