//! Who may call a route. A route needs a [`Scope`]; the presented bearer token is looked
//! for among the configured tokens (`--read-token`, `--ingest-token`) and then among the
//! active tokens of the database (`audit-collector token create`), every digest compared
//! in constant time. `admin` tokens exist only in the database. No token or an unknown one: 401. A known token of another scope
//! (e.g. the filter's ingest token on `/audit`): 403.

use hyper::header::HeaderMap;

use super::{ApiError, Shared};
use crate::auth::{contains_in_constant_time, digest, presented_bearer, Scope};

/// Lets the request through only with a token of `needed` scope.
pub async fn authorize(headers: &HeaderMap, needed: Scope, shared: &Shared) -> Result<(), ApiError> {
    let token = match presented_bearer(headers) {
        Ok(Some(token)) => token,
        Ok(None) => return Err(ApiError::MissingToken),
        Err(_) => return Err(ApiError::InvalidToken),
    };
    let presented = digest(&token);
    let configured_scope = if shared.read_tokens.contains_digest(&presented) {
        Some(Scope::Read)
    } else if shared.ingest_tokens.contains_digest(&presented) {
        Some(Scope::Ingest)
    } else {
        None
    };
    if configured_scope == Some(needed) {
        return Ok(());
    }
    let stored = shared.store.active_tokens().await?;
    let stored_scope = [Scope::Read, Scope::Ingest, Scope::Admin].into_iter().find(|scope| {
        let of_scope = stored.iter().filter(|token| token.scope == *scope).map(|token| &token.digest);
        contains_in_constant_time(of_scope, &presented)
    });
    match stored_scope.or(configured_scope) {
        Some(scope) if scope == needed => Ok(()),
        Some(scope) => Err(ApiError::WrongScope { has: scope.as_str(), needs: needed.as_str() }),
        None => Err(ApiError::InvalidToken),
    }
}
