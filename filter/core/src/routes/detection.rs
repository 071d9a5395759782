//! API request or UI page, by the Pact Broker's rules (its `RequestTarget` and HAL-browser
//! redirect middleware). UI routes answer only when the request is not an API request.
//! Header checks are ASCII case-insensitive and allocation-free: this runs per request.

use serde::Deserialize;

use super::request_path::RoutablePath;

/// How a table tells API requests from UI pages (`apiDetection` in the configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApiDetection {
    /// The broker's rules: Accept / content type, no Accept, badges, `*/*`, and the
    /// HAL-browser redirect of GETs that accept `text/html` and JSON.
    #[default]
    PactBroker,
    /// Every request is an API request; a table with this setting has no UI routes.
    None,
}

/// Who answers a request, before any route is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Audience {
    Api,
    /// The UI routes are tried first; the API table answers when none matches.
    Ui,
    /// The broker's middleware answers 303 to the HAL browser before routing.
    HalBrowserRedirect,
}

/// Substrings of Accept / Content-Type that make a request an API request.
const API_CONTENT_TYPES: [&str; 6] = [
    "application/hal+json",
    "application/json",
    "application/problem+json",
    "text/csv",
    "application/yaml",
    "text/plain",
];

/// Paths a browser fetches with `Accept: */*` that are still UI (static assets).
const WEB_ASSET_EXTENSIONS: [&str; 9] = [".js", ".woff", ".woff2", ".css", ".png", ".html", ".map", ".ttf", ".ico"];

/// The last path segment of every badge route.
const BADGE_SEGMENT: &str = "badge";

impl ApiDetection {
    pub(crate) fn audience(
        self,
        method: &str,
        path: &RoutablePath<'_>,
        accept_header: Option<&str>,
        content_type: Option<&str>,
    ) -> Audience {
        if self == Self::None {
            return Audience::Api;
        }
        let accept = path.extension_accept.or(accept_header).map(str::trim).unwrap_or("");
        if method == "GET"
            && starts_with_ignore_ascii_case(accept, "text/html")
            && contains_ignore_ascii_case(accept, "json")
        {
            return Audience::HalBrowserRedirect;
        }
        let is_api = is_api_content_type(accept)
            || content_type.is_some_and(is_api_content_type)
            || accept.is_empty()
            || path.last_segment() == Some(BADGE_SEGMENT)
            || (accept == "*/*" && !is_web_asset(path.path));
        if is_api {
            Audience::Api
        } else {
            Audience::Ui
        }
    }
}

fn is_api_content_type(header: &str) -> bool {
    API_CONTENT_TYPES.iter().any(|api_type| contains_ignore_ascii_case(header, api_type))
}

fn is_web_asset(path: &str) -> bool {
    WEB_ASSET_EXTENSIONS.iter().any(|extension| path.ends_with(extension))
}

/// `needle` must be lowercase ASCII.
fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    haystack.as_bytes().windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

fn starts_with_ignore_ascii_case(haystack: &str, prefix: &str) -> bool {
    haystack.as_bytes().get(..prefix.len()).is_some_and(|start| start.eq_ignore_ascii_case(prefix.as_bytes()))
}
