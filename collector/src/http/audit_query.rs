//! The query string of `GET /audit`, read into an [`AuditQuery`]: PactFlow's parameters
//! (`from`, `since`, `type`, `userUuid`, `sort`, `pageSize`, `pageNumber`) and ours
//! (`until`, `user_email`, `user_name`, `method`, `status`). A bad value is a 400 naming the parameter;
//! an empty value means the parameter is absent; parameters nobody knows are ignored, as
//! PactFlow clients send their own. [`AuditQuery::link_pairs`] gives the parameters back in
//! one canonical order, so `_links.next` carries every filter of the page it follows.

use audit_event::page::MAX_PAGE_SIZE;

use super::query_time::parse_query_time;
use super::ApiError;
use crate::store::query::{EventFilters, TrailOrder, TrailQuery};

/// The longest value a text filter accepts.
const MAX_FILTER_CHARS: usize = 512;

/// The most events a numbered page may lie past the start of its walk: finding where page
/// N starts walks an index over all of them (about 20 MB of index at this bound).
pub const MAX_SKIPPED_EVENTS: usize = 1_000_000;

/// A parsed `GET /audit` query.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// The uuid of the first event of the page.
    pub from: Option<String>,
    /// The page size the client asked for.
    pub page_size: Option<usize>,
    /// The page of the walk the client asked for (PactFlow's `pageNumber`, from 1).
    pub page_number: Option<usize>,
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
                "pageNumber" => parsed.page_number = Some(parse_page_number(value)?),
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
                "user_name" => parsed.filters.user_name = Some(text("user_name", value)?),
                "method" => parsed.filters.method = Some(parse_method(value)?),
                "status" => parsed.filters.status = Some(parse_status(value)?),
                "path_prefix" => parsed.filters.path_prefix = Some(parse_path_prefix(value)?),
                _ => {}
            }
        }
        if let (Some(since), Some(until)) = (parsed.filters.since_ms, parsed.filters.until_ms) {
            if until <= since {
                return Err(invalid("until", "must be later than `since`; `until` is exclusive"));
            }
        }
        if parsed.filters.path_prefix.is_some() && parsed.page_number.is_some_and(|number| number > 1) {
            return Err(invalid(
                "pageNumber",
                "cannot be used with `path_prefix`: no index finds page N of a path prefix, so its pages \
                 are found by following `_links.next` (a page may hold fewer than pageSize events)",
            ));
        }
        if parsed.skipped_events() > MAX_SKIPPED_EVENTS {
            return Err(invalid(
                "pageNumber",
                &format!(
                    "puts the page more than {MAX_SKIPPED_EVENTS} events into the trail ((pageNumber - 1) × pageSize); \
                     follow `_links.next` from an earlier page, or start nearer with `from=<uuid>` or `since`"
                ),
            ));
        }
        Ok(parsed)
    }

    fn size(&self) -> usize {
        self.page_size.unwrap_or(MAX_PAGE_SIZE)
    }

    fn skipped_events(&self) -> usize {
        self.page_number.unwrap_or(1).saturating_sub(1).saturating_mul(self.size())
    }

    /// The store query for a page of `size` (the page size asked for, or the maximum).
    pub fn trail_query(&self) -> TrailQuery {
        TrailQuery {
            from: self.from.clone(),
            filters: self.filters.clone(),
            order: self.order,
            size: self.size(),
            skip: self.skipped_events(),
            examine_at_most: None,
        }
    }

    /// The parameters of `_links.self`: those of [`Self::link_pairs`] and the page number.
    pub fn self_link_pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = self.link_pairs();
        pairs.extend(self.page_number.map(|number| ("pageNumber", number.to_string())));
        pairs
    }

    /// Every parameter but `from` and `pageNumber`, in canonical order, as a `next` link
    /// carries it: `next` is a cursor, so the page it names is found by `from` alone.
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
        add("user_name", filters.user_name.clone());
        add("method", filters.method.clone());
        add("status", filters.status.map(|status| status.to_string()));
        add("path_prefix", filters.path_prefix.clone());
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

/// A path prefix starts with `/` (every captured path does) and is compared literally.
fn parse_path_prefix(value: &str) -> Result<String, ApiError> {
    let prefix = text("path_prefix", value)?;
    if !prefix.starts_with('/') {
        return Err(invalid(
            "path_prefix",
            &format!("must start with `/`, like the paths it matches (`/pacticipants/Foo`), not `{}`", shown(value)),
        ));
    }
    Ok(prefix)
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

/// Page N is the page that following `next` N-1 times from the first page reaches.
fn parse_page_number(value: &str) -> Result<usize, ApiError> {
    value.parse::<usize>().ok().filter(|number| *number >= 1).ok_or_else(|| {
        invalid("pageNumber", &format!("must be a whole number from 1 (the first page), not `{}`", shown(value)))
    })
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
    parse_query_time(value).ok_or_else(|| {
        invalid(
            name,
            &format!(
                "must be a date-time such as 2024-05-01T00:00:00Z or 2024-05-01T02:00:00+02:00 (UTC without \
                 an offset), or a date such as 2024-05-01 (midnight UTC), not `{}`",
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
            "status=201&method=put&path_prefix=%2Fpacticipants%2FFoo&user_name=mallory&user_email=a%40b.example&userUuid=42&type=T&until=2030-01-02T00:00:00Z\
             &since=2030-01-01T00:00:00%2B01:00&sort=-timestamp&pageSize=7&pageNumber=1&from=abc&other=ignored",
        )
        .expect("valid");
        assert_eq!(query.from.as_deref(), Some("abc"));
        assert_eq!(query.filters.method.as_deref(), Some("PUT"));
        assert_eq!(query.filters.since_ms, Some(1_893_452_400_000));
        assert_eq!(query.order, TrailOrder::Descending);
        let names: Vec<&str> = query.link_pairs().iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "since",
                "until",
                "type",
                "userUuid",
                "user_email",
                "user_name",
                "method",
                "status",
                "path_prefix",
                "sort",
                "pageSize"
            ]
        );
        assert_eq!(query.filters.path_prefix.as_deref(), Some("/pacticipants/Foo"));
    }

    #[test]
    fn a_path_prefix_starts_with_a_slash_and_has_no_numbered_pages_after_the_first() {
        let relative = parse("path_prefix=pacticipants").expect_err("refused");
        assert!(relative.contains("path_prefix") && relative.contains("start with `/`"), "{relative}");
        let numbered = parse("path_prefix=%2Fp&pageNumber=2").expect_err("refused");
        assert!(numbered.contains("pageNumber") && numbered.contains("_links.next"), "{numbered}");
        assert!(parse("path_prefix=%2Fp%25_&pageNumber=1").is_ok(), "page 1 is the first page");
    }

    #[test]
    fn an_unencoded_plus_in_sort_still_means_ascending_and_empty_values_are_absent() {
        let query = parse("sort=+timestamp&type=&from=").expect("valid");
        assert_eq!(query, AuditQuery::default());
    }

    #[test]
    fn a_page_number_skips_the_pages_before_it_up_to_the_bound() {
        assert_eq!(parse("pageNumber=3&pageSize=7").expect("valid").trail_query().skip, 14);
        assert_eq!(parse("pageNumber=3").expect("valid").trail_query().skip, 2 * MAX_PAGE_SIZE);
        assert_eq!(parse("pageNumber=1").expect("valid").trail_query().skip, 0);
        let deepest = MAX_SKIPPED_EVENTS / MAX_PAGE_SIZE + 1;
        assert_eq!(parse(&format!("pageNumber={deepest}")).expect("valid").trail_query().skip, MAX_SKIPPED_EVENTS);
        let query = parse("pageNumber=2&pageSize=5").expect("valid");
        assert!(!query.link_pairs().iter().any(|(name, _)| *name == "pageNumber"), "next is a cursor");
        assert_eq!(query.self_link_pairs().last(), Some(&("pageNumber", "2".to_owned())));
    }

    #[test]
    fn times_without_an_offset_are_utc_and_a_space_is_a_plus() {
        let utc = parse("since=2030-01-01T00:00:00").expect("valid").filters.since_ms;
        assert_eq!(utc, Some(1_893_456_000_000));
        assert_eq!(parse("since=2030-01-01").expect("valid").filters.since_ms, utc);
        let plus = parse("until=2030-01-01T01:00:00+01:00").expect("valid").filters.until_ms;
        assert_eq!(plus, Some(1_893_456_000_000));
        let link = parse("until=2030-01-01T01:00:00+01:00").expect("valid").link_pairs();
        assert_eq!(link, [("until", "2030-01-01T01:00:00 01:00".to_owned())], "the link carries what was sent");
    }

    #[test]
    fn bad_values_are_refused_naming_the_parameter() {
        for (query, parameter) in [
            ("pageSize=0", "pageSize"),
            ("pageSize=101", "pageSize"),
            ("pageNumber=0", "pageNumber"),
            ("pageNumber=-1", "pageNumber"),
            ("pageNumber=two", "pageNumber"),
            ("pageNumber=10002", "pageNumber"),
            ("pageNumber=1000002&pageSize=1", "pageNumber"),
            ("sort=timestamp.desc", "sort"),
            ("since=yesterday", "since"),
            ("since=2030-01-01T00:00:00%2B1", "since"),
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
