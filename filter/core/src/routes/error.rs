//! [`RouteTableError`]: why a route table could not be built. Each error names the
//! configuration key (`routes[3].path`) or the data file and line that is wrong, and says
//! what would be right.

use std::fmt;

/// A route table that cannot be built. Raised at configure time only, never per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteTableError {
    /// A configuration key holds a value that cannot work.
    InvalidKey { key: String, problem: String },
    /// A row of an embedded data table is malformed (a build defect, caught by the tests).
    InvalidData { file: &'static str, line: usize, problem: String },
}

impl fmt::Display for RouteTableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidKey { key, problem } => write!(f, "`{key}` {problem}"),
            Self::InvalidData { file, line, problem } => write!(f, "{file} line {line}: {problem}"),
        }
    }
}

impl std::error::Error for RouteTableError {}

/// Where a route came from, so that an error about it can point there.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RouteOrigin {
    /// Row `index` of the configuration list `list` (`routes` or `uiRoutes`).
    Config { list: &'static str, index: usize },
    /// Line `line` (1-based, header is line 1) of an embedded TSV file.
    Data { file: &'static str, line: usize },
}

impl RouteOrigin {
    /// An error about one field of this route: `config_key` names it in the JSON
    /// configuration, `column` in a TSV file.
    pub(crate) fn error(self, config_key: &str, column: &str, problem: String) -> RouteTableError {
        match self {
            Self::Config { list, index } => {
                RouteTableError::InvalidKey { key: format!("{list}[{index}].{config_key}"), problem }
            }
            Self::Data { file, line } => {
                RouteTableError::InvalidData { file, line, problem: format!("column `{column}` {problem}") }
            }
        }
    }
}
