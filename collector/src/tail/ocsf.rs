//! An event as an OCSF API Activity (class_uid 6003, category 6 Application Activity),
//! schema version [`OCSF_VERSION`]. `activity_id` follows the method: Create (1) for
//! POST, Read (2) for GET and HEAD, Update (3) for PUT and PATCH, Delete (4) for DELETE,
//! Other (99) otherwise. `api.operation` is the event `type`; `metadata.uid` its uuid.

use audit_event::timestamp::parse_rfc3339_millis;
use serde_json::{json, Value};

use super::format::{at, status, text, user_id};

/// The OCSF schema version the mapping follows.
pub const OCSF_VERSION: &str = "1.3.0";
const API_ACTIVITY: u64 = 6003;

/// The OCSF activity of an HTTP method: (activity_id, activity_name).
pub fn activity(method: &str) -> (u64, &'static str) {
    match method.to_ascii_uppercase().as_str() {
        "POST" => (1, "Create"),
        "GET" | "HEAD" => (2, "Read"),
        "PUT" | "PATCH" => (3, "Update"),
        "DELETE" => (4, "Delete"),
        _ => (99, "Other"),
    }
}

/// Maps one event (nulls are dropped by the caller).
pub fn to_ocsf(event: &Value) -> Value {
    let method = text(event, &["payload", "method"]).unwrap_or_default();
    let (activity_id, activity_name) = activity(&method);
    let outcome = text(event, &["response", "outcome"]);
    let (status_id, status_name) = match outcome.as_deref() {
        Some("success") => (1, "Success"),
        Some(_) => (2, "Failure"),
        None => (0, "Unknown"),
    };
    let time = text(event, &["timestamp"]).as_deref().and_then(parse_rfc3339_millis);
    json!({
        "class_uid": API_ACTIVITY,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": API_ACTIVITY * 100 + activity_id,
        "severity_id": 1,
        "time": time,
        "status_id": status_id,
        "status": status_name,
        "status_detail": outcome,
        "actor": {"user": {
            "uid": user_id(event),
            "email_addr": text(event, &["user_email"]),
            "name": text(event, &["user_name"]),
        }},
        "src_endpoint": {"ip": text(event, &["payload", "clientIp"])},
        "http_request": {
            "http_method": (!method.is_empty()).then_some(method),
            "url": {
                "path": text(event, &["payload", "path"]),
                "query_string": text(event, &["payload", "queryString"]),
                "hostname": text(event, &["payload", "host"]),
            },
            "user_agent": text(event, &["payload", "userAgent"]),
            "referrer": text(event, &["payload", "referer"]),
            "uid": text(event, &["payload", "requestId"]),
        },
        "http_response": {"code": status(event)},
        "api": {"operation": text(event, &["type"]), "request": {"uid": text(event, &["payload", "requestId"])}},
        "metadata": {
            "uid": text(event, &["uuid"]),
            "version": OCSF_VERSION,
            "product": {"name": "audit-sidecar", "vendor_name": "audit-sidecar"},
            "original_time": text(event, &["timestamp"]),
        },
        "unmapped": {"params": at(event, &["payload", "params"]).cloned()},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tail::format::OutputFormat;

    fn ours() -> Value {
        json!({
            "uuid": "16WlpdLpDMzfMYxLTZYXYw", "timestamp": "2019-12-10T09:15:24.864+11:00",
            "type": "PactBroker::Api::Resources::Tag", "db_user_id": 42, "user_email": "bob@example.com",
            "payload": {"path": "/pacticipants/Foo/versions/1/tags/main", "queryString": "a=b", "method": "PUT",
                        "userAgent": "curl/8", "referer": null, "params": {"tag_name": "main"},
                        "clientIp": "10.0.0.7", "requestId": "req-1", "host": "broker"},
            "user_id": "42", "user_name": "bob", "response": {"status": 201, "durationMs": 3.5, "outcome": "success"}
        })
    }

    fn mapped(event: &Value) -> Value {
        serde_json::from_str(&OutputFormat::Ocsf.render(event)).expect("JSON line")
    }

    #[test]
    fn methods_map_to_activities() {
        assert_eq!(activity("POST"), (1, "Create"));
        assert_eq!(activity("get"), (2, "Read"));
        assert_eq!(activity("PATCH"), (3, "Update"));
        assert_eq!(activity("PUT"), (3, "Update"));
        assert_eq!(activity("DELETE"), (4, "Delete"));
        assert_eq!(activity("OPTIONS"), (99, "Other"));
    }

    #[test]
    fn an_event_maps_to_api_activity_with_actor_endpoint_request_and_response() {
        let ocsf = mapped(&ours());
        assert_eq!(ocsf["class_uid"], 6003);
        assert_eq!(ocsf["activity_id"], 3);
        assert_eq!(ocsf["type_uid"], 600_303);
        assert_eq!(ocsf["time"], 1_575_929_724_864_i64);
        assert_eq!(ocsf["actor"]["user"], json!({"uid": "42", "email_addr": "bob@example.com", "name": "bob"}));
        assert_eq!(ocsf["src_endpoint"]["ip"], "10.0.0.7");
        assert_eq!(ocsf["http_request"]["url"]["query_string"], "a=b");
        assert_eq!(ocsf["http_request"]["user_agent"], "curl/8");
        assert_eq!(ocsf["http_response"]["code"], 201);
        assert_eq!(ocsf["api"]["operation"], "PactBroker::Api::Resources::Tag");
        assert_eq!(ocsf["metadata"]["uid"], "16WlpdLpDMzfMYxLTZYXYw");
        assert_eq!(ocsf["metadata"]["product"]["name"], "audit-sidecar");
        assert_eq!(ocsf["status_id"], 1);
        assert!(ocsf["http_request"].get("referrer").is_none(), "null referer is left out");
    }

    #[test]
    fn a_pactflow_event_without_our_additions_maps_without_them() {
        let pactflow = json!({
            "uuid": "zHO0xNcjUseyU6DsisadXw", "timestamp": "2019-12-10T09:15:24.864+11:00",
            "type": "SaasBroker::Api::Resources::RegenerateApiToken", "db_user_id": 2,
            "user_email": "someuser@somecompany.com",
            "payload": {"path": "/settings/tokens/x/regenerate", "queryString": "", "method": "POST",
                        "userAgent": "Mozilla/5.0", "referer": "http://b/settings", "params": {}}
        });
        let ocsf = mapped(&pactflow);
        assert_eq!(ocsf["activity_id"], 1);
        assert_eq!(ocsf["actor"]["user"]["uid"], "2", "db_user_id stands in for user_id");
        assert_eq!(ocsf["status_id"], 0, "no response recorded: unknown");
        assert!(ocsf.get("http_response").is_none() && ocsf.get("src_endpoint").is_none(), "{ocsf}");
        assert!(ocsf["http_request"]["url"].get("query_string").is_none(), "empty query string left out");
    }
}
