//! The types of requests for audit-sidecar's own API. Envoy routes `/audit` and everything
//! under `/audit/` to the collector, whatever service it guards, so these are typed here,
//! before the service's route table: reading the trail is an audited event of its own kind,
//! not an unmatched request of the service.

use audit_event::activity::ACTIVITY_PATH;
use audit_event::chain::{CHECKPOINTS_PATH, PUBLIC_KEY_PATH};
use audit_event::page::{AUDIT_PATH, OPENAPI_PATH};

/// `type` of a request to a path under `/audit/` that the collector does not serve.
pub const SIDECAR_NOT_FOUND_TYPE: &str = "AuditSidecar::Api::NotFound";

/// The trail viewer's page; its files are under it.
const VIEWER_PATH: &str = "/audit/ui";

/// A request to the collector's API: its event `type` and `params.resource_name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SidecarRoute {
    pub event_type: &'static str,
    pub resource_name: &'static str,
}

/// The route of a request to the collector's API, or `None` for any other path.
pub fn classify_sidecar_path(path: &str) -> Option<SidecarRoute> {
    let path = path.strip_suffix('/').filter(|trimmed| !trimmed.is_empty()).unwrap_or(path);
    let (event_type, resource_name) = match path {
        AUDIT_PATH => ("AuditSidecar::Api::Trail", "audit_trail"),
        CHECKPOINTS_PATH => ("AuditSidecar::Api::Checkpoints", "audit_checkpoints"),
        PUBLIC_KEY_PATH => ("AuditSidecar::Api::PublicKey", "audit_public_key"),
        OPENAPI_PATH => ("AuditSidecar::Api::OpenApi", "audit_openapi"),
        ACTIVITY_PATH => ("AuditSidecar::Api::Activity", "audit_activity"),
        _ if path == VIEWER_PATH || path.starts_with("/audit/ui/") => ("AuditSidecar::Viewer", "audit_viewer"),
        _ if path.starts_with("/audit/") => (SIDECAR_NOT_FOUND_TYPE, "not_found"),
        _ => return None,
    };
    Some(SidecarRoute { event_type, resource_name })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_of(path: &str) -> Option<String> {
        classify_sidecar_path(path).map(|route| route.event_type.to_string())
    }

    #[test]
    fn the_collectors_paths_get_their_own_types() {
        assert_eq!(type_of("/audit").as_deref(), Some("AuditSidecar::Api::Trail"));
        assert_eq!(type_of("/audit/").as_deref(), Some("AuditSidecar::Api::Trail"));
        assert_eq!(type_of("/audit/checkpoints").as_deref(), Some("AuditSidecar::Api::Checkpoints"));
        assert_eq!(type_of("/audit/public-key").as_deref(), Some("AuditSidecar::Api::PublicKey"));
        assert_eq!(type_of("/audit/openapi.json").as_deref(), Some("AuditSidecar::Api::OpenApi"));
        assert_eq!(type_of("/audit/activity").as_deref(), Some("AuditSidecar::Api::Activity"));
        assert_eq!(type_of("/audit/ui/").as_deref(), Some("AuditSidecar::Viewer"));
        assert_eq!(type_of("/audit/ui/app.js").as_deref(), Some("AuditSidecar::Viewer"));
        assert_eq!(type_of("/audit/nope").as_deref(), Some(SIDECAR_NOT_FOUND_TYPE));
    }

    #[test]
    fn other_paths_are_left_to_the_services_table() {
        for path in ["/", "/auditing", "/audits", "/pacticipants/audit", "/x/audit"] {
            assert_eq!(type_of(path), None, "{path}");
        }
    }
}
