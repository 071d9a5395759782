//! An event as an OCSF API Activity (class_uid 6003, category 6 Application Activity),
//! OCSF [`OCSF_VERSION`]: the first OCSF version whose `http_method` list has PATCH, which
//! the Pact Broker's API uses. `activity_id` follows the method: Create (1) for POST, Read
//! (2) for GET and HEAD, Update (3) for PUT and PATCH, Delete (4) for DELETE, Other (99,
//! named after the method) otherwise. A gap-like event (it lost events) is Other (99),
//! named after its type, with `count` = events lost, `start_time`/`end_time` its window,
//! severity High and status Failure (Low and Success for a record that nothing was lost,
//! e.g. a sender heard again).
//!
//! An event with `alerts` (e.g. an untrusted identity header) is severity Medium with the
//! alerts as `metadata.labels`; one with `truncated_fields` has `metadata.is_truncated`.
//!
//! The attributes OCSF requires of 6003 are always present: `actor` (the user; `anonymous`
//! of type Unknown when the request carried no identity; `audit-sidecar` for a gap) and
//! `src_endpoint` (the client address; `unknown` when the event has none). Every native
//! field without a standard attribute goes to `unmapped` under its native path.

use audit_event::timestamp::parse_rfc3339_millis;
use serde_json::{json, Value};

use super::fields::{
    alerts, at, host_and_port, is_email, is_ip, leftovers, status, text, user_id, utc_offset_minutes, FieldPath,
    GapSummary,
};

/// The OCSF schema version the mapping follows (and the tests validate against).
pub const OCSF_VERSION: &str = "1.6.0";
const API_ACTIVITY: u64 = 6003;
/// The product named in `metadata.product` and, for gaps, as the actor.
const PRODUCT: &str = "audit-sidecar";

/// The values of `http_request.http_method` in OCSF [`OCSF_VERSION`]; any other method
/// stays in `unmapped` (and names the Other activity).
const HTTP_METHODS: [&str; 9] = ["CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"];

/// The OCSF activity of an HTTP method: (activity_id, activity_name). Other (99) is named
/// after the method itself, as OCSF asks for the source's own value.
pub fn activity(method: &str) -> (u64, String) {
    let upper = method.to_ascii_uppercase();
    let (id, name) = match upper.as_str() {
        "POST" => (1, "Create"),
        "GET" | "HEAD" => (2, "Read"),
        "PUT" | "PATCH" => (3, "Update"),
        "DELETE" => (4, "Delete"),
        _ => return (99, upper),
    };
    (id, name.to_owned())
}

/// The caption OCSF gives `type_uid` = 600300 + `activity_id`.
fn type_name(activity_id: u64) -> String {
    let activity = match activity_id {
        1 => "Create",
        2 => "Read",
        3 => "Update",
        4 => "Delete",
        _ => "Other",
    };
    format!("API Activity: {activity}")
}

/// Maps one event (nulls and empty strings are dropped by the caller).
pub fn to_ocsf(event: &Value) -> Value {
    let mut mapped: Vec<FieldPath> = vec![&["uuid"], &["timestamp"], &["type"], &["response", "status"]];
    let event_type = text(event, &["type"]).unwrap_or_default();
    let gap = GapSummary::of(event);
    let method = text(event, &["payload", "method"]).unwrap_or_default();
    let (activity_id, activity_name) = match &gap {
        Some(_) => (99, event_type.rsplit("::").next().unwrap_or_default().to_owned()),
        None => activity(&method),
    };
    let http_method = HTTP_METHODS.contains(&method.as_str()).then(|| method.clone());
    if http_method.is_some() {
        mapped.push(&["payload", "method"]);
    }
    let outcome = text(event, &["response", "outcome"]);
    if outcome.is_some() {
        mapped.push(&["response", "outcome"]);
    }
    let (status_id, status_name, status_detail) = match (&gap, outcome.as_deref()) {
        (Some(gap), _) if gap.is_loss() => (2, "Failure", Some(gap.describe(&event_type))),
        (Some(gap), _) => (1, "Success", Some(gap.describe(&event_type))),
        (None, Some("success")) => (1, "Success", outcome.clone()),
        (None, Some(_)) => (2, "Failure", outcome.clone()),
        (None, None) => (0, "Unknown", None),
    };
    let alerts = alerts(event);
    if alerts.is_some() {
        mapped.push(&["alerts"]);
    }
    let (severity_id, severity) = match (&gap, &alerts) {
        (Some(gap), _) if gap.is_loss() => (4, "High"),
        (Some(_), _) => (2, "Low"),
        (None, Some(_)) => (3, "Medium"),
        (None, None) => (1, "Informational"),
    };
    let truncated = at(event, &["truncated_fields"]).and_then(Value::as_array).is_some_and(|fields| !fields.is_empty());
    let timestamp = text(event, &["timestamp"]);
    let host = text(event, &["payload", "host"]).map(|host| host_and_port(&host));
    if host.is_some() {
        mapped.push(&["payload", "host"]);
    }
    let client_ip = text(event, &["payload", "clientIp"]).filter(|ip| is_ip(ip));
    if client_ip.is_some() {
        mapped.push(&["payload", "clientIp"]);
    }
    let sequence = at(event, &["chain", "seq"]).and_then(Value::as_i64);
    if sequence.is_some() {
        mapped.push(&["chain", "seq"]);
    }
    let path = text(event, &["payload", "path"]);
    mapped.extend([
        &["payload", "path"] as FieldPath,
        &["payload", "queryString"],
        &["payload", "userAgent"],
        &["payload", "referer"],
        &["payload", "requestId"],
    ]);

    json!({
        "class_uid": API_ACTIVITY,
        "class_name": "API Activity",
        "category_uid": 6,
        "category_name": "Application Activity",
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": API_ACTIVITY * 100 + activity_id,
        "type_name": type_name(activity_id),
        "severity_id": severity_id,
        "severity": severity,
        "time": timestamp.as_deref().and_then(parse_rfc3339_millis),
        "timezone_offset": timestamp.as_deref().and_then(utc_offset_minutes),
        "status_id": status_id,
        "status": status_name,
        "status_detail": status_detail,
        "status_code": status(event).map(|code| code.to_string()),
        "message": message(event, &method, gap.as_ref(), &event_type),
        "duration": at(event, &["response", "durationMs"]).and_then(Value::as_f64).map(|ms| ms.round() as i64),
        "count": gap.as_ref().and_then(|gap| gap.lost_events),
        "start_time": gap.as_ref().and_then(|gap| gap.first_lost_at.as_deref().and_then(parse_rfc3339_millis)),
        "end_time": gap.as_ref().and_then(|gap| gap.last_lost_at.as_deref().and_then(parse_rfc3339_millis)),
        "actor": actor(event, gap.is_some(), &mut mapped),
        "src_endpoint": match (&gap, client_ip) {
            (Some(_), _) => json!({"name": PRODUCT}),
            (None, Some(ip)) => json!({"ip": ip}),
            (None, None) => json!({"name": "unknown", "type_id": 0}),
        },
        "dst_endpoint": host.as_ref().map(|(name, port)| endpoint(name, *port)),
        "http_request": {
            "http_method": http_method,
            "url": path.map(|path| json!({
                "path": path,
                "query_string": text(event, &["payload", "queryString"]),
                "hostname": host.as_ref().map(|(name, _)| name),
                "port": host.as_ref().and_then(|(_, port)| *port),
            })),
            "user_agent": text(event, &["payload", "userAgent"]),
            "referrer": text(event, &["payload", "referer"]),
            "uid": text(event, &["payload", "requestId"]),
        },
        "http_response": {"code": status(event)},
        "api": {
            "operation": event_type,
            "request": {"uid": text(event, &["payload", "requestId"])},
            "response": {"code": status(event)},
        },
        "metadata": {
            "uid": text(event, &["uuid"]),
            "version": OCSF_VERSION,
            "product": {"name": PRODUCT, "vendor_name": PRODUCT, "version": env!("CARGO_PKG_VERSION")},
            "original_time": timestamp,
            "sequence": sequence,
            "labels": alerts,
            "is_truncated": truncated.then_some(true),
        },
        "unmapped": leftovers(event, &mapped),
    })
}

/// The actor: the user as identified, `anonymous` (type Unknown) when nothing identified
/// the caller, audit-sidecar itself for a gap. Records in `mapped` what it carried.
fn actor(event: &Value, is_gap: bool, mapped: &mut Vec<FieldPath>) -> Value {
    if is_gap {
        return json!({"app_name": PRODUCT});
    }
    let uid = user_id(event);
    if text(event, &["user_id"]).is_some() {
        mapped.push(&["user_id"]);
    } else if uid.is_some() {
        mapped.push(&["db_user_id"]);
    }
    let name = text(event, &["user_name"]);
    if name.is_some() {
        mapped.push(&["user_name"]);
    }
    let email = text(event, &["user_email"]);
    let email_addr = email.clone().filter(|email| is_email(email));
    // With no name, the email is the name the SIEM shows (OCSF's user needs a uid or name).
    let name_or_email = name.or_else(|| email.clone());
    if email_addr.is_some() || (email.is_some() && name_or_email == email) {
        mapped.push(&["user_email"]);
    }
    if uid.is_none() && name_or_email.is_none() {
        return json!({"user": {"name": "anonymous", "type_id": 0, "type": "Unknown"}});
    }
    json!({"user": {"uid": uid, "name": name_or_email, "email_addr": email_addr}})
}

/// A network endpoint for a host name or address and a port.
fn endpoint(name: &str, port: Option<u16>) -> Value {
    if is_ip(name) {
        json!({"ip": name, "port": port})
    } else {
        json!({"hostname": name, "port": port})
    }
}

/// One line for an analyst: the request and how it ended, or what a gap lost.
fn message(event: &Value, method: &str, gap: Option<&GapSummary>, event_type: &str) -> String {
    if let Some(gap) = gap {
        return gap.describe(event_type);
    }
    let path = text(event, &["payload", "path"]).unwrap_or_default();
    match (status(event), text(event, &["response", "outcome"])) {
        (Some(code), _) => format!("{method} {path} answered {code}"),
        (None, Some(_)) => format!("{method} {path} ended without a response"),
        (None, None) => format!("{method} {path}"),
    }
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
                        "clientIp": "10.0.0.7", "requestId": "req-1", "host": "broker:9292"},
            "user_id": "42", "user_name": "bob", "identity_source": "jwt", "token_fingerprint": "fp1",
            "response": {"status": 201, "durationMs": 3.5, "outcome": "success"},
            "chain": {"seq": 9, "hash": "ab", "prevHash": "cd"}
        })
    }

    fn mapped(event: &Value) -> Value {
        serde_json::from_str(&OutputFormat::Ocsf.render(event)).expect("JSON line")
    }

    #[test]
    fn methods_map_to_activities_and_other_is_named_after_the_method() {
        assert_eq!(activity("POST"), (1, "Create".to_owned()));
        assert_eq!(activity("get"), (2, "Read".to_owned()));
        assert_eq!(activity("PATCH"), (3, "Update".to_owned()));
        assert_eq!(activity("PUT"), (3, "Update".to_owned()));
        assert_eq!(activity("DELETE"), (4, "Delete".to_owned()));
        assert_eq!(activity("OPTIONS"), (99, "OPTIONS".to_owned()));
    }

    #[test]
    fn an_event_maps_to_api_activity_with_actor_endpoints_request_and_response() {
        let ocsf = mapped(&ours());
        assert_eq!(ocsf["class_uid"], 6003);
        assert_eq!(ocsf["activity_id"], 3);
        assert_eq!(ocsf["type_uid"], 600_303);
        assert_eq!(ocsf["time"], 1_575_929_724_864_i64);
        assert_eq!(ocsf["timezone_offset"], 660);
        assert_eq!(ocsf["actor"]["user"], json!({"uid": "42", "email_addr": "bob@example.com", "name": "bob"}));
        assert_eq!(ocsf["src_endpoint"], json!({"ip": "10.0.0.7"}));
        assert_eq!(ocsf["dst_endpoint"], json!({"hostname": "broker", "port": 9292}));
        assert_eq!(
            ocsf["http_request"]["url"],
            json!({"path": "/pacticipants/Foo/versions/1/tags/main", "query_string": "a=b", "hostname": "broker", "port": 9292})
        );
        assert_eq!(ocsf["http_request"]["user_agent"], "curl/8");
        assert_eq!(ocsf["api"]["response"]["code"], 201);
        assert_eq!(ocsf["http_response"]["code"], 201);
        assert_eq!(ocsf["status_code"], "201");
        assert_eq!(ocsf["api"]["operation"], "PactBroker::Api::Resources::Tag");
        assert_eq!(ocsf["metadata"]["uid"], "16WlpdLpDMzfMYxLTZYXYw");
        assert_eq!(ocsf["metadata"]["sequence"], 9);
        assert_eq!(ocsf["status_id"], 1);
        assert!(ocsf["http_request"].get("referrer").is_none(), "null referer is left out");
        assert_eq!(
            ocsf["unmapped"],
            json!({"db_user_id": 42, "identity_source": "jwt", "token_fingerprint": "fp1",
                   "payload": {"params": {"tag_name": "main"}}, "response": {"durationMs": 3.5},
                   "chain": {"hash": "ab", "prevHash": "cd"}})
        );
    }

    #[test]
    fn a_request_without_a_response_has_no_status_code() {
        let mut event = ours();
        event["response"] = json!({"status": 0, "durationMs": 1.0, "outcome": "no_response"});
        let ocsf = mapped(&event);
        assert!(ocsf.get("http_response").is_none() && ocsf["api"].get("response").is_none(), "{ocsf}");
        assert!(ocsf.get("status_code").is_none(), "{ocsf}");
        assert_eq!((ocsf["status_id"].clone(), ocsf["status_detail"].clone()), (json!(2), json!("no_response")));
        assert!(ocsf["unmapped"]["response"].get("status").is_none(), "status 0 is not exported: {ocsf}");
    }

    #[test]
    fn a_delivery_gap_says_how_many_events_were_lost_and_when() {
        let gap = json!({
            "uuid": "zHO0xNcjUseyU6DsisadXw", "timestamp": "2026-11-22T02:01:00.000+00:00",
            "type": "AuditSidecar::DeliveryGap", "db_user_id": null, "user_email": null,
            "payload": {"path": "", "queryString": "", "method": "", "userAgent": null, "referer": null, "params": {}},
            "gap": {"lostEvents": 7, "firstLostAt": "2026-11-22T02:00:00.000+00:00",
                    "lastLostAt": "2026-11-22T02:00:30.000+00:00"}
        });
        let ocsf = mapped(&gap);
        assert_eq!((ocsf["activity_id"].clone(), ocsf["activity_name"].clone()), (json!(99), json!("DeliveryGap")));
        assert_eq!(ocsf["count"], 7);
        assert_eq!(ocsf["start_time"], 1_795_312_800_000_i64);
        assert_eq!(ocsf["end_time"], 1_795_312_830_000_i64);
        assert_eq!(ocsf["severity_id"], 4);
        assert_eq!(ocsf["status_id"], 2);
        assert!(ocsf["message"].as_str().is_some_and(|message| message.starts_with("7 audit events were lost")));
        assert_eq!(ocsf["actor"], json!({"app_name": "audit-sidecar"}));
        assert_eq!(ocsf["unmapped"]["gap"]["lostEvents"], 7, "the whole gap record is kept");
        assert!(ocsf.get("http_request").is_none(), "{ocsf}");
    }

    #[test]
    fn a_collector_record_of_a_stopped_sender_keeps_its_sender_numbers_and_unknown_window() {
        let stopped = json!({
            "uuid": "zHO0xNcjUseyU6DsisadXw", "timestamp": "2026-11-22T02:01:00.000+00:00",
            "type": "AuditSidecar::SenderStopped",
            "payload": {"path": "", "queryString": "", "method": "", "params": {}},
            "gap": {"lostEvents": 3, "firstLostAt": "2026-11-22T02:00:00.000+00:00",
                    "lastLostAt": "2026-11-22T02:00:01.000+00:00", "sender": "AAAAAAAAAAAAAAAAAAAAAA",
                    "seqs": [{"first": 8, "last": 10}], "captured": 10, "delivered": 7,
                    "lastHeardAt": "2026-11-22T02:00:02.000+00:00", "unknownUntil": "2026-11-22T02:00:03.000+00:00"}
        });
        let ocsf = mapped(&stopped);
        assert_eq!((ocsf["activity_name"].clone(), ocsf["count"].clone()), (json!("SenderStopped"), json!(3)));
        assert_eq!(ocsf["unmapped"]["gap"]["seqs"], json!([{"first": 8, "last": 10}]));
        assert_eq!(ocsf["unmapped"]["gap"]["sender"], "AAAAAAAAAAAAAAAAAAAAAA");
        assert!(ocsf["message"].as_str().is_some_and(|message| message.contains("unknown number after")), "{ocsf}");
        let mut resumed = stopped;
        resumed["type"] = json!("AuditSidecar::SenderResumed");
        resumed["gap"] = json!({"lostEvents": 0, "firstLostAt": "2026-11-22T02:00:00.000+00:00",
                                "lastLostAt": "2026-11-22T02:00:00.000+00:00", "sender": "AAAAAAAAAAAAAAAAAAAAAA"});
        let ocsf = mapped(&resumed);
        assert_eq!(
            (ocsf["severity_id"].clone(), ocsf["status_id"].clone()),
            (json!(2), json!(1)),
            "nothing lost: {ocsf}"
        );
    }

    #[test]
    fn a_sender_that_finished_cleanly_is_a_success_distinct_from_one_that_fell_silent() {
        let finished = json!({
            "uuid": "zHO0xNcjUseyU6DsisadXw", "timestamp": "2026-11-22T02:01:00.000+00:00",
            "type": "AuditSidecar::SenderFinished",
            "payload": {"path": "", "queryString": "", "method": "", "params": {}},
            "gap": {"lostEvents": 0, "firstLostAt": "2026-11-22T02:00:00.000+00:00",
                    "lastLostAt": "2026-11-22T02:00:02.000+00:00", "sender": "AAAAAAAAAAAAAAAAAAAAAA",
                    "captured": 10, "delivered": 10, "lastHeardAt": "2026-11-22T02:00:02.000+00:00"}
        });
        let ocsf = mapped(&finished);
        assert_eq!((ocsf["activity_name"].clone(), ocsf["status_id"].clone()), (json!("SenderFinished"), json!(1)));
        assert_eq!(ocsf["severity_id"], json!(2), "informational, not an incident: {ocsf}");
        assert!(ocsf["message"].as_str().is_some_and(|message| message.contains("stopped cleanly")), "{ocsf}");
    }

    #[test]
    fn an_untrusted_identity_attempt_is_a_labelled_medium_event_and_a_cut_field_marks_it_truncated() {
        let mut event = ours();
        event["untrusted_identity"] = json!([{"header": "x-forwarded-email", "value": "admin@example.com"}]);
        event["alerts"] = json!(["untrusted_identity_header"]);
        event["truncated_fields"] = json!([{"field": "payload.userAgent", "originalBytes": 9000}]);
        let ocsf = mapped(&event);
        assert_eq!((ocsf["severity_id"].clone(), ocsf["severity"].clone()), (json!(3), json!("Medium")));
        assert_eq!(ocsf["metadata"]["labels"], json!(["untrusted_identity_header"]));
        assert_eq!(ocsf["metadata"]["is_truncated"], true);
        assert_eq!(ocsf["unmapped"]["untrusted_identity"][0]["value"], "admin@example.com");
        assert_eq!(ocsf["unmapped"]["truncated_fields"][0]["originalBytes"], 9000);
        assert!(ocsf["unmapped"].get("alerts").is_none(), "alerts are mapped: {ocsf}");
    }

    #[test]
    fn an_events_sender_number_is_kept_in_unmapped() {
        let mut event = ours();
        event["sender"] = json!({"id": "AAAAAAAAAAAAAAAAAAAAAA", "seq": 12});
        assert_eq!(mapped(&event)["unmapped"]["sender"], json!({"id": "AAAAAAAAAAAAAAAAAAAAAA", "seq": 12}));
    }

    #[test]
    fn a_pactflow_event_without_our_additions_keeps_the_required_attributes() {
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
        assert_eq!(ocsf["src_endpoint"], json!({"name": "unknown", "type_id": 0}));
        assert!(ocsf.get("http_response").is_none() && ocsf.get("unmapped").is_none(), "{ocsf}");
        assert!(ocsf["http_request"]["url"].get("query_string").is_none(), "empty query string left out");
    }

    #[test]
    fn an_anonymous_request_has_an_anonymous_actor_and_an_email_only_user_is_named_by_the_email() {
        let mut event = ours();
        for key in ["db_user_id", "user_email", "user_id", "user_name"] {
            event[key] = Value::Null;
        }
        assert_eq!(mapped(&event)["actor"], json!({"user": {"name": "anonymous", "type_id": 0, "type": "Unknown"}}));
        event["user_email"] = json!("carol@example.com");
        assert_eq!(
            mapped(&event)["actor"],
            json!({"user": {"name": "carol@example.com", "email_addr": "carol@example.com"}})
        );
        event["user_email"] = json!("not an email");
        assert_eq!(mapped(&event)["actor"], json!({"user": {"name": "not an email"}}));
    }
}
