//! The trail viewer at `/audit/ui/`: static files compiled into the binary (`collector/ui/`),
//! served without a token; the page asks for a read token and calls `/audit`,
//! `/audit/activity` and `/audit/checkpoints` with it. Every answer carries a strict
//! Content-Security-Policy (scripts and styles from this origin only, no inline script or
//! style, no other origin to connect to, no framing), `nosniff`, no referrer and frame
//! denial, so a slip in the page's code cannot turn event data into markup or script.

use hyper::header::{HeaderValue, LOCATION};
use hyper::StatusCode;

use super::respond::{with_body, HttpResponse};
use super::ApiError;

/// The viewer's path; `/audit/ui` is redirected here.
pub const UI_PATH: &str = "/audit/ui/";

/// What the page may load and do.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// (file name under `/audit/ui/`, content type, content); the empty name is the page.
const FILES: &[(&str, &str, &str)] = &[
    ("", "text/html; charset=utf-8", include_str!("../../ui/index.html")),
    ("style.css", "text/css; charset=utf-8", include_str!("../../ui/style.css")),
    ("icon.svg", "image/svg+xml", include_str!("../../ui/icon.svg")),
    ("app.js", "text/javascript; charset=utf-8", include_str!("../../ui/app.js")),
    ("api.js", "text/javascript; charset=utf-8", include_str!("../../ui/api.js")),
    ("filters.js", "text/javascript; charset=utf-8", include_str!("../../ui/filters.js")),
    ("events.js", "text/javascript; charset=utf-8", include_str!("../../ui/events.js")),
    ("chart.js", "text/javascript; charset=utf-8", include_str!("../../ui/chart.js")),
    ("integrity.js", "text/javascript; charset=utf-8", include_str!("../../ui/integrity.js")),
    ("verify.js", "text/javascript; charset=utf-8", include_str!("../../ui/verify.js")),
    ("rangecheck.js", "text/javascript; charset=utf-8", include_str!("../../ui/rangecheck.js")),
    ("coverage.js", "text/javascript; charset=utf-8", include_str!("../../ui/coverage.js")),
    ("canonical.js", "text/javascript; charset=utf-8", include_str!("../../ui/canonical.js")),
    ("text.js", "text/javascript; charset=utf-8", include_str!("../../ui/text.js")),
    ("find.js", "text/javascript; charset=utf-8", include_str!("../../ui/find.js")),
    ("dom.js", "text/javascript; charset=utf-8", include_str!("../../ui/dom.js")),
];

/// True for the paths this module answers.
pub fn is_ui_path(path: &str) -> bool {
    path == "/audit/ui" || path.starts_with(UI_PATH)
}

/// Serves one file of the viewer, or redirects `/audit/ui` to `/audit/ui/`.
pub fn handle(path: &str) -> Result<HttpResponse, ApiError> {
    let Some(name) = path.strip_prefix(UI_PATH) else {
        let mut response = with_security_headers(with_body(StatusCode::PERMANENT_REDIRECT, "text/plain", ""));
        response.headers_mut().insert(LOCATION, HeaderValue::from_static(UI_PATH));
        return Ok(response);
    };
    let (_, content_type, content) = FILES
        .iter()
        .find(|(file, _, _)| *file == name || (file.is_empty() && name == "index.html"))
        .ok_or_else(|| ApiError::NotFound { path: path.chars().take(256).collect() })?;
    Ok(with_security_headers(with_body(StatusCode::OK, content_type, *content)))
}

fn with_security_headers(mut response: HttpResponse) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert("content-security-policy", HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_served_with_its_type_and_the_security_headers() {
        for (name, content_type, _) in FILES {
            let response = handle(&format!("{UI_PATH}{name}")).expect("served");
            assert_eq!(response.status(), StatusCode::OK, "{name}");
            let headers = response.headers();
            assert_eq!(headers["content-type"], *content_type, "{name}");
            assert_eq!(headers["content-security-policy"], CONTENT_SECURITY_POLICY, "{name}");
            assert_eq!(headers["x-content-type-options"], "nosniff", "{name}");
            assert_eq!(headers["x-frame-options"], "DENY", "{name}");
        }
        assert!(handle("/audit/ui/nothing.js").is_err());
        assert_eq!(handle("/audit/ui").expect("redirect").headers()[LOCATION], UI_PATH);
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_no_other_origin() {
        for (name, _, content) in FILES {
            // The SVG namespace is a name, not an address anything is fetched from.
            let content = content.replace("http://www.w3.org/2000/svg", "");
            for forbidden in ["<script>", "style=", "onclick", "onload", "http://", "https://", "innerHTML", "eval("] {
                assert!(!content.contains(forbidden), "{name} contains `{forbidden}`");
            }
        }
    }
}
