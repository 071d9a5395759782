//! What goes into [`RouteTable::classify`](super::RouteTable::classify) and what comes out:
//! the event's `type`, its `payload.params`, and whether an API route, a UI page, or nothing
//! matched.

use std::collections::BTreeMap;

/// The parts of a request that decide its route.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteRequest<'a> {
    /// The HTTP method, as sent (`GET`).
    pub method: &'a str,
    /// The path as sent, not percent-decoded. Anything from a `?` on is ignored.
    pub path: &'a str,
    /// The `Accept` header, if the request has one.
    pub accept: Option<&'a str>,
    /// The `Content-Type` header, if the request has one.
    pub content_type: Option<&'a str>,
}

/// Which part of the served application answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// A route of the API table (`routes`).
    Api,
    /// A page of the HTML user interface (`uiRoutes`), including the HAL-browser redirect.
    UiPage,
    /// No route matched: the event carries the fallback type.
    Unmatched,
}

/// The event's `type` and `payload.params` for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch<'t> {
    pub kind: RouteKind,
    /// The resource that handled the request, e.g. `PactBroker::Api::Resources::Pact`.
    pub event_type: &'t str,
    /// `resource_name`, the route's extra bindings and its percent-decoded path parameters.
    pub params: BTreeMap<String, String>,
    /// Whether the matched route lists the request's method. An API route that does not
    /// still types the event (the server answers 405); unmatched requests say `false`.
    pub method_allowed: bool,
}

/// The params key that names the matched route.
pub const RESOURCE_NAME: &str = "resource_name";
