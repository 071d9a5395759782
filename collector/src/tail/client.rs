//! The tail's HTTP side: one `GET` of an `/audit` page with the bearer token. Answers
//! that can heal (connection failures, 429, 5xx) are retried with a growing pause; answers
//! that cannot (401, 403, 404, 410, other 4xx, a body that is not a page) end the tail with
//! the server's own `detail`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// The longest pause between retries.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(60);

/// A page as the tail needs it: the events untyped (PactFlow's lack our additions).
#[derive(Debug, Deserialize)]
pub struct LoosePage {
    /// The events, as served.
    pub events: Vec<Value>,
    /// `_links.next.href`, when there is a next page.
    #[serde(skip)]
    pub next: Option<String>,
}

/// A refusal retrying will not fix.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// 401 or 403.
    #[error("GET {url} answered {status}: {detail}; check --token (it needs the `read` scope)")]
    Refused {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The server's explanation.
        detail: String,
    },
    /// 410: the position has been purged by retention.
    #[error("GET {url} answered 410: {detail}; the saved position has EXPIRED, events after it may be lost: move the state file away (or pass --from) to restart from the oldest event kept")]
    Expired {
        /// The URL.
        url: String,
        /// The server's explanation.
        detail: String,
    },
    /// Any other 4xx (404: unknown `from`).
    #[error("GET {url} answered {status}: {detail}")]
    Rejected {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The server's explanation.
        detail: String,
    },
    /// A 200 whose body is not an audit page (or not the checkpoint page asked for).
    #[error("GET {url} did not return what was expected: {reason}")]
    NotAPage {
        /// The URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

/// Fetches pages with one token.
pub struct TrailClient {
    agent: ureq::Agent,
    authorization: String,
}

impl TrailClient {
    /// A client that sends `Authorization: Bearer <token>`.
    pub fn new(token: &str) -> TrailClient {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .new_agent();
        TrailClient { agent, authorization: format!("Bearer {}", token.trim()) }
    }

    /// The page at `url`, retrying what can heal, starting with a pause of `first_pause`.
    pub fn fetch_page(&self, url: &str, first_pause: Duration) -> Result<LoosePage, FetchError> {
        self.fetch(url, first_pause, parse_page)
    }

    /// Any JSON body at `url` (e.g. a checkpoint page), retried as [`Self::fetch_page`] is.
    pub fn fetch_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        first_pause: Duration,
    ) -> Result<T, FetchError> {
        self.fetch(url, first_pause, |url, body| {
            serde_json::from_str(body)
                .map_err(|error| FetchError::NotAPage { url: url.to_owned(), reason: error.to_string() })
        })
    }

    fn fetch<T>(
        &self,
        url: &str,
        first_pause: Duration,
        parse: impl Fn(&str, &str) -> Result<T, FetchError>,
    ) -> Result<T, FetchError> {
        let mut pause = first_pause;
        loop {
            match self.try_fetch(url, &parse) {
                Ok(Some(page)) => return Ok(page),
                Ok(None) => {
                    tracing::warn!(%url, retry_in = ?pause, "the trail is not reachable right now; retrying");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(MAX_RETRY_PAUSE);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// `Ok(None)` for an answer worth retrying.
    fn try_fetch<T>(
        &self,
        url: &str,
        parse: impl Fn(&str, &str) -> Result<T, FetchError>,
    ) -> Result<Option<T>, FetchError> {
        let response = self.agent.get(url).header("authorization", &self.authorization).call();
        let mut response = match response {
            Ok(response) => response,
            Err(error) => {
                tracing::warn!(%url, cause = %error, "request failed");
                return Ok(None);
            }
        };
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        let detail = || {
            serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|problem| problem.get("detail").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| body.chars().take(300).collect())
        };
        let url_owned = url.to_owned();
        match status {
            200 => parse(url, &body).map(Some),
            429 | 500..=599 => {
                tracing::warn!(%url, status, detail = %detail(), "server not ready");
                Ok(None)
            }
            401 | 403 => Err(FetchError::Refused { url: url_owned, status, detail: detail() }),
            410 => Err(FetchError::Expired { url: url_owned, detail: detail() }),
            _ => Err(FetchError::Rejected { url: url_owned, status, detail: detail() }),
        }
    }
}

fn parse_page(url: &str, body: &str) -> Result<LoosePage, FetchError> {
    let not_a_page = |reason: String| FetchError::NotAPage { url: url.to_owned(), reason };
    let value: Value = serde_json::from_str(body).map_err(|error| not_a_page(error.to_string()))?;
    let mut page: LoosePage = serde_json::from_value(value.clone()).map_err(|error| not_a_page(error.to_string()))?;
    page.next =
        value.pointer("/_links/next/href").and_then(Value::as_str).filter(|href| !href.is_empty()).map(str::to_owned);
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_without_next_is_the_last_and_events_stay_untyped() {
        let page =
            parse_page("u", r#"{"events":[{"uuid":"a","extra":1}],"_links":{"self":{"href":"x"}}}"#).expect("page");
        assert_eq!(page.events.len(), 1);
        assert_eq!(page.next, None);
        let page =
            parse_page("u", r#"{"events":[],"_links":{"next":{"href":"http://h/audit?from=b"}}}"#).expect("page");
        assert_eq!(page.next.as_deref(), Some("http://h/audit?from=b"));
        assert!(parse_page("u", r#"{"items":[]}"#).is_err());
    }
}
