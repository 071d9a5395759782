//! What `tail` prints per event: the event as served (`native`), or mapped to OCSF API
//! Activity ([`super::ocsf`]) or the Elastic Common Schema ([`super::ecs`]). Mappings read
//! the event as untyped JSON ([`super::fields`]), so events from PactFlow's own API (which
//! lack every audit-sidecar addition) map as well: absent fields are left out, never
//! invented, and whatever a mapping has no standard field for goes to the schema's
//! extension fields.

use clap::ValueEnum;
use serde_json::{Map, Value};

use super::fields::without_empty;

/// The output shape, one JSON object per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// The event exactly as `GET /audit` served it.
    #[default]
    Native,
    /// OCSF API Activity (class_uid 6003), OCSF 1.6.0.
    Ocsf,
    /// Elastic Common Schema 9.4.0.
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
