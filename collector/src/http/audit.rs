//! `GET /audit`: one page of the trail in sequence order, PactFlow's HAL shape, stored
//! event JSON sent as stored. `from` is the inclusive cursor, `pageSize` at most
//! [`MAX_PAGE_SIZE`]; any other query parameter (PactFlow clients send several) is ignored.

use audit_event::page::MAX_PAGE_SIZE;
use audit_event::{AuditPage, Link, PageLinks};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::links::{base_url, page_href};
use super::respond::{with_body, HttpResponse};
use super::{authorize, ApiError, Shared};

/// The query parameters this route reads.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PageQuery {
    /// The uuid of the first event of the page.
    pub from: Option<String>,
    /// The page size the client asked for.
    pub page_size: Option<usize>,
}

impl PageQuery {
    /// Reads `from` and `pageSize`; an empty `from` means "from the start".
    pub fn parse(query: Option<&str>) -> Result<PageQuery, ApiError> {
        let mut parsed = PageQuery::default();
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            match name.as_ref() {
                "from" => parsed.from = Some(value.into_owned()).filter(|from| !from.is_empty()),
                "pageSize" => parsed.page_size = Some(parse_page_size(&value)?),
                _ => {}
            }
        }
        Ok(parsed)
    }
}

fn parse_page_size(value: &str) -> Result<usize, ApiError> {
    value
        .parse::<usize>()
        .ok()
        .filter(|size| (1..=MAX_PAGE_SIZE).contains(size))
        .ok_or_else(|| {
            let shown: String = value.chars().take(32).collect();
            ApiError::BadRequest(format!(
                "`pageSize` must be a whole number from 1 to {MAX_PAGE_SIZE}, not `{shown}`; leave it out for pages of {MAX_PAGE_SIZE}"
            ))
        })
}

/// Handles one page request.
pub async fn handle(request: &Request<Incoming>, shared: &Shared) -> Result<HttpResponse, ApiError> {
    authorize(request.headers(), &shared.read_tokens)?;
    let query = PageQuery::parse(request.uri().query())?;
    let base = base_url(shared.public_url.as_ref(), request.headers())?;
    let size = query.page_size.unwrap_or(MAX_PAGE_SIZE);
    let rows = shared.readers.page(query.from.clone(), size).await?.ok_or_else(|| ApiError::UnknownFrom {
        from: query.from.as_deref().unwrap_or_default().chars().take(64).collect(),
    })?;
    let page = AuditPage {
        events: rows.events,
        links: PageLinks {
            this: Link { href: page_href(&base, query.from.as_deref(), query.page_size) },
            next: rows.next.map(|uuid| Link { href: page_href(&base, Some(&uuid), query.page_size) }),
        },
    };
    let body = serde_json::to_vec(&page).map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(with_body(StatusCode::OK, "application/hal+json", body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_from_and_page_size_and_ignores_pactflows_other_parameters() {
        let query = PageQuery::parse(Some("since=2020-01-01T00:00:00Z&from=abc&pageSize=7&sort=%2Btimestamp"));
        let query = query.expect("valid");
        assert_eq!(query, PageQuery { from: Some("abc".to_owned()), page_size: Some(7) });
        assert_eq!(PageQuery::parse(None).expect("valid"), PageQuery::default());
    }

    #[test]
    fn page_size_outside_one_to_a_hundred_is_refused_naming_the_parameter() {
        for bad in ["0", "101", "ten", "-1", ""] {
            let error = PageQuery::parse(Some(&format!("pageSize={bad}"))).expect_err(bad).to_string();
            assert!(error.contains("`pageSize`"), "{bad}: {error}");
        }
        assert_eq!(PageQuery::parse(Some("pageSize=100")).expect("max").page_size, Some(100));
    }
}
