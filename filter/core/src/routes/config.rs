//! [`RouteTableConfig`]: the route table as the filter's JSON configuration gives it
//! (camelCase keys, unknown keys refused), and its validation into a [`RouteTable`].
//! `{}` or `{"profile": "pact-broker"}` is the built-in Pact Broker table; `routes` (and
//! optionally `uiRoutes`) bring another API's own table.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::builtin::{DEFAULT_FALLBACK_RESOURCE_NAME, PACT_BROKER_FALLBACK_TYPE};
use super::detection::ApiDetection;
use super::error::{RouteOrigin, RouteTableError};
use super::route_set::RouteSpec;
use super::table::{pact_broker_specs, RouteTable};

/// The one built-in profile's name.
pub const PACT_BROKER_PROFILE: &str = "pact-broker";
/// The fallback type of a custom table that does not set `fallbackType`.
pub const CUSTOM_TABLE_FALLBACK_TYPE: &str = "NotFound";

/// The route table part of the filter configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteTableConfig {
    /// A built-in table by name (`pact-broker`). Used when `routes` is absent.
    #[serde(default)]
    pub profile: Option<String>,
    /// A custom API table, tried in order. Excludes `profile`.
    #[serde(default)]
    pub routes: Option<Vec<RouteConfig>>,
    /// A custom UI table, tried first for requests that are not API requests.
    #[serde(default)]
    pub ui_routes: Vec<RouteConfig>,
    /// The type of requests no route matches.
    #[serde(default)]
    pub fallback_type: Option<String>,
    /// The `resource_name` of requests no route matches (default `not_found`).
    #[serde(default)]
    pub fallback_resource_name: Option<String>,
    /// How API requests are told from UI pages: `pact-broker` (default for the profile)
    /// or `none` (default for a custom table).
    #[serde(default)]
    pub api_detection: Option<ApiDetection>,
}

/// One route of a custom table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteConfig {
    /// The methods the route serves; empty means all. An API route still types requests
    /// with other methods (the server answers 405); a UI route does not.
    #[serde(default)]
    pub methods: Vec<String>,
    /// `/things/:id`: literal segments, `:name` parameters, an optional final `*`.
    pub path: String,
    /// The event `type`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// `params.resource_name`.
    pub resource_name: String,
    /// Extra params the route always adds.
    #[serde(default)]
    pub bindings: BTreeMap<String, String>,
}

impl RouteTableConfig {
    /// The route table this configuration describes: the one way to build one. Errors
    /// name the bad key.
    pub fn build(&self) -> Result<RouteTable, RouteTableError> {
        let fallback_resource_name = self.fallback_resource_name.as_deref().unwrap_or(DEFAULT_FALLBACK_RESOURCE_NAME);
        check_not_blank("fallbackResourceName", fallback_resource_name)?;
        if let Some(fallback_type) = &self.fallback_type {
            check_not_blank("fallbackType", fallback_type)?;
        }
        match &self.routes {
            None => self.build_profile(fallback_resource_name),
            Some(routes) => self.build_custom(routes, fallback_resource_name),
        }
    }

    fn build_profile(&self, fallback_resource_name: &str) -> Result<RouteTable, RouteTableError> {
        let profile = self.profile.as_deref().unwrap_or(PACT_BROKER_PROFILE);
        if profile != PACT_BROKER_PROFILE {
            return Err(invalid_key(
                "profile",
                format!("must be `{PACT_BROKER_PROFILE}` (got `{profile}`), or give `routes` instead"),
            ));
        }
        if !self.ui_routes.is_empty() {
            return Err(invalid_key("uiRoutes", "needs `routes`: a profile brings its own UI routes".to_owned()));
        }
        let (api_specs, ui_specs) = pact_broker_specs()?;
        RouteTable::compile(
            api_specs,
            ui_specs,
            self.api_detection.unwrap_or(ApiDetection::PactBroker),
            self.fallback_type.as_deref().unwrap_or(PACT_BROKER_FALLBACK_TYPE).to_owned(),
            fallback_resource_name.to_owned(),
        )
    }

    fn build_custom(
        &self,
        routes: &[RouteConfig],
        fallback_resource_name: &str,
    ) -> Result<RouteTable, RouteTableError> {
        if self.profile.is_some() {
            return Err(invalid_key("profile", "and `routes` exclude each other: give one of them".to_owned()));
        }
        if routes.is_empty() && self.ui_routes.is_empty() {
            return Err(invalid_key(
                "routes",
                format!("is empty: list at least one route, or use `\"profile\": \"{PACT_BROKER_PROFILE}\"`"),
            ));
        }
        let api_detection = self.api_detection.unwrap_or(ApiDetection::None);
        if api_detection == ApiDetection::None && !self.ui_routes.is_empty() {
            return Err(invalid_key(
                "uiRoutes",
                "needs `\"apiDetection\": \"pact-broker\"`: with `none` every request is an API request, so UI routes would never match".to_owned(),
            ));
        }
        RouteTable::compile(
            route_specs("routes", routes),
            route_specs("uiRoutes", &self.ui_routes),
            api_detection,
            self.fallback_type.as_deref().unwrap_or(CUSTOM_TABLE_FALLBACK_TYPE).to_owned(),
            fallback_resource_name.to_owned(),
        )
    }
}

fn route_specs(list: &'static str, routes: &[RouteConfig]) -> Vec<RouteSpec> {
    routes
        .iter()
        .enumerate()
        .map(|(index, route)| RouteSpec {
            origin: RouteOrigin::Config { list, index },
            methods: route.methods.clone(),
            path_template: route.path.clone(),
            event_type: route.event_type.clone(),
            resource_name: route.resource_name.clone(),
            bindings: route.bindings.iter().map(|(key, value)| (key.clone(), value.clone())).collect(),
        })
        .collect()
}

fn check_not_blank(key: &str, value: &str) -> Result<(), RouteTableError> {
    if value.trim().is_empty() {
        return Err(invalid_key(key, "must not be empty".to_owned()));
    }
    Ok(())
}

fn invalid_key(key: &str, problem: String) -> RouteTableError {
    RouteTableError::InvalidKey { key: key.to_owned(), problem }
}
