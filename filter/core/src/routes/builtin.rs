//! The built-in Pact Broker profile: the broker's API and UI route tables, embedded from
//! `filter/core/routes/` (read from pact_broker 2.120.0). Parsed into route specs at configure
//! time; a malformed row is an error naming its file and line (the tests load every row).

use super::error::{RouteOrigin, RouteTableError};
use super::route_set::RouteSpec;

const ROUTES_EXTENDED_FILE: &str = "routes_extended.tsv";
const ROUTES_EXTENDED_TSV: &str = include_str!("../../routes/routes_extended.tsv");
const UI_ROUTES_FILE: &str = "ui_routes.tsv";
const UI_ROUTES_TSV: &str = include_str!("../../routes/ui_routes.tsv");

/// The type of built-in table requests that match no route.
pub(crate) const PACT_BROKER_FALLBACK_TYPE: &str = "PactBroker::Api::Resources::NotFound";
/// The `resource_name` of unmatched requests, in every table unless configured.
pub(crate) const DEFAULT_FALLBACK_RESOURCE_NAME: &str = "not_found";

/// The API routes in dispatch order, with their extra bindings.
pub(crate) fn pact_broker_api_routes() -> Result<Vec<RouteSpec>, RouteTableError> {
    let table = TsvTable::parse(ROUTES_EXTENDED_FILE, ROUTES_EXTENDED_TSV)?;
    let order = table.column("dispatch_order")?;
    let methods = table.column("methods")?;
    let path = table.column("path_template")?;
    let event_type = table.column("resource_class")?;
    let resource_name = table.column("resource_name")?;
    let extra_bindings = table.column("extra_bindings")?;
    let mut routes = Vec::with_capacity(table.rows.len());
    for (row_position, row) in table.rows.iter().enumerate() {
        let origin = RouteOrigin::Data { file: table.file, line: row.line };
        let expected_order = (row_position + 1).to_string();
        if row.field(order) != expected_order {
            return Err(origin.error(
                "",
                "dispatch_order",
                format!(
                    "is `{}` where `{expected_order}` was expected: rows must be in dispatch order",
                    row.field(order)
                ),
            ));
        }
        routes.push(RouteSpec {
            origin,
            methods: split_methods(row.field(methods)),
            path_template: row.field(path).to_owned(),
            event_type: row.field(event_type).to_owned(),
            resource_name: row.field(resource_name).to_owned(),
            bindings: parse_extra_bindings(row.field(extra_bindings))
                .map_err(|problem| origin.error("bindings", "extra_bindings", problem))?,
        });
    }
    Ok(routes)
}

/// The UI routes in order. A row may list several space-separated templates (the static
/// asset prefixes); its handler column may carry a note in parentheses, which is dropped.
pub(crate) fn pact_broker_ui_routes() -> Result<Vec<RouteSpec>, RouteTableError> {
    let table = TsvTable::parse(UI_ROUTES_FILE, UI_ROUTES_TSV)?;
    let methods = table.column("methods")?;
    let path = table.column("path_template")?;
    let handler = table.column("handler_class")?;
    let name = table.column("ui_name")?;
    let mut routes = Vec::with_capacity(table.rows.len());
    for row in &table.rows {
        let origin = RouteOrigin::Data { file: table.file, line: row.line };
        let event_type = row.field(handler).split_whitespace().next().unwrap_or("");
        for template in row.field(path).split_whitespace() {
            routes.push(RouteSpec {
                origin,
                methods: split_methods(row.field(methods)),
                path_template: template.to_owned(),
                event_type: event_type.to_owned(),
                resource_name: row.field(name).to_owned(),
                bindings: Vec::new(),
            });
        }
    }
    Ok(routes)
}

fn split_methods(field: &str) -> Vec<String> {
    field.split(',').map(str::trim).filter(|method| !method.is_empty()).map(str::to_owned).collect()
}

/// `extra_bindings` holds `key=value (Kind -> included in params)` or
/// `key=value (Kind -> NOT in params)`; only the first kind becomes a param. A quoted value
/// loses its quotes.
fn parse_extra_bindings(field: &str) -> Result<Vec<(String, String)>, String> {
    let field = field.trim();
    if field.is_empty() {
        return Ok(Vec::new());
    }
    let unexpected = || format!("`{field}` is not `key=value (Kind -> included in params | NOT in params)`");
    let (assignment, note) = field.split_once(" (").ok_or_else(unexpected)?;
    let (key, value) = assignment.split_once('=').ok_or_else(unexpected)?;
    if note.contains("NOT in params") {
        return Ok(Vec::new());
    }
    if !note.contains("included in params") {
        return Err(unexpected());
    }
    Ok(vec![(key.trim().to_owned(), value.trim().trim_matches('"').to_owned())])
}

/// A tab-separated file with a header row; columns are found by name.
struct TsvTable<'a> {
    file: &'static str,
    header: Vec<&'a str>,
    rows: Vec<TsvRow<'a>>,
}

struct TsvRow<'a> {
    /// 1-based line number in the file (the header is line 1).
    line: usize,
    fields: Vec<&'a str>,
}

impl<'a> TsvTable<'a> {
    fn parse(file: &'static str, text: &'a str) -> Result<Self, RouteTableError> {
        let mut lines = text.lines().enumerate().map(|(index, line)| (index + 1, line.trim_end_matches('\r')));
        let header = match lines.next() {
            Some((_, header)) => header.split('\t').collect(),
            None => {
                return Err(RouteTableError::InvalidData { file, line: 1, problem: "has no header row".to_owned() })
            }
        };
        let rows = lines
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(line, text)| TsvRow { line, fields: text.split('\t').collect() })
            .collect();
        Ok(Self { file, header, rows })
    }

    fn column(&self, name: &str) -> Result<usize, RouteTableError> {
        self.header.iter().position(|column| *column == name).ok_or_else(|| RouteTableError::InvalidData {
            file: self.file,
            line: 1,
            problem: format!("has no `{name}` column"),
        })
    }
}

impl TsvRow<'_> {
    /// The field in `column`; a row that ends early has empty trailing fields.
    fn field(&self, column: usize) -> &str {
        self.fields.get(column).copied().unwrap_or("")
    }
}
