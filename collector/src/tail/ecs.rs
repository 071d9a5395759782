//! An event in the Elastic Common Schema: `@timestamp`, `event.*` (id = uuid, action =
//! type, outcome from the response), `user.*`, `source.ip`, `http.*`, `url.*`,
//! `user_agent.original`. Fields the event lacks are left out.

use serde_json::{json, Value};

use super::format::{status, text, user_id};

/// Maps one event (nulls are dropped by the caller).
pub fn to_ecs(event: &Value) -> Value {
    let outcome = match text(event, &["response", "outcome"]).as_deref() {
        Some("success") => "success",
        Some(_) => "failure",
        None => "unknown",
    };
    json!({
        "@timestamp": text(event, &["timestamp"]),
        "event": {
            "id": text(event, &["uuid"]),
            "action": text(event, &["type"]),
            "outcome": outcome,
            "kind": "event",
            "category": ["web"],
            "type": ["access"],
            "dataset": "audit_sidecar.audit",
        },
        "user": {
            "id": user_id(event),
            "email": text(event, &["user_email"]),
            "name": text(event, &["user_name"]),
        },
        "source": {"ip": text(event, &["payload", "clientIp"])},
        "http": {
            "request": {
                "method": text(event, &["payload", "method"]),
                "id": text(event, &["payload", "requestId"]),
                "referrer": text(event, &["payload", "referer"]),
            },
            "response": {"status_code": status(event)},
        },
        "url": {
            "path": text(event, &["payload", "path"]),
            "query": text(event, &["payload", "queryString"]),
            "domain": text(event, &["payload", "host"]),
        },
        "user_agent": {"original": text(event, &["payload", "userAgent"])},
        "observer": {"product": "audit-sidecar", "type": "audit"},
    })
}

#[cfg(test)]
mod tests {
    use crate::tail::format::OutputFormat;
    use serde_json::{json, Value};

    fn mapped(event: &Value) -> Value {
        serde_json::from_str(&OutputFormat::Ecs.render(event)).expect("JSON line")
    }

    #[test]
    fn an_event_maps_to_ecs_fields() {
        let ecs = mapped(&json!({
            "uuid": "16WlpdLpDMzfMYxLTZYXYw", "timestamp": "2019-12-10T09:15:24.864+11:00",
            "type": "PactBroker::Api::Resources::Pacticipant", "db_user_id": null, "user_email": null,
            "payload": {"path": "/pacticipants/Foo", "queryString": "", "method": "GET", "userAgent": "curl/8",
                        "referer": null, "params": {}, "clientIp": "127.0.0.1"},
            "user_id": null, "user_name": "alice", "response": {"status": 401, "durationMs": 1.0, "outcome": "unauthenticated"}
        }));
        assert_eq!(ecs["@timestamp"], "2019-12-10T09:15:24.864+11:00");
        assert_eq!(ecs["event"]["id"], "16WlpdLpDMzfMYxLTZYXYw");
        assert_eq!(ecs["event"]["action"], "PactBroker::Api::Resources::Pacticipant");
        assert_eq!(ecs["event"]["outcome"], "failure");
        assert_eq!(ecs["user"], json!({"name": "alice"}));
        assert_eq!(ecs["source"]["ip"], "127.0.0.1");
        assert_eq!(ecs["http"]["request"]["method"], "GET");
        assert_eq!(ecs["http"]["response"]["status_code"], 401);
        assert_eq!(ecs["url"], json!({"path": "/pacticipants/Foo"}));
        assert_eq!(ecs["user_agent"]["original"], "curl/8");
    }

    #[test]
    fn a_pactflow_event_has_an_unknown_outcome_and_its_numeric_user_id() {
        let ecs = mapped(&json!({
            "uuid": "zHO0xNcjUseyU6DsisadXw", "timestamp": "2019-12-10T09:15:24.864+11:00", "type": "T",
            "db_user_id": 2, "user_email": "a@b.example",
            "payload": {"path": "/x", "queryString": "q=1", "method": "POST", "userAgent": null, "referer": null, "params": {}}
        }));
        assert_eq!(ecs["event"]["outcome"], "unknown");
        assert_eq!(ecs["user"], json!({"id": "2", "email": "a@b.example"}));
        assert_eq!(ecs["url"]["query"], "q=1");
        assert!(ecs.get("source").is_none() && ecs["http"].get("response").is_none(), "{ecs}");
    }
}
