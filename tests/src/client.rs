//! HTTP helpers for the tests and the demo: plain requests (any status is an answer, not an
//! error), and reading the trail: one `/audit` page, or every page by following `next`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use audit_event::{AuditEvent, AuditPage};

/// An HTTP answer: status, headers and body text.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// Header names (lower case) and values.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl Reply {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// A client that returns 4xx and 5xx answers instead of failing on them.
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(15)))
        .build()
        .new_agent()
}

/// Sends `method url` with `headers` and an optional body.
pub fn send(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Result<Reply> {
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(body.unwrap_or_default().to_string()).context("building request")?;
    let mut response = agent().run(request).with_context(|| format!("{method} {url}"))?;
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    Ok(Reply { status, headers, body })
}

/// `GET url` with a bearer token.
pub fn get_with_token(url: &str, token: &str) -> Result<Reply> {
    send("GET", url, &[("authorization", &format!("Bearer {token}"))], None)
}

/// Reads the `/audit` page at `url`, failing unless the answer is a 200 page.
pub fn read_page(url: &str, token: &str) -> Result<AuditPage> {
    let reply = get_with_token(url, token)?;
    if reply.status != 200 {
        bail!("GET {url} answered {}: {}", reply.status, reply.body);
    }
    serde_json::from_str(&reply.body).with_context(|| format!("GET {url} is not an audit page: {}", reply.body))
}

/// Every event of the trail at `base_url` (`…/audit`), following `next` links from the first
/// page; also returns how many pages were read.
pub fn walk_trail(base_url: &str, token: &str, page_size: usize) -> Result<(Vec<AuditEvent>, usize)> {
    let mut url = format!("{base_url}/audit?pageSize={page_size}");
    let mut events = Vec::new();
    let mut pages = 0;
    loop {
        let page = read_page(&url, token)?;
        pages += 1;
        events.extend(page.events);
        match page.links.next {
            Some(next) => url = next.href,
            None => return Ok((events, pages)),
        }
        if pages > 100_000 {
            bail!("more than 100000 pages at {base_url}: the next links loop");
        }
    }
}

/// Polls the trail until `done` holds for its events, or fails after `timeout` saying what
/// was there.
pub fn wait_for_trail(
    base_url: &str,
    token: &str,
    timeout: Duration,
    mut done: impl FnMut(&[AuditEvent]) -> bool,
) -> Result<Vec<AuditEvent>> {
    let deadline = Instant::now() + timeout;
    loop {
        let (events, _) = walk_trail(base_url, token, 100)?;
        if done(&events) {
            return Ok(events);
        }
        if Instant::now() > deadline {
            let summary: Vec<String> =
                events.iter().map(|e| format!("{} {} {}", e.payload.method, e.payload.path, e.event_type)).collect();
            bail!(
                "the trail did not reach the expected state within {timeout:?}; it holds {} events:\n{}",
                events.len(),
                summary.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
