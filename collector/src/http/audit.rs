//! `GET /audit`: one page of the trail, PactFlow's HAL shape, stored event JSON sent as
//! stored. The query string is read by [`super::audit_query`]; the page is a keyset query
//! on the commit sequence (see `store::sqlite::page_sql`, `store::postgres::page`). `_links.self` and `_links.next` carry
//! every parameter of the request, so following `next` keeps the filters, the order and
//! the page size; `next` is always a cursor (`from`), also after a numbered page
//! (`pageNumber`). An unknown `from` is a 404; a `from` retention purged is a 410; a `from`
//! acknowledged and not yet sealed (PostgreSQL) is a 503 with Retry-After.

use audit_event::{AuditPage, Link, PageLinks};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::audit_query::AuditQuery;
use super::authorize::authorize;
use super::links::{base_url, page_href};
use super::respond::{with_body, HttpResponse};
use super::{ApiError, Shared};
use crate::auth::Scope;
use crate::store::PageOutcome;

/// Handles one page request.
pub async fn handle(request: &Request<Incoming>, shared: &Shared) -> Result<HttpResponse, ApiError> {
    authorize(request.headers(), Scope::Read, shared).await?;
    let query = AuditQuery::parse(request.uri().query())?;
    let base = base_url(shared.public_url.as_ref(), request.headers())?;
    let shown_from = || query.from.as_deref().unwrap_or_default().chars().take(64).collect::<String>();
    let rows = match shared.store.page(query.trail_query()).await? {
        PageOutcome::Page(rows) => rows,
        PageOutcome::UnknownFrom => return Err(ApiError::UnknownFrom { from: shown_from() }),
        PageOutcome::ExpiredFrom => return Err(ApiError::ExpiredFrom { from: shown_from() }),
        PageOutcome::NotYetReadableFrom => return Err(ApiError::FromNotYetReadable { from: shown_from() }),
    };
    let pairs = query.link_pairs();
    let page = AuditPage {
        events: rows.events,
        links: PageLinks {
            this: Link { href: page_href(&base, query.from.as_deref(), &query.self_link_pairs()) },
            next: rows.next.map(|uuid| Link { href: page_href(&base, Some(&uuid), &pairs) }),
        },
    };
    let body = serde_json::to_vec(&page).map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(with_body(StatusCode::OK, "application/hal+json", body))
}
