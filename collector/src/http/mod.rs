//! The HTTP routes. [`route`] picks the handler by path and method; each handler returns
//! `Result<response, ApiError>` and [`problem`] turns every error into its status and
//! problem+json body in one place.

mod audit;
mod body;
mod checkpoints;
mod health;
mod ingest;
mod links;
mod problem;
mod public_key;
mod respond;

use std::sync::Arc;

use audit_event::chain::{TrailPublicKey, CHECKPOINTS_PATH, PUBLIC_KEY_PATH};
use audit_event::ingest::INGEST_PATH;
use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Method, Request};

use crate::auth::{check_bearer, Credential, TokenSet};
use crate::config::PublicUrl;
use crate::store::{Readers, WriterHandle};

pub use problem::ApiError;
pub use respond::HttpResponse;

/// The path of the paged trail.
pub const AUDIT_PATH: &str = "/audit";
/// The path of the health check.
pub const HEALTH_PATH: &str = "/healthz";

/// What every request handler can reach.
pub struct Shared {
    /// The queue to the writer thread.
    pub writer: WriterHandle,
    /// The read connections.
    pub readers: Readers,
    /// Tokens for `GET /audit`.
    pub read_tokens: TokenSet,
    /// Tokens for `POST /v1/events`.
    pub ingest_tokens: TokenSet,
    /// Base of the `_links` hrefs, when configured.
    pub public_url: Option<PublicUrl>,
    /// Largest ingest body.
    pub max_body_bytes: usize,
    /// The public key that verifies the checkpoints.
    pub trail_key: TrailPublicKey,
}

/// Answers one request.
pub async fn route(request: Request<Incoming>, shared: Arc<Shared>) -> HttpResponse {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let outcome = match (path.as_str(), &method) {
        (INGEST_PATH, &Method::POST) => ingest::handle(request, &shared).await,
        (AUDIT_PATH, &Method::GET) => audit::handle(&request, &shared).await,
        (HEALTH_PATH, &Method::GET) => health::handle(&shared).await,
        (CHECKPOINTS_PATH, &Method::GET) => checkpoints::handle(&request, &shared).await,
        (PUBLIC_KEY_PATH, &Method::GET) => public_key::handle(&shared),
        (INGEST_PATH, _) => Err(ApiError::MethodNotAllowed { path, method: method.to_string(), allow: "POST" }),
        (AUDIT_PATH | HEALTH_PATH | CHECKPOINTS_PATH | PUBLIC_KEY_PATH, _) => {
            Err(ApiError::MethodNotAllowed { path, method: method.to_string(), allow: "GET" })
        }
        _ => Err(ApiError::NotFound { path }),
    };
    outcome.unwrap_or_else(ApiError::into_response)
}

/// Lets the request through only with a bearer token from `tokens`.
fn authorize(headers: &HeaderMap, tokens: &TokenSet) -> Result<(), ApiError> {
    match check_bearer(headers, tokens) {
        Credential::Valid => Ok(()),
        Credential::Missing => Err(ApiError::MissingToken),
        Credential::Invalid => Err(ApiError::InvalidToken),
    }
}
