//! An event in the Elastic Common Schema [`ECS_VERSION`]: `@timestamp`, `ecs.version`,
//! `event.*` (id = uuid, action = type, category `api` with a type from the method,
//! outcome from the response, sequence from the hash chain), `user.*`, `source.ip`,
//! `http.*`, `url.*` (the host split into `url.domain` and `url.port`),
//! `user_agent.original`. A gap-like event (it lost events) says so in `event.reason`,
//! `event.start`/`event.end` and `audit_sidecar.gap.lost_events`. An event's `alerts` (e.g. an
//! untrusted identity header) are its `tags`, with `event.severity` 3.
//!
//! Every native field without an ECS field goes under our namespace [`NAMESPACE`], at its
//! native path in snake_case (e.g. `audit_sidecar.chain.prev_hash`), so nothing is lost.

use serde_json::{json, Map, Value};

use super::fields::{alerts, at, host_and_port, is_ip, leftovers, status, text, user_id, FieldPath, GapSummary};

/// The ECS version the mapping follows (and the tests validate against).
pub const ECS_VERSION: &str = "9.4.0";
/// The top-level key of our custom fields.
pub const NAMESPACE: &str = "audit_sidecar";

/// `event.type` for a request: what the method does to the resource.
fn event_types(method: &str, outcome: Option<&str>) -> Vec<&'static str> {
    let mut types = vec![match method.to_ascii_uppercase().as_str() {
        "POST" => "creation",
        "PUT" | "PATCH" => "change",
        "DELETE" => "deletion",
        "GET" | "HEAD" | "OPTIONS" => "access",
        _ => "info",
    }];
    if matches!(outcome, Some("unauthenticated" | "forbidden")) {
        types.push("denied");
    }
    types
}

/// Maps one event (nulls and empty strings are dropped by the caller).
pub fn to_ecs(event: &Value) -> Value {
    let mut mapped: Vec<FieldPath> = vec![
        &["uuid"],
        &["timestamp"],
        &["type"],
        &["user_email"],
        &["user_name"],
        &["payload", "path"],
        &["payload", "queryString"],
        &["payload", "method"],
        &["payload", "userAgent"],
        &["payload", "referer"],
        &["payload", "requestId"],
        &["payload", "host"],
        &["response", "status"],
        &["response", "durationMs"],
        &["chain", "seq"],
    ];
    if text(event, &["user_id"]).is_some() {
        mapped.push(&["user_id"]);
    } else {
        mapped.push(&["db_user_id"]);
    }
    let event_type = text(event, &["type"]).unwrap_or_default();
    let gap = GapSummary::of(event);
    let outcome_text = text(event, &["response", "outcome"]);
    let outcome = match (&gap, outcome_text.as_deref()) {
        (Some(gap), _) if gap.is_loss() => "failure",
        (Some(_), _) => "success",
        (None, Some("success")) => "success",
        (None, Some(_)) => "failure",
        (None, None) => "unknown",
    };
    let method = text(event, &["payload", "method"]);
    let host = text(event, &["payload", "host"]).map(|host| host_and_port(&host));
    let client_ip = text(event, &["payload", "clientIp"]);
    let (source_ip, source_address) = match client_ip {
        Some(ip) if is_ip(&ip) => (Some(ip), None),
        other => (None, other),
    };
    mapped.push(&["payload", "clientIp"]);
    let path = text(event, &["payload", "path"]);
    let query = text(event, &["payload", "queryString"]);
    let original_url = path.as_ref().map(|path| match &query {
        Some(query) => format!("{path}?{query}"),
        None => path.clone(),
    });
    let alerts = alerts(event);
    if alerts.is_some() {
        mapped.push(&["alerts"]);
    }
    let types = match &gap {
        Some(_) => vec!["info"],
        None => event_types(method.as_deref().unwrap_or_default(), outcome_text.as_deref()),
    };

    json!({
        "@timestamp": text(event, &["timestamp"]),
        "ecs": {"version": ECS_VERSION},
        "event": {
            "id": text(event, &["uuid"]),
            "action": event_type,
            "outcome": outcome,
            "kind": "event",
            "category": ["api"],
            "type": types,
            "dataset": "audit_sidecar.audit",
            "sequence": at(event, &["chain", "seq"]).and_then(Value::as_i64),
            "duration": at(event, &["response", "durationMs"]).and_then(Value::as_f64).map(|ms| (ms * 1e6).round() as i64),
            "severity": match (&gap, &alerts) {
                (Some(gap), _) if gap.is_loss() => 4,
                (Some(_), _) => 2,
                (None, Some(_)) => 3,
                (None, None) => 1,
            },
            "reason": gap.as_ref().map(|gap| gap.describe(&event_type)),
            "start": gap.as_ref().and_then(|gap| gap.first_lost_at.clone()),
            "end": gap.as_ref().and_then(|gap| gap.last_lost_at.clone()),
        },
        "user": {
            "id": user_id(event),
            "email": text(event, &["user_email"]),
            "name": text(event, &["user_name"]),
        },
        "source": {"ip": source_ip, "address": source_address},
        "http": {
            "request": {
                "method": method,
                "id": text(event, &["payload", "requestId"]),
                "referrer": text(event, &["payload", "referer"]),
            },
            "response": {"status_code": status(event)},
        },
        "url": {
            "path": path,
            "query": query,
            "original": original_url,
            "domain": host.as_ref().map(|(name, _)| name),
            "port": host.as_ref().and_then(|(_, port)| *port),
        },
        "user_agent": {"original": text(event, &["payload", "userAgent"])},
        "observer": {"product": "audit-sidecar", "vendor": "audit-sidecar", "type": "audit"},
        "tags": alerts,
        NAMESPACE: snake_case_keys(leftovers(event, &mapped)),
    })
}

/// `value` with every object key in snake_case (`prevHash` → `prev_hash`), as ECS names
/// fields.
fn snake_case_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter().map(|(key, value)| (snake_case(&key), snake_case_keys(value))).collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(snake_case_keys).collect()),
        other => other,
    }
}

fn snake_case(key: &str) -> String {
    let mut snake = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            if !snake.is_empty() {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tail::format::OutputFormat;

    fn mapped(event: &Value) -> Value {
        serde_json::from_str(&OutputFormat::Ecs.render(event)).expect("JSON line")
    }

    #[test]
    fn an_event_maps_to_ecs_fields_and_keeps_the_rest_in_our_namespace() {
        let ecs = mapped(&json!({
            "uuid": "16WlpdLpDMzfMYxLTZYXYw", "timestamp": "2019-12-10T09:15:24.864+11:00",
            "type": "PactBroker::Api::Resources::Pacticipant", "db_user_id": null, "user_email": null,
            "payload": {"path": "/pacticipants/Foo", "queryString": "", "method": "GET", "userAgent": "curl/8",
                        "referer": null, "params": {"pacticipant_name": "Foo"}, "clientIp": "127.0.0.1",
                        "host": "127.0.0.1:10000"},
            "user_id": null, "user_name": "alice", "identity_source": "basic-auth",
            "response": {"status": 401, "durationMs": 1.5, "outcome": "unauthenticated"},
            "chain": {"seq": 3, "hash": "ab", "prevHash": "cd"}
        }));
        assert_eq!(ecs["@timestamp"], "2019-12-10T09:15:24.864+11:00");
        assert_eq!(ecs["ecs"]["version"], ECS_VERSION);
        assert_eq!(ecs["event"]["id"], "16WlpdLpDMzfMYxLTZYXYw");
        assert_eq!(ecs["event"]["action"], "PactBroker::Api::Resources::Pacticipant");
        assert_eq!(ecs["event"]["outcome"], "failure");
        assert_eq!(ecs["event"]["type"], json!(["access", "denied"]));
        assert_eq!(ecs["event"]["sequence"], 3);
        assert_eq!(ecs["event"]["duration"], 1_500_000);
        assert_eq!(ecs["user"], json!({"name": "alice"}));
        assert_eq!(ecs["source"], json!({"ip": "127.0.0.1"}));
        assert_eq!(ecs["http"]["request"]["method"], "GET");
        assert_eq!(ecs["http"]["response"]["status_code"], 401);
        assert_eq!(
            ecs["url"],
            json!({"path": "/pacticipants/Foo", "original": "/pacticipants/Foo", "domain": "127.0.0.1", "port": 10000})
        );
        assert_eq!(ecs["user_agent"]["original"], "curl/8");
        assert_eq!(
            ecs[NAMESPACE],
            json!({"identity_source": "basic-auth", "payload": {"params": {"pacticipant_name": "Foo"}},
                   "response": {"outcome": "unauthenticated"}, "chain": {"hash": "ab", "prev_hash": "cd"}})
        );
    }

    #[test]
    fn a_pactflow_event_has_an_unknown_outcome_and_its_numeric_user_id() {
        let ecs = mapped(&json!({
            "uuid": "zHO0xNcjUseyU6DsisadXw", "timestamp": "2019-12-10T09:15:24.864+11:00", "type": "T",
            "db_user_id": 2, "user_email": "a@b.example",
            "payload": {"path": "/x", "queryString": "q=1", "method": "POST", "userAgent": null, "referer": null, "params": {}}
        }));
        assert_eq!(ecs["event"]["outcome"], "unknown");
        assert_eq!(ecs["event"]["type"], json!(["creation"]));
        assert_eq!(ecs["user"], json!({"id": "2", "email": "a@b.example"}));
        assert_eq!(ecs["url"]["original"], "/x?q=1");
        assert!(ecs.get("source").is_none() && ecs["http"].get("response").is_none(), "{ecs}");
        assert!(ecs.get(NAMESPACE).is_none(), "nothing left over: {ecs}");
    }

    #[test]
    fn a_request_without_a_response_has_no_status_code() {
        let ecs = mapped(&json!({
            "uuid": "zHO0xNcjUseyU6DsisadXw", "timestamp": "2019-12-10T09:15:24.864+11:00", "type": "T",
            "payload": {"path": "/x", "queryString": "", "method": "PATCH", "params": {}},
            "response": {"status": 0, "durationMs": 2.0, "outcome": "no_response"}
        }));
        assert!(ecs["http"].get("response").is_none(), "{ecs}");
        assert_eq!(ecs["event"]["outcome"], "failure");
        assert_eq!(ecs[NAMESPACE]["response"]["outcome"], "no_response");
    }

    #[test]
    fn alerts_are_tags_and_untrusted_claims_stay_in_our_namespace() {
        let ecs = mapped(&json!({
            "uuid": "zHO0xNcjUseyU6DsisadXw", "timestamp": "2019-12-10T09:15:24.864+11:00", "type": "T",
            "payload": {"path": "/x", "queryString": "", "method": "GET", "params": {}},
            "untrusted_identity": [{"header": "x-forwarded-email", "value": "admin@example.com"}],
            "alerts": ["untrusted_identity_header"],
            "truncated_fields": [{"field": "payload.userAgent", "originalBytes": 9000}]
        }));
        assert_eq!(ecs["tags"], json!(["untrusted_identity_header"]));
        assert_eq!(ecs["event"]["severity"], 3);
        assert_eq!(ecs[NAMESPACE]["untrusted_identity"][0]["header"], "x-forwarded-email");
        assert_eq!(ecs[NAMESPACE]["truncated_fields"][0]["original_bytes"], 9000);
    }

    #[test]
    fn a_sender_that_finished_cleanly_is_a_success() {
        let finished = json!({
            "uuid": "zHO0xNcjUseyU6DsisadXw", "timestamp": "2026-11-22T02:01:00.000+00:00",
            "type": "AuditSidecar::SenderFinished",
            "payload": {"path": "", "queryString": "", "method": "", "params": {}},
            "gap": {"lostEvents": 0, "firstLostAt": "2026-11-22T02:00:00.000+00:00",
                    "lastLostAt": "2026-11-22T02:00:02.000+00:00", "sender": "AAAAAAAAAAAAAAAAAAAAAA",
                    "captured": 10, "delivered": 10, "lastHeardAt": "2026-11-22T02:00:02.000+00:00"}
        });
        let ecs = mapped(&finished);
        assert_eq!(ecs["event"]["outcome"], "success", "{ecs}");
        assert!(ecs["event"]["reason"].as_str().is_some_and(|reason| reason.contains("stopped cleanly")), "{ecs}");
    }

    #[test]
    fn a_delivery_gap_says_how_many_events_were_lost() {
        let ecs = mapped(&json!({
            "uuid": "zHO0xNcjUseyU6DsisadXw", "timestamp": "2026-11-22T02:01:00.000+00:00",
            "type": "AuditSidecar::DeliveryGap",
            "payload": {"path": "", "queryString": "", "method": "", "params": {}},
            "gap": {"lostEvents": 7, "firstLostAt": "2026-11-22T02:00:00.000+00:00",
                    "lastLostAt": "2026-11-22T02:00:30.000+00:00"}
        }));
        assert_eq!(ecs[NAMESPACE]["gap"]["lost_events"], 7);
        assert_eq!(ecs["event"]["start"], "2026-11-22T02:00:00.000+00:00");
        assert_eq!(ecs["event"]["end"], "2026-11-22T02:00:30.000+00:00");
        assert_eq!(ecs["event"]["outcome"], "failure");
        assert_eq!(ecs["event"]["severity"], 4);
        assert!(ecs["event"]["reason"].as_str().is_some_and(|reason| reason.starts_with("7 audit events were lost")));
    }
}
