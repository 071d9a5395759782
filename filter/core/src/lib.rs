//! audit-filter-core: the audit filter's request core, which records every request through
//! Envoy as an audit event and delivers the events, in batches, to the collector. It imports
//! no host API: each host (`filter/wasm`, the proxy-wasm module; `filter/native`, the Envoy
//! dynamic module) is a thin adapter that reads the request through
//! [`request::host::RequestView`] and executes delivery's decisions through
//! [`worker::delivery::DeliveryHost`].
//!
//! # Layout
//! The two halves the design names, each a folder; all of it is pure and tested natively
//! with `cargo test -p audit-filter-core`.
//! - [`request`] (per request, in the HTTP context): capture, identity, client address,
//!   token fingerprint, redaction, field bounds, the event's JSON, and the host view
//!   ([`request::host::RequestView`], the only seam capture reads the proxy through).
//! - [`worker`] (per worker, in the root context): delivery ([`worker::delivery`], behind
//!   the host trait [`worker::delivery::DeliveryHost`]), the outbox, the failure policy,
//!   what an answer means, entropy for uuids.
//! - [`config`]: the plugin configuration, one pure parse-and-validate function (each
//!   section checks its own rules); [`config_error`]: why a configuration was refused.
//! - [`routes`]: the service's route table, which gives an event its `type` and `params`.

pub mod config;
pub mod config_error;
pub mod request;
pub(crate) mod routes;
pub mod worker;

// The fuzz targets (`fuzz/`) reach the per-request path and the configuration parser here.
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
