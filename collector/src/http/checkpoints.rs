//! `GET /audit/checkpoints`: the signed checkpoints of the hash chain, oldest first, for
//! `audit-collector verify --url` and for auditors who archive them. Paged by checkpoint
//! number: `after=<number>` (exclusive) and `limit` (1 to [`MAX_CHECKPOINTS_PER_PAGE`]);
//! `_links.next` is absent on the last page. `latest=true` asks for the newest checkpoint
//! alone (a page of one, or none on an unsigned trail), so a client that wants only that
//! (the viewer) need not walk every page. Needs a read token, as `/audit` does.
//!
//! `POST /audit/checkpoints` (an `admin` token) signs a checkpoint of the trail as it is
//! now, so an auditor can close the uncovered tail before verifying: 201 with the new
//! checkpoint, or 200 with the newest one when it already covers every event.

use audit_event::chain::{CheckpointPage, CHECKPOINTS_PATH};
use audit_event::{Link, PageLinks};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::authorize::authorize;
use super::links::base_url;
use super::respond::{with_body, HttpResponse};
use super::{ApiError, Shared};
use crate::auth::Scope;

/// The largest page, and the default.
pub const MAX_CHECKPOINTS_PER_PAGE: usize = 1000;

/// What a `GET` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Asked {
    /// The checkpoints numbered after `after`, at most `limit` of them.
    Page { after: i64, limit: usize },
    /// The newest checkpoint only.
    Latest,
}

/// Handles one request.
pub async fn handle(request: &Request<Incoming>, shared: &Shared) -> Result<HttpResponse, ApiError> {
    authorize(request.headers(), Scope::Read, shared).await?;
    let asked = parse_query(request.uri().query())?;
    let base = base_url(shared.public_url.as_ref(), request.headers())?;
    let page = match asked {
        Asked::Latest => {
            let checkpoints = shared.store.latest_checkpoint().await?.into_iter().collect();
            let this = Link { href: format!("{base}{CHECKPOINTS_PATH}?latest=true") };
            CheckpointPage { checkpoints, links: PageLinks { this, next: None } }
        }
        Asked::Page { after, limit } => {
            let mut checkpoints = shared.store.checkpoints(after, limit + 1).await?;
            let more = checkpoints.len() > limit;
            checkpoints.truncate(limit);
            let href = |after: i64| format!("{base}{CHECKPOINTS_PATH}?after={after}&limit={limit}");
            let next = match (more, checkpoints.last()) {
                (true, Some(last)) => Some(Link { href: href(last.number) }),
                _ => None,
            };
            CheckpointPage { checkpoints, links: PageLinks { this: Link { href: href(after) }, next } }
        }
    };
    let body = serde_json::to_vec(&page).map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(with_body(StatusCode::OK, "application/json", body))
}

/// Signs a checkpoint on demand.
pub async fn sign(request: &Request<Incoming>, shared: &Shared) -> Result<HttpResponse, ApiError> {
    authorize(request.headers(), Scope::Admin, shared).await?;
    let (status, checkpoint) = match shared.store.checkpoint().await? {
        Some(checkpoint) => (StatusCode::CREATED, Some(checkpoint)),
        None => (StatusCode::OK, shared.store.latest_checkpoint().await?),
    };
    let checkpoint = checkpoint.ok_or(ApiError::NothingToSign)?;
    let body = serde_json::to_vec(&checkpoint).map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(with_body(status, "application/json", body))
}

fn parse_query(query: Option<&str>) -> Result<Asked, ApiError> {
    let mut after = None;
    let mut limit = None;
    let mut latest = false;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "after" => {
                after = Some(value.parse::<i64>().ok().filter(|after| *after >= 0).ok_or_else(|| {
                    ApiError::BadRequest(
                        "`after` must be a checkpoint number (0 or more); leave it out to start at the first"
                            .to_owned(),
                    )
                })?);
            }
            "limit" => {
                limit = Some(
                    value
                        .parse::<usize>()
                        .ok()
                        .filter(|limit| (1..=MAX_CHECKPOINTS_PER_PAGE).contains(limit))
                        .ok_or_else(|| {
                            ApiError::BadRequest(format!(
                                "`limit` must be a whole number from 1 to {MAX_CHECKPOINTS_PER_PAGE}"
                            ))
                        })?,
                );
            }
            "latest" => {
                latest = value.parse::<bool>().map_err(|_| {
                    ApiError::BadRequest("`latest` must be `true` (the newest checkpoint only) or `false`".to_owned())
                })?;
            }
            _ => {}
        }
    }
    if !latest {
        return Ok(Asked::Page { after: after.unwrap_or(0), limit: limit.unwrap_or(MAX_CHECKPOINTS_PER_PAGE) });
    }
    if after.is_some() || limit.is_some() {
        return Err(ApiError::BadRequest(
            "`latest=true` asks for the newest checkpoint alone: leave out `after` and `limit` (or page with them \
             and without `latest`)"
                .to_owned(),
        ));
    }
    Ok(Asked::Latest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_and_limit_are_read_and_bad_values_name_the_parameter() {
        let page = |after, limit| Some(Asked::Page { after, limit });
        assert_eq!(parse_query(None).ok(), page(0, MAX_CHECKPOINTS_PER_PAGE));
        assert_eq!(parse_query(Some("after=7&limit=2")).ok(), page(7, 2));
        assert_eq!(parse_query(Some("after=7&latest=false")).ok(), page(7, MAX_CHECKPOINTS_PER_PAGE));
        assert_eq!(parse_query(Some("latest=true")).ok(), Some(Asked::Latest));
        for (query, name) in [
            ("after=-1", "`after`"),
            ("limit=0", "`limit`"),
            ("limit=1001", "`limit`"),
            ("latest=1", "`latest`"),
            ("latest=true&limit=1", "leave out `after` and `limit`"),
        ] {
            let error = parse_query(Some(query)).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(error.contains(name), "{query}: {error}");
        }
    }
}
