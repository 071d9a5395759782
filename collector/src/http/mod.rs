//! The HTTP routes. [`route`] picks the handler by path and method; each handler returns
//! `Result<response, ApiError>` and [`problem`] turns every error into its status and
//! problem+json body in one place.

mod activity;
mod audit;
mod audit_query;
mod authorize;
mod body;
mod checkpoints;
mod health;
mod ingest;
mod links;
mod metrics;
mod openapi;
mod problem;
mod public_key;
mod query_time;
mod respond;
mod ui;

use std::sync::Arc;
use std::time::Instant;

use audit_event::activity::ACTIVITY_PATH;
use audit_event::chain::{TrailPublicKey, CHECKPOINTS_PATH, PUBLIC_KEY_PATH};
use audit_event::ingest::INGEST_PATH;
use hyper::body::Incoming;
use hyper::{Method, Request};

use crate::auth::TokenSet;
use crate::config::PublicUrl;
use crate::metrics::Metrics;
use crate::store::TrailStore;

pub use problem::ApiError;
pub use respond::HttpResponse;

pub use audit_event::page::AUDIT_PATH;
/// The path of the health check.
pub const HEALTH_PATH: &str = "/healthz";
/// The path of the Prometheus metrics.
pub const METRICS_PATH: &str = "/metrics";
pub use openapi::OPENAPI_PATH;

/// What every request handler can reach.
pub struct Shared {
    /// The trail's database.
    pub store: Arc<dyn TrailStore>,
    /// Tokens for `GET /audit`.
    pub read_tokens: TokenSet,
    /// Tokens for `POST /v1/events`.
    pub ingest_tokens: TokenSet,
    /// Base of the `_links` hrefs, when configured.
    pub public_url: Option<PublicUrl>,
    /// Largest ingest body.
    pub max_body_bytes: usize,
    /// The counters of `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The public key that verifies the checkpoints.
    pub trail_key: TrailPublicKey,
}

/// Answers one request.
pub async fn route(request: Request<Incoming>, shared: Arc<Shared>) -> HttpResponse {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    // HEAD is answered wherever GET is, with GET's status and headers; hyper sends no body
    // for a HEAD request but keeps the Content-Length of the body it would have sent.
    let routed = if method == Method::HEAD { Method::GET } else { method.clone() };
    let outcome = match (path.as_str(), &routed) {
        (INGEST_PATH, &Method::POST) => ingest::handle(request, &shared).await,
        (AUDIT_PATH, &Method::GET) => audit::handle(&request, &shared).await,
        (ACTIVITY_PATH, &Method::GET) => activity::handle(&request, &shared).await,
        (OPENAPI_PATH, &Method::GET) => openapi::handle(),
        (HEALTH_PATH, &Method::GET) => health::handle(&shared).await,
        (METRICS_PATH, &Method::GET) => metrics::handle(&shared).await,
        (CHECKPOINTS_PATH, &Method::GET) => checkpoints::handle(&request, &shared).await,
        (CHECKPOINTS_PATH, &Method::POST) => checkpoints::sign(&request, &shared).await,
        (PUBLIC_KEY_PATH, &Method::GET) => public_key::handle(&shared),
        (INGEST_PATH, _) => {
            Err(ApiError::MethodNotAllowed { path: path.clone(), method: method.to_string(), allow: "POST" })
        }
        (path, &Method::GET) if ui::is_ui_path(path) => ui::handle(path),
        (CHECKPOINTS_PATH, _) => {
            Err(ApiError::MethodNotAllowed { path: path.clone(), method: method.to_string(), allow: "GET, HEAD, POST" })
        }
        (AUDIT_PATH | ACTIVITY_PATH | OPENAPI_PATH | HEALTH_PATH | METRICS_PATH | PUBLIC_KEY_PATH, _) => {
            Err(ApiError::MethodNotAllowed { path: path.clone(), method: method.to_string(), allow: "GET, HEAD" })
        }
        _ => Err(ApiError::NotFound { path: path.clone() }),
    };
    let response = outcome.unwrap_or_else(ApiError::into_response);
    shared.metrics.observe_latency(route_label(&path), started.elapsed());
    response
}

/// The `route` label of the latency histogram: one of a fixed set, whatever the path.
fn route_label(path: &str) -> &'static str {
    match path {
        INGEST_PATH => "ingest",
        AUDIT_PATH => "audit",
        OPENAPI_PATH => "openapi",
        HEALTH_PATH => "healthz",
        METRICS_PATH => "metrics",
        _ if path.starts_with("/audit/") => "audit_other",
        _ => "other",
    }
}
