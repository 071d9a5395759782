//! The reference's rules one by one, as explicit examples: the ordering traps, extensions,
//! trailing slashes, `//`, percent-decoding, extra bindings, 405 still typed, API or UI by
//! Accept, the HAL-browser redirect and the unmatched fallback.

use std::collections::BTreeMap;

use super::generated_from_data::BROWSER_ACCEPT;
use crate::routes::request::{RouteKind, RouteMatch};
use crate::routes::{RouteRequest, RouteTable, RouteTableConfig};

const HAL_JSON: Option<&str> = Some("application/hal+json");

fn table() -> RouteTable {
    RouteTableConfig::default().build().unwrap_or_else(|error| panic!("built-in table: {error}"))
}

fn classify<'t>(table: &'t RouteTable, method: &str, path: &str, accept: Option<&str>) -> RouteMatch<'t> {
    table.classify(&RouteRequest { method, path, accept, content_type: None })
}

/// Asserts the type and every param, naming the path and the field that differs.
fn assert_typed(answer: &RouteMatch<'_>, path: &str, event_type: &str, params: &[(&str, &str)]) {
    assert_eq!(answer.event_type, event_type, "{path}: field `type`");
    let expected: BTreeMap<String, String> =
        params.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect();
    assert_eq!(answer.params, expected, "{path}: field `params`");
}

const RESOURCES: &str = "PactBroker::Api::Resources::";

#[test]
fn webhooks_execute_is_not_a_webhook_uuid() {
    let table = table();
    let answer = classify(&table, "POST", "/webhooks/execute", HAL_JSON);
    assert_typed(
        &answer,
        "/webhooks/execute",
        &format!("{RESOURCES}WebhookExecution"),
        &[("resource_name", "execute_unsaved_webhook")],
    );
    let answer = classify(&table, "GET", "/webhooks/abc-123", HAL_JSON);
    assert_typed(
        &answer,
        "/webhooks/abc-123",
        &format!("{RESOURCES}Webhook"),
        &[("resource_name", "webhook"), ("uuid", "abc-123")],
    );
}

#[test]
fn pacticipants_label_route_wins_over_the_pacticipant_routes_of_its_length() {
    let table = table();
    let path = "/pacticipants/label/versions";
    assert_typed(
        &classify(&table, "GET", path, HAL_JSON),
        path,
        &format!("{RESOURCES}PacticipantsForLabel"),
        &[("resource_name", "pacticipants_for_label"), ("label_name", "versions")],
    );
    // Two segments: only `/pacticipants/:pacticipant_name` has that length.
    let path = "/pacticipants/label";
    assert_typed(
        &classify(&table, "GET", path, HAL_JSON),
        path,
        &format!("{RESOURCES}Pacticipant"),
        &[("resource_name", "pacticipant"), ("pacticipant_name", "label")],
    );
}

#[test]
fn latest_badge_is_a_badge_not_a_tag_named_badge() {
    let table = table();
    let path = "/pacts/provider/Bar/consumer/Foo/latest/badge";
    assert_typed(
        &classify(&table, "GET", path, None),
        path,
        &format!("{RESOURCES}Badge"),
        &[("resource_name", "latest_pact_badge"), ("provider_name", "Bar"), ("consumer_name", "Foo")],
    );
    let path = "/pacts/provider/Bar/consumer/Foo/latest/prod";
    assert_typed(
        &classify(&table, "GET", path, None),
        path,
        &format!("{RESOURCES}LatestPact"),
        &[
            ("resource_name", "latest_tagged_pact_publication"),
            ("provider_name", "Bar"),
            ("consumer_name", "Foo"),
            ("tag", "prod"),
        ],
    );
}

#[test]
fn branch_versions_and_branch_latest_come_before_branch_name_routes() {
    let table = table();
    let path = "/pacts/provider/Bar/consumer/Foo/branch/versions";
    assert_typed(
        &classify(&table, "GET", path, None),
        path,
        &format!("{RESOURCES}PactVersionsForBranch"),
        &[("resource_name", "pact_publications_for_main_branch"), ("provider_name", "Bar"), ("consumer_name", "Foo")],
    );
    let path = "/pacts/provider/Bar/consumer/Foo/branch/main";
    assert_typed(
        &classify(&table, "GET", path, None),
        path,
        &format!("{RESOURCES}PactVersionsForBranch"),
        &[
            ("resource_name", "pact_publications_for_branch"),
            ("provider_name", "Bar"),
            ("consumer_name", "Foo"),
            ("branch_name", "main"),
        ],
    );
    let path = "/pacts/provider/Bar/branch/latest";
    assert_typed(
        &classify(&table, "GET", path, None),
        path,
        &format!("{RESOURCES}LatestProviderPactsForBranch"),
        &[("resource_name", "latest_main_branch_provider_pact_publications"), ("provider_name", "Bar")],
    );
    let path = "/pacts/provider/Bar/branch/main";
    assert_typed(
        &classify(&table, "GET", path, None),
        path,
        &format!("{RESOURCES}ProviderPactsForConsumerBranch"),
        &[("resource_name", "branch_provider_pact_publications"), ("provider_name", "Bar"), ("branch_name", "main")],
    );
}

#[test]
fn known_extensions_are_stripped_and_others_are_part_of_the_name() {
    let table = table();
    for path in ["/pacticipants/Foo.json", "/pacticipants/Foo.csv", "/pacticipants/Foo.yaml"] {
        assert_typed(
            &classify(&table, "GET", path, None),
            path,
            &format!("{RESOURCES}Pacticipant"),
            &[("resource_name", "pacticipant"), ("pacticipant_name", "Foo")],
        );
    }
    let path = "/pacts/provider/Bar/consumer/Foo/latest/badge.svg";
    assert_typed(
        &classify(&table, "GET", path, Some("image/svg+xml")),
        path,
        &format!("{RESOURCES}Badge"),
        &[("resource_name", "latest_pact_badge"), ("provider_name", "Bar"), ("consumer_name", "Foo")],
    );
    let path = "/pacticipants/Foo.xml";
    assert_typed(
        &classify(&table, "GET", path, None),
        path,
        &format!("{RESOURCES}Pacticipant"),
        &[("resource_name", "pacticipant"), ("pacticipant_name", "Foo.xml")],
    );
    let path = "/pacticipants/foo.bar.json";
    assert_typed(
        &classify(&table, "GET", path, None),
        path,
        &format!("{RESOURCES}Pacticipant"),
        &[("resource_name", "pacticipant"), ("pacticipant_name", "foo.bar")],
    );
    // A `.json` extension asks for JSON even from a browser: the API answers.
    let path = "/matrix.json";
    assert_eq!(classify(&table, "GET", path, Some(BROWSER_ACCEPT)).kind, RouteKind::Api, "{path}: field `kind`");
}

#[test]
fn trailing_slash_still_matches_and_double_slash_never_does() {
    let table = table();
    let path = "/pacticipants/Foo/";
    assert_typed(
        &classify(&table, "GET", path, None),
        path,
        &format!("{RESOURCES}Pacticipant"),
        &[("resource_name", "pacticipant"), ("pacticipant_name", "Foo")],
    );
    let path = "/pacticipants/";
    assert_typed(
        &classify(&table, "GET", path, None),
        path,
        &format!("{RESOURCES}Pacticipants"),
        &[("resource_name", "pacticipants")],
    );
    for path in ["//pacticipants", "/pacticipants//Foo", "/pacticipants/Foo//", "//"] {
        let answer = classify(&table, "GET", path, None);
        assert_eq!(answer.kind, RouteKind::Unmatched, "{path}: field `kind`");
        assert_typed(&answer, path, &format!("{RESOURCES}NotFound"), &[("resource_name", "not_found")]);
    }
}

#[test]
fn path_params_are_percent_decoded_and_bad_escapes_are_kept_raw() {
    let table = table();
    let cases = [
        ("/pacticipants/Foo%20Bar", "Foo Bar"),
        ("/pacticipants/caf%C3%A9", "café"),
        ("/pacticipants/a%2Fb", "a/b"),
        ("/pacticipants/1.0.0+build", "1.0.0+build"),
        ("/pacticipants/100%", "100%"),
        ("/pacticipants/bad%zzescape", "bad%zzescape"),
        ("/pacticipants/not%FFutf8", "not%FFutf8"),
        ("/pacticipants/%", "%"),
    ];
    for (path, name) in cases {
        assert_typed(
            &classify(&table, "GET", path, None),
            path,
            &format!("{RESOURCES}Pacticipant"),
            &[("resource_name", "pacticipant"), ("pacticipant_name", name)],
        );
    }
    // Literal segments compare raw: an encoded literal is a parameter value, not the literal.
    let path = "/webhooks/%65xecute";
    assert_typed(
        &classify(&table, "POST", path, None),
        path,
        &format!("{RESOURCES}Webhook"),
        &[("resource_name", "webhook"), ("uuid", "execute")],
    );
}

#[test]
fn extra_bindings_are_params_except_the_boolean_deprecated_flag() {
    let table = table();
    let path = "/pacts/provider/Bar/consumer/Foo/latest-untagged";
    assert_typed(
        &classify(&table, "GET", path, None),
        path,
        &format!("{RESOURCES}LatestPact"),
        &[
            ("resource_name", "latest_untagged_pact_publication"),
            ("provider_name", "Bar"),
            ("consumer_name", "Foo"),
            ("tag", "untagged"),
        ],
    );
    let path = "/pacts/provider/Bar/consumer/Foo/latest-untagged/badge";
    assert_typed(
        &classify(&table, "GET", path, None),
        path,
        &format!("{RESOURCES}Badge"),
        &[
            ("resource_name", "latest_untagged_pact_badge"),
            ("provider_name", "Bar"),
            ("consumer_name", "Foo"),
            ("tag", "untagged"),
        ],
    );
    let path = "/pact/provider/Bar/consumer/Foo/version/1.0.0";
    assert_typed(
        &classify(&table, "GET", path, None),
        path,
        &format!("{RESOURCES}Pact"),
        &[
            ("resource_name", "pact_publication"),
            ("provider_name", "Bar"),
            ("consumer_name", "Foo"),
            ("consumer_version_number", "1.0.0"),
            ("deprecated", "true"),
        ],
    );
    let path = "/pact/provider/Bar/consumer/Foo/latest";
    assert_typed(
        &classify(&table, "GET", path, None),
        path,
        &format!("{RESOURCES}LatestPact"),
        &[
            ("resource_name", "latest_pact_publications"),
            ("provider_name", "Bar"),
            ("consumer_name", "Foo"),
            ("deprecated", "true"),
        ],
    );
    let path = "/pacts/provider/Bar/consumer/Foo/versions/1.0.0";
    assert_typed(
        &classify(&table, "PUT", path, None),
        path,
        &format!("{RESOURCES}Pact"),
        &[
            ("resource_name", "pact_publication"),
            ("provider_name", "Bar"),
            ("consumer_name", "Foo"),
            ("consumer_version_number", "1.0.0"),
        ],
    );
}

#[test]
fn a_method_the_route_does_not_allow_keeps_the_route_type() {
    let table = table();
    let path = "/webhooks/execute";
    let answer = classify(&table, "GET", path, None);
    assert_typed(
        &answer,
        path,
        &format!("{RESOURCES}WebhookExecution"),
        &[("resource_name", "execute_unsaved_webhook")],
    );
    assert!(!answer.method_allowed, "{path}: field `method_allowed` for GET");
    assert!(classify(&table, "POST", path, None).method_allowed, "{path}: field `method_allowed` for POST");
    let path = "/diagnostic/status/heartbeat";
    let answer = classify(&table, "POST", path, None);
    assert_eq!(answer.event_type, "PactBroker::Diagnostic::Resources::Heartbeat", "{path}: field `type`");
    assert!(!answer.method_allowed, "{path}: field `method_allowed`");
}

#[test]
fn accept_decides_between_ui_page_and_api() {
    let table = table();
    let ui = |path: &str, accept: Option<&str>| classify(&table, "GET", path, accept).kind;
    assert_eq!(ui("/", Some("text/html")), RouteKind::UiPage, "/ with text/html: field `kind`");
    assert_eq!(
        classify(&table, "GET", "/", Some("text/html")).event_type,
        "PactBroker::UI::Controllers::Index",
        "/: field `type`"
    );
    assert_eq!(ui("/", Some(BROWSER_ACCEPT)), RouteKind::UiPage, "/ with a browser's Accept: field `kind`");
    assert_eq!(ui("/", HAL_JSON), RouteKind::Api, "/ with hal+json: field `kind`");
    assert_eq!(classify(&table, "GET", "/", HAL_JSON).event_type, format!("{RESOURCES}Index"), "/: field `type`");
    assert_eq!(ui("/", None), RouteKind::Api, "/ without Accept: field `kind`");
    assert_eq!(ui("/", Some("")), RouteKind::Api, "/ with empty Accept: field `kind`");
    assert_eq!(ui("/", Some("*/*")), RouteKind::Api, "/ with */*: field `kind`");
    assert_eq!(ui("/", Some("application/problem+json")), RouteKind::Api, "/ with problem+json: field `kind`");
    assert_eq!(ui("/", Some("TEXT/CSV")), RouteKind::Api, "/ with TEXT/CSV: field `kind`");
    assert_eq!(ui("/", Some("text/plain")), RouteKind::Api, "/ with text/plain: field `kind`");
    assert_eq!(ui("/", Some("application/yaml")), RouteKind::Api, "/ with yaml: field `kind`");
    assert_eq!(ui("/css/app.css", Some("*/*")), RouteKind::UiPage, "/css/app.css with */*: field `kind`");
    assert_eq!(
        ui("/matrix/provider/Bar/latest/prod/consumer/Foo/latest/main/badge", Some("image/svg+xml")),
        RouteKind::Api,
        "a badge: field `kind`"
    );
    // A JSON request body makes it an API request whatever the Accept.
    let with_body = table.classify(&RouteRequest {
        method: "GET",
        path: "/",
        accept: Some("text/html"),
        content_type: Some("application/json"),
    });
    assert_eq!(with_body.kind, RouteKind::Api, "/ with a JSON body: field `kind`");
    // A UI request with no UI page falls through to the API table.
    let path = "/pacticipants";
    let answer = classify(&table, "GET", path, Some("text/html"));
    assert_eq!(answer.kind, RouteKind::Api, "{path}: field `kind`");
    assert_typed(&answer, path, &format!("{RESOURCES}Pacticipants"), &[("resource_name", "pacticipants")]);
    // The UI page's own params.
    let path = "/pacticipants/Foo%20Bar";
    let answer = classify(&table, "GET", path, Some("text/html"));
    assert_typed(
        &answer,
        path,
        "PactBroker::UI::Controllers::Groups",
        &[("resource_name", "ui_pacticipant_details"), ("name", "Foo Bar")],
    );
}

#[test]
fn a_get_for_html_that_also_accepts_json_is_the_hal_browser_redirect() {
    let table = table();
    let path = "/pacticipants/Foo";
    let answer = classify(&table, "GET", path, Some("text/html, application/json"));
    assert_eq!(answer.kind, RouteKind::UiPage, "{path}: field `kind`");
    assert_typed(&answer, path, "Rack::HalBrowser::Redirect", &[("resource_name", "hal_browser")]);
    let answer = classify(&table, "PUT", path, Some("text/html, application/json"));
    assert_eq!(answer.event_type, format!("{RESOURCES}Pacticipant"), "PUT {path}: field `type`");
}

#[test]
fn unmatched_requests_get_the_fallback_type_and_are_never_dropped() {
    let table = table();
    for path in ["/no/such/route", "/pacticipants/a/b/c/d/e/f/g/h/i/j/k/l/m", "", "*", "relative/path"] {
        let answer = classify(&table, "GET", path, None);
        assert_eq!(answer.kind, RouteKind::Unmatched, "{path:?}: field `kind`");
        assert_typed(&answer, path, &format!("{RESOURCES}NotFound"), &[("resource_name", "not_found")]);
        assert!(!answer.method_allowed, "{path:?}: field `method_allowed`");
    }
}

#[test]
fn the_query_string_is_not_part_of_the_path() {
    let table = table();
    let path = "/pacticipants/Foo?x=/a//b";
    assert_typed(
        &classify(&table, "GET", path, None),
        path,
        &format!("{RESOURCES}Pacticipant"),
        &[("resource_name", "pacticipant"), ("pacticipant_name", "Foo")],
    );
}
