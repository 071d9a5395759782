//! `GET /audit/openapi.json`: the OpenAPI 3 description of the collector's HTTP API
//! (`collector/openapi.json`, compiled in), without authentication, under `/audit/` so that
//! Envoy's `/audit/*` route serves it on the service's own host.

use hyper::StatusCode;

use super::respond::{with_body, HttpResponse};
use super::ApiError;

pub use audit_event::page::OPENAPI_PATH;

/// The document, as checked in.
pub const OPENAPI_DOCUMENT: &str = include_str!("../../openapi.json");

/// Serves the document.
pub fn handle() -> Result<HttpResponse, ApiError> {
    Ok(with_body(StatusCode::OK, "application/json", OPENAPI_DOCUMENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_and_describes_every_route() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI_DOCUMENT).expect("openapi.json is JSON");
        assert!(document["openapi"].as_str().unwrap_or_default().starts_with("3."), "{}", document["openapi"]);
        for path in
            ["/audit", "/audit/activity", "/audit/ui/", "/audit/openapi.json", "/healthz", "/metrics", "/v1/events"]
        {
            assert!(document["paths"].get(path).is_some(), "openapi.json lacks {path}");
        }
        let parameters: Vec<&str> = document["paths"]["/audit"]["get"]["parameters"]
            .as_array()
            .expect("parameters")
            .iter()
            .filter_map(|parameter| parameter["name"].as_str())
            .collect();
        for name in [
            "from",
            "since",
            "until",
            "type",
            "userUuid",
            "user_email",
            "user_name",
            "path_prefix",
            "method",
            "status",
            "sort",
            "pageSize",
            "pageNumber",
        ] {
            assert!(parameters.contains(&name), "GET /audit does not document `{name}`");
        }
    }
}
