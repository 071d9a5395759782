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
//!   sources only (`jwt_authn`'s verified claims, headers from configured proxies);
//!   [`untrusted_headers`]: which identity headers to remove before the request goes on.
//! - [`client_ip`]: from which address, forwarded-header aware.
//! - [`redact`], [`fingerprint`]: masking secrets in query strings; a keyed hash of a token.
//! - [`invisible`]: the `invisible_characters` alert (bidi controls, zero-width and control
//!   characters in captured text).

pub mod bounds;
pub mod capture;
#[cfg(any(test, feature = "golden"))]
pub mod capture_golden;
pub mod client_ip;
#[cfg(any(test, feature = "cost-stages"))]
pub mod cost_stage;
pub mod event_json;
pub mod fingerprint;
pub mod header_map;
pub mod host;
pub mod identity;
pub mod invisible;
pub mod jwt_claim_headers;
pub mod metadata;
pub mod redact;
pub mod sidecar_routes;
pub mod trusted_proxies;
pub mod untrusted_headers;
