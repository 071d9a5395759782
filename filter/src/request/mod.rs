//! Per request: what the HTTP context does in `on_log` to turn a finished request into an
//! audit event. Everything here is pure and reads the proxy only through [`host`].
//!
//! - [`host`]: [`host::RequestView`], what capture reads from the proxy (the only seam);
//!   [`header_map`]: the request headers, read in place from the host's serialized map.
//! - [`capture`]: a finished request → an [`audit_event::AuditEvent`]; [`event_json`] writes
//!   it as the JSON serde_json would, faster; [`bounds`] cuts over-long fields and marks them.
//! - [`sidecar_routes`]: the types of requests for audit-sidecar's own `/audit` API (the
//!   service's own routes are [`crate::routes`]).
//! - [`identity`], [`trusted_proxies`], [`metadata`]: who made the request, from trusted
//!   sources only (`jwt_authn`'s verified claims, headers from configured proxies).
//! - [`client_ip`]: from which address, forwarded-header aware.
//! - [`redact`], [`fingerprint`]: masking secrets in query strings; a keyed hash of a token.
//! - [`invisible`]: the `invisible_characters` alert (bidi controls, zero-width and control
//!   characters in captured text).

pub(crate) mod bounds;
pub(crate) mod capture;
#[cfg(test)]
mod capture_golden;
pub(crate) mod client_ip;
#[cfg(any(test, feature = "cost-stages"))]
pub(crate) mod cost_stage;
pub(crate) mod event_json;
pub(crate) mod fingerprint;
pub(crate) mod header_map;
pub(crate) mod host;
pub(crate) mod identity;
pub(crate) mod invisible;
pub(crate) mod metadata;
pub(crate) mod redact;
pub(crate) mod sidecar_routes;
pub(crate) mod trusted_proxies;
