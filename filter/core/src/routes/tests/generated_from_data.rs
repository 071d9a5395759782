//! Table-driven tests generated from the TSV files: every row becomes concrete requests
//! (sample parameter values, some needing percent-decoding), and the expected answer is the
//! first match the naive reference matcher finds, so table order is applied independently.

use std::collections::BTreeMap;

use super::reference_matcher::{first_match, routing_tokens, ReferenceRoute};
use super::tsv_fixtures::{api_rows, declared_bindings, extended_rows, ui_rows};
use crate::routes::request::RouteKind;
use crate::routes::{RouteRequest, RouteTable, RouteTableConfig};

/// Raw path segment → the param value the event must carry.
const SAMPLE_VALUES: [(&str, &str); 6] = [
    ("Foo%20Bar", "Foo Bar"),
    ("caf%C3%A9", "café"),
    ("a%2Fb", "a/b"),
    ("1.0.0+build.7", "1.0.0+build.7"),
    ("100%25", "100%"),
    ("Main-Branch_2", "Main-Branch_2"),
];

/// What a browser sends when it navigates to a page.
pub(super) const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

#[derive(Debug, PartialEq)]
pub(super) struct Expected {
    pub(super) kind: RouteKind,
    pub(super) event_type: String,
    pub(super) params: BTreeMap<String, String>,
}

pub(super) fn reference_api_routes() -> Vec<ReferenceRoute> {
    let extended = extended_rows();
    api_rows()
        .into_iter()
        .enumerate()
        .map(|(index, row)| ReferenceRoute {
            label: format!("routes.tsv line {}", row.line),
            methods: row.methods,
            template: row.template,
            class: row.class,
            resource_name: row.resource_name,
            bindings: declared_bindings(&extended[index].extra_bindings),
        })
        .collect()
}

pub(super) fn reference_ui_routes() -> Vec<ReferenceRoute> {
    ui_rows()
        .into_iter()
        .flat_map(|row| {
            row.templates
                .iter()
                .map(|template| ReferenceRoute {
                    label: format!("ui_routes.tsv line {}", row.line),
                    methods: row.methods.clone(),
                    template: template.clone(),
                    class: row.class.clone(),
                    resource_name: row.name.clone(),
                    bindings: Vec::new(),
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

fn reference_tables() -> &'static (Vec<ReferenceRoute>, Vec<ReferenceRoute>) {
    static TABLES: std::sync::OnceLock<(Vec<ReferenceRoute>, Vec<ReferenceRoute>)> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| (reference_api_routes(), reference_ui_routes()))
}

/// The reference answer: UI routes first (method must be listed) for a UI request, then
/// the API routes (any method), then the fallback. `browser` says the Accept header is
/// [`BROWSER_ACCEPT`]; that is a UI request unless the path is a badge.
pub(super) fn reference_answer(path: &str, method: &str, browser: bool) -> (Expected, String) {
    let unmatched = || {
        let params = BTreeMap::from([("resource_name".to_string(), "not_found".to_string())]);
        let expected =
            Expected { kind: RouteKind::Unmatched, event_type: "PactBroker::Api::Resources::NotFound".into(), params };
        (expected, "no route".to_string())
    };
    let Some(tokens) = routing_tokens(path) else {
        return unmatched();
    };
    let (api_routes, ui_routes) = reference_tables();
    let is_badge = tokens.last().is_some_and(|token| token == "badge");
    if browser && !is_badge {
        let ui_method = if method == "HEAD" { "GET" } else { method };
        if let Some((route, params)) = first_match(ui_routes, &tokens, Some(ui_method)) {
            let expected = Expected { kind: RouteKind::UiPage, event_type: route.class.clone(), params };
            return (expected, route.label.clone());
        }
    }
    match first_match(api_routes, &tokens, None) {
        Some((route, params)) => {
            (Expected { kind: RouteKind::Api, event_type: route.class.clone(), params }, route.label.clone())
        }
        None => unmatched(),
    }
}

/// A concrete path for `template` and the decoded value each param must get.
fn concrete_path(template: &str) -> (String, BTreeMap<String, String>) {
    let mut decoded = BTreeMap::new();
    let mut param_position = 0;
    let segments: Vec<String> = template
        .split('/')
        .map(|segment| {
            if let Some(name) = segment.strip_prefix(':') {
                let (raw, value) = SAMPLE_VALUES[param_position % SAMPLE_VALUES.len()];
                param_position += 1;
                decoded.insert(name.to_string(), value.to_string());
                raw.to_string()
            } else if segment == "*" {
                "deep/file.css".to_string()
            } else {
                segment.to_string()
            }
        })
        .collect();
    (segments.join("/"), decoded)
}

/// Compares one answer field by field; a mismatch names the path, the request and the field.
pub(super) fn check(
    table: &RouteTable,
    request: &RouteRequest<'_>,
    expected: &Expected,
    context: &str,
    failures: &mut Vec<String>,
) {
    let actual = table.classify(request);
    let where_ = format!("{} {} (Accept {:?}; {context})", request.method, request.path, request.accept);
    if actual.kind != expected.kind {
        failures.push(format!("{where_}: field `kind`: expected {:?}, got {:?}", expected.kind, actual.kind));
    }
    if actual.event_type != expected.event_type {
        failures.push(format!("{where_}: field `type`: expected {}, got {}", expected.event_type, actual.event_type));
    }
    let keys: std::collections::BTreeSet<&String> = expected.params.keys().chain(actual.params.keys()).collect();
    for key in keys {
        if expected.params.get(key) != actual.params.get(key) {
            failures.push(format!(
                "{where_}: field `params.{key}`: expected {:?}, got {:?}",
                expected.params.get(key),
                actual.params.get(key)
            ));
        }
    }
}

pub(super) fn report(failures: Vec<String>) {
    assert!(failures.is_empty(), "{} mismatches:\n{}", failures.len(), failures.join("\n"));
}

fn table() -> RouteTable {
    RouteTableConfig::default().build().unwrap_or_else(|error| panic!("built-in table: {error}"))
}

#[test]
fn every_api_row_is_typed_by_itself_for_api_requests_with_any_path_spelling() {
    let table = table();
    let mut failures = Vec::new();
    let extended = extended_rows();
    for (index, row) in api_rows().iter().enumerate() {
        let (path, decoded) = concrete_path(&row.template);
        let mut own_params = decoded;
        own_params.insert("resource_name".into(), row.resource_name.clone());
        own_params.extend(declared_bindings(&extended[index].extra_bindings));
        let own = Expected { kind: RouteKind::Api, event_type: row.class.clone(), params: own_params };
        let mut spellings = vec![
            path.clone(),
            format!("{path}.json"),
            format!("{path}.csv"),
            format!("{path}.yaml"),
            format!("{path}?page=2&size=10"),
        ];
        if path != "/" {
            spellings.push(format!("{path}/"));
        }
        for spelling in &spellings {
            for accept in [None, Some("application/hal+json"), Some("application/json, text/plain")] {
                for method in [row.methods[0].as_str(), "TRACE"] {
                    let request = RouteRequest { method, path: spelling, accept, content_type: None };
                    let (expected, winner) = reference_answer(spelling, method, false);
                    let context = format!("routes.tsv line {}, expected winner {winner}", row.line);
                    if winner != format!("routes.tsv line {}", row.line) {
                        failures.push(format!(
                            "{spelling}: routes.tsv line {} is shadowed by {winner} (sample values should be unique)",
                            row.line
                        ));
                    }
                    check(&table, &request, &own, &context, &mut failures);
                    check(&table, &request, &expected, &context, &mut failures);
                    let allowed = table.classify(&request).method_allowed;
                    if allowed != row.methods.iter().any(|listed| listed == method) {
                        failures.push(format!(
                            "{method} {spelling}: field `method_allowed`: got {allowed}, methods are {:?}",
                            row.methods
                        ));
                    }
                }
            }
        }
    }
    report(failures);
}

#[test]
fn every_ui_row_is_a_ui_page_for_a_browser_and_defers_to_the_api_otherwise() {
    let table = table();
    let mut failures = Vec::new();
    for row in ui_rows() {
        for template in &row.templates {
            let (path, decoded) = concrete_path(template);
            let mut own_params = decoded;
            own_params.insert("resource_name".into(), row.name.clone());
            let own = Expected { kind: RouteKind::UiPage, event_type: row.class.clone(), params: own_params };
            for method in ["GET", "HEAD"] {
                let request = RouteRequest { method, path: &path, accept: Some(BROWSER_ACCEPT), content_type: None };
                let (expected, winner) = reference_answer(&path, method, true);
                let context = format!("ui_routes.tsv line {}, expected winner {winner}", row.line);
                check(&table, &request, &own, &context, &mut failures);
                check(&table, &request, &expected, &context, &mut failures);
            }
            // The same path asked for as an API request, or with a method the page lacks,
            // is the API's (or unmatched).
            for (method, accept) in
                [("GET", Some("application/hal+json")), ("GET", None), ("POST", Some(BROWSER_ACCEPT))]
            {
                let request = RouteRequest { method, path: &path, accept, content_type: None };
                let (expected, winner) = reference_answer(&path, method, accept == Some(BROWSER_ACCEPT));
                let context = format!("ui_routes.tsv line {}, expected winner {winner}", row.line);
                check(&table, &request, &expected, &context, &mut failures);
            }
        }
    }
    report(failures);
}

/// Every literal word of every table, put where a parameter is: the paths where table
/// order decides (`/webhooks/execute`, `.../latest/badge`, `/pacticipants/label/...`).
#[test]
fn paths_whose_params_spell_literals_get_the_first_route_in_table_order() {
    let table = table();
    let api_templates: Vec<String> = api_rows().into_iter().map(|row| row.template).collect();
    let ui_templates: Vec<String> = ui_rows().into_iter().flat_map(|row| row.templates).collect();
    let mut literals: Vec<String> = api_templates
        .iter()
        .chain(&ui_templates)
        .flat_map(|template| template.split('/').map(str::to_string).collect::<Vec<_>>())
        .filter(|segment| !segment.is_empty() && !segment.starts_with(':') && segment != "*")
        .collect();
    literals.sort();
    literals.dedup();

    let mut failures = Vec::new();
    let mut cases = 0;
    for template in api_templates.iter().chain(&ui_templates) {
        let segments: Vec<&str> = template.split('/').collect();
        let param_positions: Vec<usize> =
            (0..segments.len()).filter(|&at| segments[at].starts_with(':') || segments[at] == "*").collect();
        for &at in &param_positions {
            for literal in &literals {
                let path: Vec<&str> = segments
                    .iter()
                    .enumerate()
                    .map(|(position, segment)| {
                        if position == at {
                            literal.as_str()
                        } else if segment.starts_with(':') || *segment == "*" {
                            "Some%20Name"
                        } else {
                            segment
                        }
                    })
                    .collect();
                let path = path.join("/");
                for (method, accept, browser) in [
                    ("GET", Some("application/hal+json"), false),
                    ("GET", Some(BROWSER_ACCEPT), true),
                    ("DELETE", None, false),
                ] {
                    let request = RouteRequest { method, path: &path, accept, content_type: None };
                    let (expected, winner) = reference_answer(&path, method, browser);
                    check(&table, &request, &expected, &format!("expected winner {winner}"), &mut failures);
                    cases += 1;
                }
            }
        }
    }
    assert!(cases > 10_000, "only {cases} generated cases");
    report(failures);
}

#[test]
fn routes_tsv_and_routes_extended_tsv_describe_the_same_routes_in_dispatch_order() {
    let plain = api_rows();
    let extended = extended_rows();
    assert_eq!(plain.len(), extended.len(), "row counts of routes.tsv and routes_extended.tsv");
    for (index, (row, wide)) in plain.iter().zip(&extended).enumerate() {
        let at = format!("routes.tsv line {} / routes_extended.tsv line {}", row.line, wide.line);
        assert_eq!(wide.dispatch_order, (index + 1).to_string(), "{at}: field `dispatch_order`");
        assert_eq!(row.template, wide.template, "{at}: field `path_template`");
        assert_eq!(row.class, wide.class, "{at}: field `resource_class`");
        assert_eq!(row.resource_name, wide.resource_name, "{at}: field `resource_name`");
        let template_params: Vec<&str> =
            row.template.split('/').filter_map(|segment| segment.strip_prefix(':')).collect();
        assert_eq!(template_params, wide.path_params, "{at}: field `path_params`");
    }
}

#[test]
fn the_built_in_table_holds_every_data_row() {
    let ui_templates: usize = ui_rows().iter().map(|row| row.templates.len()).sum();
    assert_eq!(table().route_counts(), (api_rows().len(), ui_templates), "(API routes, UI routes)");
}
