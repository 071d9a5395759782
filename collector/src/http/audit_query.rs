//! The query string of `GET /audit`, read into an [`AuditQuery`]: PactFlow's parameters
//! (`from`, `since`, `type`, `userUuid`, `sort`, `pageSize`, `pageNumber`) and ours
//! (`until`, `user_email`, `method`, `status`). A bad value is a 400 naming the parameter;
//! an empty value means the parameter is absent; parameters nobody knows are ignored, as
//! PactFlow clients send their own. [`AuditQuery::link_pairs`] gives the parameters back in
//! one canonical order, so `_links.next` carries every filter of the page it follows.

use audit_event::page::MAX_PAGE_SIZE;
use audit_event::timestamp::parse_rfc3339_millis;

use super::ApiError;
use crate::store::trail_query::{EventFilters, TrailOrder, TrailQuery};

/// The longest value a text filter accepts.
const MAX_FILTER_CHARS: usize = 512;

/// A parsed `GET /audit` query.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// The uuid of the first event of the page.
    pub from: Option<String>,
    /// The page size the client asked for.
    pub page_size: Option<usize>,
    /// The filters, typed.
    pub filters: EventFilters,
    /// The walk's direction.
    pub order: TrailOrder,
    /// `since` and `until` as the client wrote them, for the links.
    since_text: Option<String>,
    until_text: Option<String>,
}

impl AuditQuery {
    /// Reads the query string, or says which parameter is wrong and why.
    pub fn parse(query: Option<&str>) -> Result<AuditQuery, ApiError> {
        let mut parsed = AuditQuery::default();
        let mut seen: Vec<String> = Vec::new();
        for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            if seen.iter().any(|known| *known == name) {
                return Err(invalid(&name, "is given more than once; give it once"));
            }
            seen.push(name.clone().into_owned());
            match name.as_ref() {
                "from" => parsed.from = Some(value.to_owned()),
                "pageSize" => parsed.page_size = Some(parse_page_size(value)?),
                "pageNumber" => check_page_number(value)?,
                "sort" => parsed.order = parse_sort(value)?,
                "since" => {
                    parsed.filters.since_ms = Some(parse_time("since", value)?);
                    parsed.since_text = Some(value.to_owned());
                }
                "until" => {
                    parsed.filters.until_ms = Some(parse_time("until", value)?);
                    parsed.until_text = Some(value.to_owned());
                }
                "type" => parsed.filters.event_type = Some(text("type", value)?),
                "userUuid" => parsed.filters.user_id = Some(text("userUuid", value)?),
                "user_email" => parsed.filters.user_email = Some(text("user_email", value)?),
                "method" => parsed.filters.method = Some(parse_method(value)?),
                "status" => parsed.filters.status = Some(parse_status(value)?),
                _ => {}
            }
        }
        if let (Some(since), Some(until)) = (parsed.filters.since_ms, parsed.filters.until_ms) {
            if until <= since {
                return Err(invalid("until", "must be later than `since`; `until` is exclusive"));
            }
        }
        Ok(parsed)
    }

    /// The store query for a page of `size` (the page size asked for, or the maximum).
    pub fn trail_query(&self) -> TrailQuery {
        TrailQuery {
            from: self.from.clone(),
            filters: self.filters.clone(),
            order: self.order,
            size: self.page_size.unwrap_or(MAX_PAGE_SIZE),
        }
    }

    /// Every parameter but `from`, in canonical order, as a link carries it.
    pub fn link_pairs(&self) -> Vec<(&'static str, String)> {
        let filters = &self.filters;
        let mut pairs = Vec::new();
        let mut add = |name: &'static str, value: Option<String>| {
            if let Some(value) = value {
                pairs.push((name, value));
            }
        };
        add("since", self.since_text.clone());
        add("until", self.until_text.clone());
        add("type", filters.event_type.clone());
        add("userUuid", filters.user_id.clone());
        add("user_email", filters.user_email.clone());
        add("method", filters.method.clone());
        add("status", filters.status.map(|status| status.to_string()));
        add("sort", (self.order == TrailOrder::Descending).then(|| "-timestamp".to_owned()));
        add("pageSize", self.page_size.map(|size| size.to_string()));
        pairs
    }
}

fn shown(value: &str) -> String {
    value.chars().take(32).collect()
}

fn invalid(name: &str, problem: &str) -> ApiError {
    ApiError::InvalidParameter { name: name.to_owned(), problem: problem.to_owned() }
}

fn parse_page_size(value: &str) -> Result<usize, ApiError> {
    value.parse::<usize>().ok().filter(|size| (1..=MAX_PAGE_SIZE).contains(size)).ok_or_else(|| {
        invalid(
            "pageSize",
            &format!(
                "must be a whole number from 1 to {MAX_PAGE_SIZE}, not `{}`; leave it out for pages of {MAX_PAGE_SIZE}",
                shown(value)
            ),
        )
    })
}

/// Pages are keyset pages: page N can only be reached by following `next` N-1 times, so
/// only the first page has a number.
fn check_page_number(value: &str) -> Result<(), ApiError> {
    if value == "1" {
        return Ok(());
    }
    Err(invalid(
        "pageNumber",
        &format!(
            "can only be 1, not `{}`: pages are cursor-based; follow `_links.next`, or pass `from=<uuid>` to start at an event",
            shown(value)
        ),
    ))
}

fn parse_sort(value: &str) -> Result<TrailOrder, ApiError> {
    // An unencoded `+` arrives as a space, so `sort=+timestamp` reads as ` timestamp`.
    match value {
        "+timestamp" | "timestamp" => Ok(TrailOrder::Ascending),
        "-timestamp" => Ok(TrailOrder::Descending),
        other => Err(invalid("sort", &format!("must be `+timestamp` or `-timestamp`, not `{}`", shown(other)))),
    }
}

fn parse_time(name: &str, value: &str) -> Result<i64, ApiError> {
    parse_rfc3339_millis(value).ok_or_else(|| {
        invalid(
            name,
            &format!(
                "must be an RFC 3339 date-time with an offset, e.g. 2024-05-01T00:00:00Z, not `{}` (encode `+` as %2B)",
                shown(value)
            ),
        )
    })
}

fn text(name: &str, value: &str) -> Result<String, ApiError> {
    if value.chars().count() > MAX_FILTER_CHARS || value.chars().any(char::is_control) {
        return Err(invalid(
            name,
            &format!("must be at most {MAX_FILTER_CHARS} characters without control characters"),
        ));
    }
    Ok(value.to_owned())
}

fn parse_method(value: &str) -> Result<String, ApiError> {
    if value.len() > 32 || !value.bytes().all(|byte| byte.is_ascii_alphabetic()) {
        return Err(invalid("method", &format!("must be an HTTP method such as GET or POST, not `{}`", shown(value))));
    }
    Ok(value.to_ascii_uppercase())
}

fn parse_status(value: &str) -> Result<u16, ApiError> {
    value.parse::<u16>().ok().filter(|status| *status <= 599).ok_or_else(|| {
        invalid(
            "status",
            &format!("must be an HTTP status from 100 to 599 (or 0: no response), not `{}`", shown(value)),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<AuditQuery, String> {
        AuditQuery::parse(Some(query)).map_err(|error| error.to_string())
    }

    #[test]
    fn reads_every_filter_and_gives_them_back_in_canonical_order() {
        let query = parse(
            "status=201&method=put&user_email=a%40b.example&userUuid=42&type=T&until=2030-01-02T00:00:00Z\
             &since=2030-01-01T00:00:00%2B01:00&sort=-timestamp&pageSize=7&pageNumber=1&from=abc&other=ignored",
        )
        .expect("valid");
        assert_eq!(query.from.as_deref(), Some("abc"));
        assert_eq!(query.filters.method.as_deref(), Some("PUT"));
        assert_eq!(query.filters.since_ms, Some(1_893_452_400_000));
        assert_eq!(query.order, TrailOrder::Descending);
        let names: Vec<&str> = query.link_pairs().iter().map(|(name, _)| *name).collect();
        assert_eq!(names, ["since", "until", "type", "userUuid", "user_email", "method", "status", "sort", "pageSize"]);
    }

    #[test]
    fn an_unencoded_plus_in_sort_still_means_ascending_and_empty_values_are_absent() {
        let query = parse("sort=+timestamp&type=&from=").expect("valid");
        assert_eq!(query, AuditQuery::default());
    }

    #[test]
    fn bad_values_are_refused_naming_the_parameter() {
        for (query, parameter) in [
            ("pageSize=0", "pageSize"),
            ("pageSize=101", "pageSize"),
            ("pageNumber=2", "pageNumber"),
            ("sort=timestamp.desc", "sort"),
            ("since=yesterday", "since"),
            ("until=2030-13-01T00:00:00Z", "until"),
            ("since=2030-01-02T00:00:00Z&until=2030-01-01T00:00:00Z", "until"),
            ("method=G%20T", "method"),
            ("status=600", "status"),
            ("status=ok", "status"),
            ("type=a&type=b", "type"),
        ] {
            let error = parse(query).expect_err(query);
            assert!(error.starts_with(&format!("`{parameter}` ")), "{query}: {error}");
        }
    }
}
