//! The JSON route table configuration: profiles, custom tables, and errors that name the
//! bad key.

use crate::config::FilterConfig;
use crate::config_error::ConfigError;
use crate::routes::request::RouteKind;
use crate::routes::{RouteRequest, RouteTable, RouteTableConfig};

/// The table of the `routes` section `json`, read as the filter reads its configuration.
fn table_from(json: &str) -> Result<RouteTable, String> {
    match FilterConfig::from_json(format!(r#"{{"routes": {json}}}"#).as_bytes()) {
        Ok(config) => Ok(config.route_table),
        Err(ConfigError::Routes(error)) => Err(error.to_string()),
        Err(other) => Err(other.to_string()),
    }
}

fn error_from(json: &str) -> String {
    match table_from(json) {
        Ok(_) => panic!("configuration was accepted but should not be: {json}"),
        Err(error) => error,
    }
}

#[test]
fn empty_and_pact_broker_profile_are_the_built_in_table() {
    let built_in = RouteTableConfig::default().build().unwrap().route_counts();
    assert_eq!(table_from("{}").unwrap().route_counts(), built_in, "`{{}}`: route counts");
    assert_eq!(table_from(r#"{"profile":"pact-broker"}"#).unwrap().route_counts(), built_in, "profile: route counts");
    let renamed = table_from(r#"{"profile":"pact-broker","fallbackType":"Custom::NotFound"}"#).unwrap();
    let answer = renamed.classify(&RouteRequest { method: "GET", path: "/nope", ..Default::default() });
    assert_eq!(answer.event_type, "Custom::NotFound", "/nope: field `type`");
}

#[test]
fn a_custom_table_types_by_its_own_routes() {
    let table = table_from(
        r#"{
            "routes": [
                {"methods": ["GET"], "path": "/things/mine", "type": "My::MyThings", "resourceName": "my_things"},
                {"methods": ["GET", "PUT"], "path": "/things/:id", "type": "My::Things", "resourceName": "thing", "bindings": {"k": "v"}},
                {"path": "/files/*", "type": "My::Files", "resourceName": "files"}
            ],
            "fallbackType": "My::NotFound",
            "fallbackResourceName": "unknown"
        }"#,
    )
    .unwrap();
    let classify = |method: &str, path: &str, accept: Option<&str>| {
        let answer = table.classify(&RouteRequest { method, path, accept, content_type: None });
        (answer.kind, answer.event_type.to_string(), answer.params.clone(), answer.method_allowed)
    };
    let (kind, event_type, params, allowed) = classify("DELETE", "/things/a%20b.json", Some("text/html"));
    assert_eq!(
        (kind, event_type.as_str()),
        (RouteKind::Api, "My::Things"),
        "/things/a%20b.json: fields `kind`, `type`"
    );
    assert_eq!(params.get("id").map(String::as_str), Some("a b"), "/things/a%20b.json: field `params.id`");
    assert_eq!(params.get("k").map(String::as_str), Some("v"), "/things/a%20b.json: field `params.k`");
    assert!(!allowed, "/things/a%20b.json: field `method_allowed` for DELETE");
    assert_eq!(classify("GET", "/things/mine", None).1, "My::MyThings", "/things/mine: field `type`");
    assert_eq!(classify("GET", "/files", None).1, "My::Files", "/files: field `type`");
    assert_eq!(classify("GET", "/files/a/b/c.txt", None).1, "My::Files", "/files/a/b/c.txt: field `type`");
    let (kind, event_type, params, _) = classify("GET", "/elsewhere", None);
    assert_eq!(
        (kind, event_type.as_str()),
        (RouteKind::Unmatched, "My::NotFound"),
        "/elsewhere: fields `kind`, `type`"
    );
    assert_eq!(
        params.get("resource_name").map(String::as_str),
        Some("unknown"),
        "/elsewhere: field `params.resource_name`"
    );
}

#[test]
fn custom_ui_routes_need_pact_broker_detection() {
    let ui_route = r#"{"methods": ["GET"], "path": "/", "type": "My::Home", "resourceName": "home"}"#;
    let json = format!(r#"{{"routes": [], "uiRoutes": [{ui_route}]}}"#);
    assert!(error_from(&json).starts_with("`uiRoutes` needs"), "{}", error_from(&json));
    let json = format!(r#"{{"routes": [], "uiRoutes": [{ui_route}], "apiDetection": "pact-broker"}}"#);
    let table = table_from(&json).unwrap();
    let answer =
        table.classify(&RouteRequest { method: "GET", path: "/", accept: Some("text/html"), content_type: None });
    assert_eq!((answer.kind, answer.event_type), (RouteKind::UiPage, "My::Home"), "/: fields `kind`, `type`");
}

#[test]
fn errors_name_the_bad_key() {
    let route =
        |fields: &str| format!(r#"{{"routes": [{{"path": "/ok", "type": "T", "resourceName": "ok"}}, {fields}]}}"#);
    let cases = [
        (route(r#"{"path": "things", "type": "T", "resourceName": "r"}"#), "`routes[1].path` must start with `/`"),
        (route(r#"{"path": "/a//b", "type": "T", "resourceName": "r"}"#), "`routes[1].path` has an empty segment"),
        (route(r#"{"path": "/a/", "type": "T", "resourceName": "r"}"#), "`routes[1].path` has an empty segment"),
        (
            route(r#"{"path": "/a/:", "type": "T", "resourceName": "r"}"#),
            "`routes[1].path` has a `:` parameter without a name",
        ),
        (
            route(r#"{"path": "/:id/:id", "type": "T", "resourceName": "r"}"#),
            "`routes[1].path` names parameter `:id` twice",
        ),
        (
            route(r#"{"path": "/*/a", "type": "T", "resourceName": "r"}"#),
            "`routes[1].path` may use `*` only as the last segment",
        ),
        (
            route(r#"{"path": "/:resource_name", "type": "T", "resourceName": "r"}"#),
            "`routes[1].path` may not name a parameter `:resource_name`",
        ),
        (route(r#"{"path": "/a", "type": " ", "resourceName": "r"}"#), "`routes[1].type` must not be empty"),
        (route(r#"{"path": "/a", "type": "T", "resourceName": ""}"#), "`routes[1].resourceName` must not be empty"),
        (
            route(r#"{"methods": ["GET", "BAD METHOD"], "path": "/a", "type": "T", "resourceName": "r"}"#),
            "`routes[1].methods[1]` must be an HTTP method",
        ),
        (
            route(r#"{"path": "/:id", "type": "T", "resourceName": "r", "bindings": {"id": "x"}}"#),
            "`routes[1].bindings.id` clashes with the path parameter `:id`",
        ),
        (
            route(r#"{"path": "/a", "type": "T", "resourceName": "r", "bindings": {"resource_name": "x"}}"#),
            "`routes[1].bindings.resource_name` may not set",
        ),
        (r#"{"profile": "pactflow"}"#.to_string(), "`profile` must be `pact-broker` (got `pactflow`)"),
        (
            r#"{"profile": "pact-broker", "routes": [{"path": "/a", "type": "T", "resourceName": "r"}]}"#.to_string(),
            "`profile` and `routes` exclude each other",
        ),
        (r#"{"routes": []}"#.to_string(), "`routes` is empty"),
        (r#"{"fallbackType": ""}"#.to_string(), "`fallbackType` must not be empty"),
        (r#"{"rotues": []}"#.to_string(), "unknown field `rotues`"),
        (r#"{"apiDetection": "sometimes"}"#.to_string(), "unknown variant `sometimes`"),
        (route(r#"{"path": "/a", "type": "T"}"#), "missing field `resourceName`"),
    ];
    for (json, expected) in cases {
        let message = error_from(&json);
        assert!(message.contains(expected), "config {json}: error `{message}` does not contain `{expected}`");
    }
}

#[test]
fn first_match_order_holds_across_literal_and_parameter_first_segments() {
    let table = table_from(
        r#"{"routes": [
            {"path": "/:org/reports", "type": "T::OrgReports", "resourceName": "org_reports"},
            {"path": "/billing/reports", "type": "T::BillingReports", "resourceName": "billing_reports"},
            {"path": "/admin/:page", "type": "T::AdminPage", "resourceName": "admin_page"},
            {"path": "/:tenant/things", "type": "T::TenantThings", "resourceName": "tenant_things"},
            {"path": "/admin/things", "type": "T::AdminThings", "resourceName": "admin_things"},
            {"path": "/:tenant/*", "type": "T::TenantAnything", "resourceName": "tenant_anything"},
            {"path": "/*", "type": "T::Anything", "resourceName": "anything"}
        ]}"#,
    )
    .unwrap();
    let cases = [
        ("/billing/reports", "T::OrgReports"),
        ("/admin/things", "T::AdminPage"),
        ("/acme/things", "T::TenantThings"),
        ("/acme", "T::TenantAnything"),
        ("/acme/a/b/c/d/e/f/g", "T::TenantAnything"),
        ("/", "T::Anything"),
    ];
    for (path, event_type) in cases {
        let answer = table.classify(&RouteRequest { method: "GET", path, ..Default::default() });
        assert_eq!(answer.event_type, event_type, "{path}: field `type`");
    }
}
