//! audit-filter: the proxy-wasm filter that records every request through Envoy as an
//! audit event and delivers the events, in batches, to the collector.
//!
//! # Layout
//! Everything but `glue` is pure and tested natively with `cargo test -p audit-filter`.
//! - [`config`]: the plugin configuration, one pure parse-and-validate function (each
//!   section checks its own rules); [`config_error`]: why a configuration was refused.
//! - [`host`]: [`host::RequestView`], what capture reads from the proxy (the only seam);
//!   [`header_map`] reads the host's serialized header map in place.
//! - [`capture`]: a finished request → an [`audit_event::AuditEvent`]; [`event_json`] writes
//!   it as the JSON serde_json would, faster.
//! - [`routes`]: the route table that gives an event its `type` and `params`;
//!   [`sidecar_routes`] types requests for audit-sidecar's own `/audit` API, before it.
//! - [`identity`], [`client_ip`]: who made the request, and from which address;
//!   [`metadata`] reads the claims `jwt_authn` verified from Envoy's dynamic metadata;
//!   [`trusted_proxies`] decides whether the peer may set identity headers.
//! - [`bounds`]: every captured text field cut to its bound, and the cut recorded.
//! - [`redact`], [`fingerprint`]: masking secrets in query strings; a keyed hash of a token.
//! - [`delivery`]: the per-worker delivery policy (flush on tick and after answers, retry,
//!   rejection, drop announcements, fail-closed refusals), behind the host trait
//!   [`delivery::DeliveryHost`].
//! - [`outbox`]: the per-worker buffer, batching and retry policy (time passed in), and
//!   the gap records that report dropped events.
//! - [`entropy`]: random bytes for event uuids, fetched from the host in bulk.
//! - [`answer`]: what a collector answer means (acknowledged, retry, or rejected batch).
//! - [`failure_policy`]: fail-open or fail-closed: whether a request may proceed while
//!   the trail cannot be written.
//! - `glue` (wasm32 only): the root and HTTP contexts; the only code that imports `proxy_wasm`.

// Natively only the tests call into the crate (the glue, its one caller, is wasm32-only), so
// dead code is judged by the wasm32 build, which `make lint` runs with `-D warnings`.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

pub(crate) mod answer;
pub(crate) mod bounds;
pub(crate) mod capture;
#[cfg(test)]
mod capture_golden;
pub(crate) mod client_ip;
pub(crate) mod config;
pub(crate) mod config_error;
pub(crate) mod delivery;
pub(crate) mod entropy;
pub(crate) mod event_json;
pub(crate) mod failure_policy;
pub(crate) mod fingerprint;
pub(crate) mod header_map;
pub(crate) mod host;
pub(crate) mod identity;
pub(crate) mod metadata;
pub(crate) mod outbox;
pub(crate) mod redact;
pub(crate) mod routes;
pub(crate) mod sidecar_routes;
pub(crate) mod trusted_proxies;

// The fuzz targets (`fuzz/`) reach the per-request path and the configuration parser here.
#[cfg(feature = "fuzzing")]
pub mod fuzzing;

#[cfg(target_arch = "wasm32")]
mod glue;
