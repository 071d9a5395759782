//! `GET /audit/activity`: events per hour or per day (UTC), split by outcome, for the
//! viewer's chart. It takes `bucket` (`hour`, the default, or `day`) and the filters of
//! `GET /audit` (`since`, `until`, `type`, `userUuid`, `user_email`, `method`, `status`),
//! read by the same parser so both mean the same thing; the paging parameters are
//! ignored. Same read token as `/audit`. The counting is in `store::activity`.

use audit_event::timestamp::format_rfc3339_millis;
use audit_event::{ActivityCount, ActivityPage};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};

use super::audit_query::AuditQuery;
use super::authorize::authorize;
use super::respond::{with_body, HttpResponse};
use super::{ApiError, Shared};
use crate::auth::Scope;
use crate::store::activity_plan::{ActivityOutcome, BucketWidth, MAX_BUCKETS};

/// Handles one request.
pub async fn handle(request: &Request<Incoming>, shared: &Shared) -> Result<HttpResponse, ApiError> {
    authorize(request.headers(), Scope::Read, shared).await?;
    let width = parse_bucket(request.uri().query())?;
    let filters = AuditQuery::parse(Some(&only_filters(request.uri().query())))?.filters;
    // No rollup or index counts by path: counting a prefix would read every event of the window.
    if filters.path_prefix.is_some() {
        return Err(ApiError::InvalidParameter {
            name: "path_prefix".to_owned(),
            problem: "is not supported by /audit/activity (nothing counts events by path); leave it out".to_owned(),
        });
    }
    let outcome = shared.store.activity(filters, width).await?;
    let ActivityOutcome::Buckets(buckets) = outcome else {
        return Err(ApiError::InvalidParameter {
            name: "bucket".to_owned(),
            problem: format!(
                "gives more than {MAX_BUCKETS} buckets with events; narrow `since`/`until`, or ask for `bucket=day`"
            ),
        });
    };
    let page = ActivityPage {
        bucket: match width {
            BucketWidth::Hour => "hour",
            BucketWidth::Day => "day",
        }
        .to_owned(),
        buckets: buckets
            .into_iter()
            .map(|bucket| ActivityCount {
                start: format_rfc3339_millis(bucket.start_ms.saturating_mul(1_000_000)),
                total: bucket.counts.total(),
                success: bucket.counts.success,
                failed_login: bucket.counts.failed_login,
                forbidden: bucket.counts.forbidden,
                error: bucket.counts.error,
            })
            .collect(),
    };
    let body = serde_json::to_vec(&page).map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(with_body(StatusCode::OK, "application/json", body))
}

/// The query without `/audit`'s paging parameters, which mean nothing here.
fn only_filters(query: Option<&str>) -> String {
    let kept = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(name, _)| !matches!(name.as_ref(), "from" | "sort" | "pageSize" | "pageNumber"));
    form_urlencoded::Serializer::new(String::new()).extend_pairs(kept).finish()
}

fn parse_bucket(query: Option<&str>) -> Result<BucketWidth, ApiError> {
    let mut width = BucketWidth::Hour;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name == "bucket" {
            width = match value.trim() {
                "hour" | "" => BucketWidth::Hour,
                "day" => BucketWidth::Day,
                other => {
                    return Err(ApiError::InvalidParameter {
                        name: "bucket".to_owned(),
                        problem: format!(
                            "must be `hour` or `day`, not `{}`",
                            other.chars().take(32).collect::<String>()
                        ),
                    })
                }
            };
        }
    }
    Ok(width)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_is_hour_by_default_day_on_request_and_anything_else_is_named() {
        assert_eq!(parse_bucket(None).ok(), Some(BucketWidth::Hour));
        assert_eq!(parse_bucket(Some("type=T&bucket=day")).ok(), Some(BucketWidth::Day));
        let error = parse_bucket(Some("bucket=week")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.starts_with("`bucket` must be `hour` or `day`"), "{error}");
    }

    #[test]
    fn paging_parameters_are_dropped_and_filters_kept() {
        let kept = only_filters(Some("pageNumber=7&from=x&type=A%3A%3AB&sort=bad&pageSize=0&status=401"));
        let query = AuditQuery::parse(Some(&kept)).expect("the filters parse");
        assert_eq!(query.filters.event_type.as_deref(), Some("A::B"));
        assert_eq!(query.filters.status, Some(401));
    }
}
