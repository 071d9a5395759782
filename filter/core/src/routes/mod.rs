//! Route typing: which server resource handled a request, so the event gets its `type` and
//! `payload.params` (`resource_name` plus the percent-decoded path parameters).
//!
//! A [`RouteTable`] is built once at configure time by [`RouteTableConfig::build`], the one
//! entry point: the built-in Pact Broker table (embedded from `filter/core/routes/*.tsv`, the
//! default) or a table from the plugin configuration. Per request, [`RouteTable::classify`]
//! turns a [`RouteRequest`] into a [`request::RouteMatch`] without regexes and without allocating
//! beyond the params map.
//!
//! # Layout
//! - [`request`]: what goes in ([`RouteRequest`]) and what comes out ([`request::RouteMatch`]).
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

pub use config::RouteTableConfig;
pub use error::RouteTableError;
pub use request::RouteRequest;
pub use table::RouteTable;
