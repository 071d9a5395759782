//! Route typing: which server resource handled a request, so the event gets its `type` and
//! `payload.params` (`resource_name` plus the percent-decoded path parameters).
//!
//! A [`RouteTable`] is built once at configure time, either the built-in Pact Broker table
//! ([`RouteTable::pact_broker`], embedded from `filter/routes/*.tsv`) or a table from the
//! plugin configuration ([`RouteTable::from_config`]). Per request, [`RouteTable::classify`]
//! turns a [`RouteRequest`] into a [`RouteMatch`] without regexes and without allocating
//! beyond the params map.
//!
//! # Layout
//! - [`request`]: what goes in ([`RouteRequest`]) and what comes out ([`RouteMatch`]).
//! - `request_path`: a raw request path made routable (extension, `//`, trailing slash).
//! - `template`: a route's path template (`/pacts/provider/:provider_name`) parsed and checked.
//! - `percent`: percent-decoding of one path parameter.
//! - `detection`: API request or UI page, by the broker's Accept / content-type rules.
//! - `route_set`, `segment_index`: compiled routes and the index that keeps first-match order.
//! - [`config`]: the JSON configuration ([`RouteTableConfig`]) and its validation.
//! - `builtin`: the embedded Pact Broker TSV tables.
//! - [`error`]: [`RouteTableError`], which names the bad key or data row.

mod builtin;
pub mod config;
mod detection;
pub mod error;
mod percent;
pub mod request;
mod request_path;
mod route_set;
mod segment_index;
mod table;
mod template;

#[cfg(test)]
mod tests;

pub use config::{RouteConfig, RouteTableConfig};
pub use detection::ApiDetection;
pub use error::RouteTableError;
pub use request::{RouteKind, RouteMatch, RouteRequest};
pub use table::RouteTable;
