//! The route tables as the tests read them: straight from `filter/core/routes/*.tsv` on disk,
//! parsed here independently of the module's own loader.

use std::collections::HashMap;

pub(super) struct ApiRow {
    pub(super) line: usize,
    pub(super) methods: Vec<String>,
    pub(super) template: String,
    pub(super) class: String,
    pub(super) resource_name: String,
}

pub(super) struct ExtendedRow {
    pub(super) line: usize,
    pub(super) dispatch_order: String,
    pub(super) template: String,
    pub(super) class: String,
    pub(super) resource_name: String,
    pub(super) path_params: Vec<String>,
    pub(super) extra_bindings: String,
}

pub(super) struct UiRow {
    pub(super) line: usize,
    pub(super) methods: Vec<String>,
    pub(super) templates: Vec<String>,
    /// The handler column up to its first space (a parenthesised note follows on one row).
    pub(super) class: String,
    pub(super) name: String,
}

fn read_table(file: &str) -> Vec<(usize, HashMap<String, String>)> {
    let path = format!("{}/routes/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("reading {path}: {error}"));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    lines
        .enumerate()
        .filter(|(_, line)| !line.is_empty())
        .map(|(index, line)| {
            let mut fields = line.split('\t');
            let row =
                header.iter().map(|column| (column.to_string(), fields.next().unwrap_or("").to_string())).collect();
            (index + 2, row)
        })
        .collect()
}

fn methods(field: &str) -> Vec<String> {
    field.split(',').map(str::to_string).collect()
}

pub(super) fn api_rows() -> Vec<ApiRow> {
    read_table("routes.tsv")
        .into_iter()
        .map(|(line, row)| ApiRow {
            line,
            methods: methods(&row["methods"]),
            template: row["path_template"].clone(),
            class: row["resource_class"].clone(),
            resource_name: row["resource_name"].clone(),
        })
        .collect()
}

pub(super) fn extended_rows() -> Vec<ExtendedRow> {
    read_table("routes_extended.tsv")
        .into_iter()
        .map(|(line, row)| ExtendedRow {
            line,
            dispatch_order: row["dispatch_order"].clone(),
            template: row["path_template"].clone(),
            class: row["resource_class"].clone(),
            resource_name: row["resource_name"].clone(),
            path_params: row["path_params"].split(',').filter(|name| !name.is_empty()).map(str::to_string).collect(),
            extra_bindings: row["extra_bindings"].clone(),
        })
        .collect()
}

pub(super) fn ui_rows() -> Vec<UiRow> {
    read_table("ui_routes.tsv")
        .into_iter()
        .map(|(line, row)| UiRow {
            line,
            methods: methods(&row["methods"]),
            templates: row["path_template"].split(' ').map(str::to_string).collect(),
            class: row["handler_class"].split(' ').next().unwrap().to_string(),
            name: row["ui_name"].clone(),
        })
        .collect()
}

/// The extra params a row of `routes_extended.tsv` declares: only bindings whose note says
/// they are included in params, quotes removed.
pub(super) fn declared_bindings(extra_bindings: &str) -> Vec<(String, String)> {
    if extra_bindings.is_empty() || extra_bindings.contains("NOT in params") {
        return Vec::new();
    }
    assert!(extra_bindings.contains("included in params"), "unexpected extra_bindings `{extra_bindings}`");
    let assignment = extra_bindings.split(" (").next().unwrap();
    let (key, value) = assignment.split_once('=').unwrap();
    vec![(key.to_string(), value.replace('"', ""))]
}
