//! The hrefs of a page's `_links`: absolute URLs on the configured public URL, or else on
//! the scheme (`x-forwarded-proto`, set by Envoy) and `Host` the client used, so a client
//! behind the proxy can follow them as they are.

use hyper::header::{HeaderMap, HOST};

use super::{ApiError, AUDIT_PATH};
use crate::config::PublicUrl;

/// `scheme://host[/prefix]`, without a trailing slash.
pub fn base_url(public_url: Option<&PublicUrl>, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(url) = public_url {
        return Ok(url.as_str().to_owned());
    }
    let host = headers
        .get(HOST)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|host| is_host(host))
        .ok_or(ApiError::MissingHost)?;
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(',').next())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    Ok(format!("{}://{host}", if https { "https" } else { "http" }))
}

/// A host name or address with an optional port, and nothing that could bend the URL.
fn is_host(candidate: &str) -> bool {
    !candidate.is_empty()
        && candidate.len() <= 255
        && candidate.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
}

/// The URL of the page starting at `from`, carrying `pairs` (the page's other parameters,
/// in canonical order) after it.
pub fn page_href(base: &str, from: Option<&str>, pairs: &[(&'static str, String)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    if let Some(from) = from {
        query.append_pair("from", from);
    }
    for (name, value) in pairs {
        query.append_pair(name, value);
    }
    let query = query.finish();
    if query.is_empty() {
        format!("{base}{AUDIT_PATH}")
    } else {
        format!("{base}{AUDIT_PATH}?{query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn the_public_url_wins_over_request_headers() {
        let public = PublicUrl::parse("https://audit.example/prefix/").ok();
        let base = base_url(public.as_ref(), &headers(&[("host", "internal:8080")]));
        assert_eq!(base.ok().as_deref(), Some("https://audit.example/prefix"));
    }

    #[test]
    fn without_a_public_url_host_and_forwarded_proto_are_used() {
        let base = base_url(None, &headers(&[("host", "broker.example:9292"), ("x-forwarded-proto", "https")]));
        assert_eq!(base.ok().as_deref(), Some("https://broker.example:9292"));
        let base = base_url(None, &headers(&[("host", "broker.example")]));
        assert_eq!(base.ok().as_deref(), Some("http://broker.example"));
    }

    #[test]
    fn a_missing_or_odd_host_is_refused() {
        assert!(base_url(None, &HeaderMap::new()).is_err());
        assert!(base_url(None, &headers(&[("host", "evil.example/path?x")])).is_err());
    }

    #[test]
    fn hrefs_carry_from_first_then_the_other_parameters_encoded() {
        assert_eq!(page_href("http://h", None, &[]), "http://h/audit");
        assert_eq!(page_href("http://h", Some("abc"), &[]), "http://h/audit?from=abc");
        let pairs = [("since", "2030-01-01T00:00:00+01:00".to_owned()), ("pageSize", "5".to_owned())];
        assert_eq!(
            page_href("http://h", Some("abc"), &pairs),
            "http://h/audit?from=abc&since=2030-01-01T00%3A00%3A00%2B01%3A00&pageSize=5"
        );
    }
}
