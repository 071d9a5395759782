//! [`ApiError`]: every way a request can fail, and the ONE mapping from failure to HTTP
//! status, headers and RFC 9457 problem+json body (`type`, `title`, `status`, `detail`).
//! Internal causes are logged here and replaced by a neutral detail, so a client never
//! sees file paths or SQL.

use hyper::header::{HeaderValue, ALLOW, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::StatusCode;
use serde::Serialize;

use super::respond::{with_body, HttpResponse};
use crate::store::StoreError;

/// A request that cannot be answered as asked.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No bearer token.
    #[error("this route needs an `Authorization: Bearer <token>` header")]
    MissingToken,
    /// A token this route does not accept.
    #[error("the bearer token is not accepted on this route")]
    InvalidToken,
    /// A valid token whose scope does not cover this route.
    #[error("this token has the `{has}` scope; this route needs a `{needs}` token (audit-collector token create --scope {needs})")]
    WrongScope {
        /// The scope the token has.
        has: &'static str,
        /// The scope the route needs.
        needs: &'static str,
    },
    /// No such route.
    #[error(
        "there is nothing at `{path}`; the collector serves POST /v1/events, GET /audit, GET /audit/activity, \
         GET /audit/checkpoints, GET /audit/public-key, GET /audit/openapi.json, the viewer at GET /audit/ui/, \
         GET /healthz and GET /metrics"
    )]
    NotFound {
        /// The requested path.
        path: String,
    },
    /// A known route, another method.
    #[error("`{path}` does not support {method}; use {allow}")]
    MethodNotAllowed {
        /// The requested path.
        path: String,
        /// The method used.
        method: String,
        /// The methods it supports.
        allow: &'static str,
    },
    /// A query parameter with a value that cannot be used.
    #[error("`{name}` {problem}")]
    InvalidParameter {
        /// The parameter.
        name: String,
        /// What is wrong and what to send instead.
        problem: String,
    },
    /// The request itself is wrong; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// The body is over the limit.
    #[error("the body is larger than the limit of {limit} bytes; send smaller batches")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// `from` names no event the trail holds or remembers purging.
    #[error("event `{from}` is not in the trail: no event with this uuid was stored, or retention purged it so long ago that the trail no longer remembers it (purged uuids are kept for 30 days of event time after the newest purged event); check the uuid, or start again without `from` to read from the oldest event kept")]
    UnknownFrom {
        /// The requested cursor (shortened when long).
        from: String,
    },
    /// `from` names an event retention has purged.
    #[error("event `{from}` has EXPIRED: retention purged it, and the events before and after it that were as old; start again without `from` (or with `since`) to read from the oldest event kept")]
    ExpiredFrom {
        /// The requested cursor (shortened when long).
        from: String,
    },
    /// `from` names an event acknowledged and not readable yet (PostgreSQL: not sealed).
    #[error("event `{from}` was acknowledged and is not readable yet: it waits for the sealer to give it its place in the trail; retry after the seconds of the Retry-After header")]
    FromNotYetReadable {
        /// The requested cursor (shortened when long).
        from: String,
    },
    /// A checkpoint was asked for, but no event was ever stored.
    #[error("the trail is empty: there is nothing to sign yet")]
    NothingToSign,
    /// The writer queue is full.
    #[error("the collector's write queue is full; retry in a second")]
    QueueFull,
    /// PostgreSQL: more acknowledged events wait for the sealer than the bound allows.
    #[error("the trail's sealing is behind by about {unsealed} events, more than the {bound} this collector lets wait (--pg-max-unsealed-events); nothing of this batch was stored: send it again after the seconds of the Retry-After header (the audit filter keeps the batch and retries by itself)")]
    SealingBehind {
        /// Events waiting for the sealer, at most.
        unsealed: u64,
        /// The bound.
        bound: u64,
    },
    /// The writer is stopping or stopped.
    #[error("the collector is shutting down and stores nothing more; retry shortly")]
    ShuttingDown,
    /// Links cannot be built.
    #[error(
        "the request has no usable Host header to build links from; send one, or start the collector with --public-url"
    )]
    MissingHost,
    /// The store failed.
    #[error("the event store failed: {0}")]
    Store(#[from] StoreError),
    /// Something else on our side.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// The HTTP status of this failure.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingToken | ApiError::InvalidToken => StatusCode::UNAUTHORIZED,
            ApiError::WrongScope { .. } => StatusCode::FORBIDDEN,
            ApiError::ExpiredFrom { .. } => StatusCode::GONE,
            ApiError::NotFound { .. } | ApiError::UnknownFrom { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::BadRequest(_) | ApiError::InvalidParameter { .. } | ApiError::MissingHost => {
                StatusCode::BAD_REQUEST
            }
            ApiError::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NothingToSign | ApiError::Store(StoreError::WrongSigningKey(_)) => StatusCode::CONFLICT,
            ApiError::QueueFull
            | ApiError::SealingBehind { .. }
            | ApiError::FromNotYetReadable { .. }
            | ApiError::ShuttingDown
            | ApiError::Store(StoreError::WriterStopped | StoreError::SealingStalled(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A stable identifier of the kind of problem, for clients that branch on it.
    pub fn kind(&self) -> &'static str {
        match self {
            ApiError::MissingToken => "missing-token",
            ApiError::InvalidToken => "invalid-token",
            ApiError::WrongScope { .. } => "wrong-scope",
            ApiError::InvalidParameter { .. } => "invalid-parameter",
            ApiError::ExpiredFrom { .. } => "expired-from",
            ApiError::NotFound { .. } => "not-found",
            ApiError::MethodNotAllowed { .. } => "method-not-allowed",
            ApiError::BadRequest(_) => "bad-request",
            ApiError::BodyTooLarge { .. } => "body-too-large",
            ApiError::UnknownFrom { .. } => "unknown-from",
            ApiError::QueueFull => "queue-full",
            ApiError::SealingBehind { .. } => "sealing-behind",
            ApiError::FromNotYetReadable { .. } => "not-yet-readable",
            ApiError::NothingToSign => "nothing-to-sign",
            ApiError::Store(StoreError::WrongSigningKey(_)) => "wrong-signing-key",
            ApiError::ShuttingDown | ApiError::Store(StoreError::WriterStopped) => "shutting-down",
            ApiError::MissingHost => "missing-host",
            ApiError::Store(StoreError::SealingStalled(_)) => "sealing-stalled",
            ApiError::Store(_) | ApiError::Internal(_) => "internal",
        }
    }

    /// The response a client sees.
    pub fn into_response(self) -> HttpResponse {
        let status = self.status();
        let detail = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(cause = %self, "request failed");
            "the collector could not complete the request; the cause is in its log".to_owned()
        } else {
            self.to_string()
        };
        let problem = Problem {
            kind: format!("urn:audit-sidecar:problem:{}", self.kind()),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
        };
        // A struct of strings and a number always serializes; the fallback is never sent.
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = with_body(status, "application/problem+json", body);
        let headers = response.headers_mut();
        match &self {
            ApiError::MissingToken => {
                headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"audit\""));
            }
            ApiError::InvalidToken => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"audit\", error=\"invalid_token\""),
                );
            }
            ApiError::WrongScope { .. } => {
                headers.insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"audit\", error=\"insufficient_scope\""),
                );
            }
            ApiError::MethodNotAllowed { allow, .. } => {
                headers.insert(ALLOW, HeaderValue::from_static(allow));
            }
            _ if status == StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

/// The RFC 9457 body, fields in the RFC's order.
#[derive(Serialize)]
struct Problem {
    #[serde(rename = "type")]
    kind: String,
    title: &'static str,
    status: u16,
    detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use hyper::header::CONTENT_TYPE;

    async fn body_of(response: HttpResponse) -> serde_json::Value {
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        serde_json::from_slice(&bytes).expect("problem+json")
    }

    #[tokio::test]
    async fn a_problem_has_type_title_status_and_detail() {
        let response = ApiError::BadRequest("`pageSize` must be 1 to 100".to_owned()).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        let body = body_of(response).await;
        assert_eq!(body["type"], "urn:audit-sidecar:problem:bad-request");
        assert_eq!(body["title"], "Bad Request");
        assert_eq!(body["status"], 400);
        assert_eq!(body["detail"], "`pageSize` must be 1 to 100");
    }

    #[test]
    fn unauthorized_says_bearer_and_busy_says_when_to_retry() {
        let response = ApiError::MissingToken.into_response();
        assert!(response.headers()[WWW_AUTHENTICATE].to_str().unwrap_or_default().starts_with("Bearer"));
        let response = ApiError::QueueFull.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        let response =
            ApiError::MethodNotAllowed { path: "/audit".into(), method: "POST".into(), allow: "GET" }.into_response();
        assert_eq!(response.headers()[ALLOW], "GET");
    }

    #[tokio::test]
    async fn internal_causes_stay_in_the_log() {
        let response =
            ApiError::Store(StoreError::WriteFailed("disk I/O error at /secret/path".into())).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let detail = body_of(response).await["detail"].to_string();
        assert!(!detail.contains("/secret/path"), "{detail}");
    }

    #[tokio::test]
    async fn a_stalled_sealer_is_unavailable_and_says_why() {
        let why = "no live sealer holds the lease: acknowledged events are not becoming readable".to_owned();
        let response = ApiError::Store(StoreError::SealingStalled(why.clone())).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = body_of(response).await;
        assert_eq!(body["type"], "urn:audit-sidecar:problem:sealing-stalled");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.ends_with(&why), "{detail}");
    }

    #[tokio::test]
    async fn a_sealer_too_far_behind_is_unavailable_with_when_to_retry_and_what_is_waiting() {
        let response = ApiError::SealingBehind { unsealed: 31_250, bound: 30_000 }.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        let body = body_of(response).await;
        assert_eq!(body["type"], "urn:audit-sidecar:problem:sealing-behind");
        let detail = body["detail"].as_str().unwrap_or_default();
        for part in ["behind by about 31250 events", "30000", "nothing of this batch was stored", "Retry-After"] {
            assert!(detail.contains(part), "`{part}` not in: {detail}");
        }
    }

    /// Retention forgets purged uuids after 30 days: the 404 must not claim such an event
    /// was never stored.
    #[tokio::test]
    async fn an_unknown_cursor_does_not_claim_a_long_purged_event_was_never_stored() {
        let response = ApiError::UnknownFrom { from: "event-1".into() }.into_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let detail = body_of(response).await["detail"].as_str().unwrap_or_default().to_owned();
        assert!(detail.contains("or retention purged it so long ago"), "{detail}");
    }

    #[tokio::test]
    async fn a_cursor_not_sealed_yet_is_unavailable_with_when_to_retry_not_unknown() {
        let response = ApiError::FromNotYetReadable { from: "event-1".into() }.into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        let body = body_of(response).await;
        assert_eq!(body["type"], "urn:audit-sidecar:problem:not-yet-readable");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("event-1") && detail.contains("not readable yet"), "{detail}");
    }

    #[tokio::test]
    async fn a_collector_with_the_wrong_signing_key_is_a_conflict_that_names_both_keys() {
        let wrong = crate::chain::checkpoint::WrongSigner { expected: "aaaa".into(), found: "bbbb".into() };
        let response = ApiError::Store(StoreError::WrongSigningKey(wrong)).into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let body = body_of(response).await;
        assert_eq!(body["type"], "urn:audit-sidecar:problem:wrong-signing-key");
        let detail = body["detail"].to_string();
        assert!(detail.contains("aaaa") && detail.contains("bbbb"), "{detail}");
    }
}
