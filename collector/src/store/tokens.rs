//! Bearer tokens as every store hands them out: [`TokenRecord`] for `token list`, and
//! [`ActiveToken`] for checking a presented token. Each store keeps them in its own
//! `api_tokens` table (`sqlite/tokens.rs`, `postgres/tokens.rs`), only as SHA-256 digests.

use crate::auth::Scope;

/// A token as `token list` shows it: never the secret, never the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The row id, usable with `token revoke`.
    pub id: i64,
    /// The operator's name for it, e.g. `soc-splunk`.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// When it was made (ms since the epoch).
    pub created_at_ms: i64,
    /// When it was revoked, if it was.
    pub revoked_at_ms: Option<i64>,
}

/// An active token's digest and scope, for checking a presented bearer token.
#[derive(Debug, Clone)]
pub struct ActiveToken {
    /// SHA-256 of the secret.
    pub digest: [u8; 32],
    /// What it may do.
    pub scope: Scope,
}
