//! What `tail` prints per event: the event as served (`native`), or mapped to OCSF API
//! Activity ([`super::ocsf`]) or the Elastic Common Schema ([`super::ecs`]). Mappings read
//! the event as untyped JSON, so events from PactFlow's own API (which lack every
//! audit-sidecar addition) map as well: absent fields are left out, never invented.

use clap::ValueEnum;
use serde_json::{Map, Value};

/// The output shape, one JSON object per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// The event exactly as `GET /audit` served it.
    #[default]
    Native,
    /// OCSF API Activity (class_uid 6003).
    Ocsf,
    /// Elastic Common Schema.
    Ecs,
}

impl OutputFormat {
    /// The line for one event (without the newline).
    pub fn render(self, event: &Value) -> String {
        let mapped = match self {
            OutputFormat::Native => return event.to_string(),
            OutputFormat::Ocsf => super::ocsf::to_ocsf(event),
            OutputFormat::Ecs => super::ecs::to_ecs(event),
        };
        without_empty(mapped).unwrap_or_else(|| Value::Object(Map::new())).to_string()
    }
}

/// The value at `path` in `event`, when present and not null.
pub fn at<'a>(event: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(event, |value, key| value.get(key)).filter(|value| !value.is_null())
}

/// The string at `path`, when it is a non-empty string.
pub fn text(event: &Value, path: &[&str]) -> Option<String> {
    at(event, path).and_then(Value::as_str).filter(|text| !text.is_empty()).map(str::to_owned)
}

/// The user id: `user_id`, or else PactFlow's numeric `db_user_id`, as text.
pub fn user_id(event: &Value) -> Option<String> {
    text(event, &["user_id"]).or_else(|| at(event, &["db_user_id"]).and_then(Value::as_i64).map(|id| id.to_string()))
}

/// The response status, when the event has one.
pub fn status(event: &Value) -> Option<u64> {
    at(event, &["response", "status"]).and_then(Value::as_u64)
}

/// Drops nulls and objects left empty, so absent fields are absent, not `null`.
fn without_empty(value: Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Object(map) => {
            let kept: Map<String, Value> =
                map.into_iter().filter_map(|(key, value)| without_empty(value).map(|value| (key, value))).collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        other => Some(other),
    }
}
