//! [`RouteTable`]: the compiled API and UI routes plus the rules that pick between them.
//! Built once at configure time; [`RouteTable::classify`] runs per request.

use std::collections::BTreeMap;

use super::builtin;
use super::detection::{ApiDetection, Audience};
use super::error::RouteTableError;
use super::request::{RouteKind, RouteMatch, RouteRequest, RESOURCE_NAME};
use super::request_path::RoutablePath;
use super::route_set::{MethodRule, RouteSet, RouteSpec};

/// The type of a GET the broker redirects (303) to the HAL browser before routing
/// (the `hal_browser` row of `ui_routes.tsv`).
pub const HAL_BROWSER_REDIRECT_TYPE: &str = "Rack::HalBrowser::Redirect";
/// The `resource_name` of that redirect.
pub const HAL_BROWSER_REDIRECT_RESOURCE_NAME: &str = "hal_browser";

/// Routes, in the order the served application tries them, compiled for matching.
#[derive(Debug, Clone)]
pub struct RouteTable {
    api_routes: RouteSet,
    ui_routes: RouteSet,
    api_detection: ApiDetection,
    fallback_type: Box<str>,
    fallback_resource_name: Box<str>,
}

impl RouteTable {
    pub(crate) fn compile(
        api_specs: Vec<RouteSpec>,
        ui_specs: Vec<RouteSpec>,
        api_detection: ApiDetection,
        fallback_type: String,
        fallback_resource_name: String,
    ) -> Result<Self, RouteTableError> {
        let ui_routes = match api_detection {
            ApiDetection::PactBroker => RouteSet::compile(ui_specs, MethodRule::MethodMustBeListed)?,
            ApiDetection::None => RouteSet::empty(MethodRule::MethodMustBeListed),
        };
        Ok(Self {
            api_routes: RouteSet::compile(api_specs, MethodRule::UnlistedMethodStillMatches)?,
            ui_routes,
            api_detection,
            fallback_type: fallback_type.into_boxed_str(),
            fallback_resource_name: fallback_resource_name.into_boxed_str(),
        })
    }

    /// The event `type` and `params` for `request`: the first matching route in table
    /// order, a UI page when the request is not an API request, or the fallback type.
    pub fn classify(&self, request: &RouteRequest<'_>) -> RouteMatch<'_> {
        let Some(path) = RoutablePath::parse(request.path) else {
            return self.unmatched();
        };
        let audience = self.api_detection.audience(request.method, &path, request.accept, request.content_type);
        match audience {
            Audience::HalBrowserRedirect => {
                return RouteMatch {
                    kind: RouteKind::UiPage,
                    event_type: HAL_BROWSER_REDIRECT_TYPE,
                    params: resource_name_only(HAL_BROWSER_REDIRECT_RESOURCE_NAME),
                    method_allowed: true,
                };
            }
            Audience::Ui => {
                if let Some(page) = self.ui_routes.first_match(&path, request.method) {
                    return RouteMatch {
                        kind: RouteKind::UiPage,
                        event_type: &page.event_type,
                        params: page.params(&path),
                        method_allowed: true,
                    };
                }
            }
            Audience::Api => {}
        }
        match self.api_routes.first_match(&path, request.method) {
            Some(route) => RouteMatch {
                kind: RouteKind::Api,
                event_type: &route.event_type,
                params: route.params(&path),
                method_allowed: route.lists_method(request.method, false),
            },
            None => self.unmatched(),
        }
    }

    /// The type of requests that match no route.
    #[cfg(test)]
    pub fn fallback_type(&self) -> &str {
        &self.fallback_type
    }

    /// How many API and UI routes the table holds.
    #[cfg(test)]
    pub fn route_counts(&self) -> (usize, usize) {
        (self.api_routes.len(), self.ui_routes.len())
    }

    fn unmatched(&self) -> RouteMatch<'_> {
        RouteMatch {
            kind: RouteKind::Unmatched,
            event_type: &self.fallback_type,
            params: resource_name_only(&self.fallback_resource_name),
            method_allowed: false,
        }
    }
}

fn resource_name_only(resource_name: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(RESOURCE_NAME.to_owned(), resource_name.to_owned())])
}

/// The built-in profile's parts, for [`RouteTableConfig::build`](super::RouteTableConfig::build).
pub(crate) fn pact_broker_specs() -> Result<(Vec<RouteSpec>, Vec<RouteSpec>), RouteTableError> {
    Ok((builtin::pact_broker_api_routes()?, builtin::pact_broker_ui_routes()?))
}
