//! [`ConfigError`]: why the plugin configuration was refused. Every variant names the key
//! (or section) that is wrong and says what would be right; `on_configure` logs it and
//! refuses the configuration.

use crate::routes::RouteTableError;

/// Why a configuration was refused. The message names the key and says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON, or not a JSON object.
    #[error("the plugin configuration is not a JSON object: {0}")]
    NotJson(String),
    /// A key of the given section has the wrong type, or is unknown.
    #[error("`{section}`: {message}")]
    Shape { section: &'static str, message: String },
    /// A value has the right type but breaks a rule.
    #[error("`{key}` {problem}")]
    Invalid { key: &'static str, problem: String },
    /// Neither the environment variable nor the inline token gives an ingest token.
    #[error(
        "no ingest token: set the environment variable `{env_var}` (and list it in \
         vm_config.environment_variables.host_env_keys) or `collector.ingestToken`"
    )]
    MissingIngestToken { env_var: String },
    /// The `routes` section describes a table that cannot be built.
    #[error("in `routes`: {0}")]
    Routes(RouteTableError),
}
