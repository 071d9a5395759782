//! A compiled list of routes (the API table or the UI table) and first-match lookup in it.
//! Compiling checks every route once; matching then only compares string slices, and
//! allocates only for the params of the route that won.

use std::collections::BTreeMap;

use super::error::{RouteOrigin, RouteTableError};
use super::percent::decode_path_segment;
use super::request::RESOURCE_NAME;
use super::request_path::RoutablePath;
use super::segment_index::SegmentIndex;
use super::template::{PathTemplate, TemplateSegment};

/// One route as a table source (configuration or embedded data) describes it.
#[derive(Debug, Clone)]
pub(crate) struct RouteSpec {
    pub(crate) origin: RouteOrigin,
    /// Empty: every method is listed.
    pub(crate) methods: Vec<String>,
    pub(crate) path_template: String,
    pub(crate) event_type: String,
    pub(crate) resource_name: String,
    /// Extra params the route always adds (`tag: untagged`).
    pub(crate) bindings: Vec<(String, String)>,
}

/// Whether a method the route does not list still reaches it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MethodRule {
    /// API routes: the resource answers 405, so the request is still that resource's.
    UnlistedMethodStillMatches,
    /// UI pages: an unlisted method falls through to later routes (HEAD counts as GET).
    MethodMustBeListed,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledRoute {
    template: PathTemplate,
    methods: Box<[Box<str>]>,
    pub(crate) event_type: Box<str>,
    resource_name: Box<str>,
    bindings: Box<[(Box<str>, Box<str>)]>,
}

#[derive(Debug, Clone)]
pub(crate) struct RouteSet {
    routes: Box<[CompiledRoute]>,
    index: SegmentIndex,
    method_rule: MethodRule,
}

impl RouteSet {
    pub(crate) fn empty(method_rule: MethodRule) -> Self {
        Self { routes: Box::new([]), index: SegmentIndex::default(), method_rule }
    }

    pub(crate) fn compile(specs: Vec<RouteSpec>, method_rule: MethodRule) -> Result<Self, RouteTableError> {
        let routes = specs.into_iter().map(CompiledRoute::compile).collect::<Result<Box<[_]>, _>>()?;
        let templates: Vec<&PathTemplate> = routes.iter().map(|route| &route.template).collect();
        let index = SegmentIndex::build(&templates);
        Ok(Self { routes, index, method_rule })
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.routes.len()
    }

    /// The first route, in table order, that matches `path` (and `method`, for UI pages).
    pub(crate) fn first_match(&self, path: &RoutablePath<'_>, method: &str) -> Option<&CompiledRoute> {
        self.index
            .candidates(path.segment_count(), path.first_segment())
            .iter()
            .filter_map(|&position| self.routes.get(position))
            .find(|route| {
                route.matches(path)
                    && (self.method_rule == MethodRule::UnlistedMethodStillMatches || route.lists_method(method, true))
            })
    }
}

impl CompiledRoute {
    fn compile(spec: RouteSpec) -> Result<Self, RouteTableError> {
        let origin = spec.origin;
        let template = PathTemplate::parse(&spec.path_template)
            .map_err(|problem| origin.error("path", "path_template", problem))?;
        check_not_blank(&spec.event_type, origin, "type", "resource_class")?;
        check_not_blank(&spec.resource_name, origin, "resourceName", "resource_name")?;
        for (position, method) in spec.methods.iter().enumerate() {
            if method.is_empty() || !method.bytes().all(|byte| byte.is_ascii_graphic()) {
                return Err(origin.error(
                    &format!("methods[{position}]"),
                    "methods",
                    format!("must be an HTTP method such as `GET` (got `{method}`)"),
                ));
            }
        }
        for (key, _) in &spec.bindings {
            check_binding_key(key, &template, origin)?;
        }
        Ok(Self {
            template,
            methods: spec.methods.into_iter().map(String::into_boxed_str).collect(),
            event_type: spec.event_type.into_boxed_str(),
            resource_name: spec.resource_name.into_boxed_str(),
            bindings: spec
                .bindings
                .into_iter()
                .map(|(key, value)| (key.into_boxed_str(), value.into_boxed_str()))
                .collect(),
        })
    }

    fn matches(&self, path: &RoutablePath<'_>) -> bool {
        let fixed = self.template.segments.len();
        let count_fits =
            if self.template.matches_any_rest { path.segment_count() >= fixed } else { path.segment_count() == fixed };
        count_fits
            && self.template.segments.iter().zip(path.segments()).all(|(expected, actual)| match expected {
                TemplateSegment::Literal(literal) => **literal == *actual,
                TemplateSegment::Param(_) => true,
            })
    }

    /// Whether the route lists `method`; `head_as_get` also accepts HEAD where GET is listed.
    pub(crate) fn lists_method(&self, method: &str, head_as_get: bool) -> bool {
        self.methods.is_empty()
            || self
                .methods
                .iter()
                .any(|listed| **listed == *method || (head_as_get && method == "HEAD" && &**listed == "GET"))
    }

    /// `resource_name`, the extra bindings and the decoded path params, for a matched path.
    pub(crate) fn params(&self, path: &RoutablePath<'_>) -> BTreeMap<String, String> {
        // `String::from(&str)`, not `to_string()`: on a `Box<str>` that goes through
        // `Display` (~200 instructions a string, measured).
        let mut params = BTreeMap::new();
        params.insert(RESOURCE_NAME.to_owned(), String::from(&*self.resource_name));
        for (key, value) in self.bindings.iter() {
            params.insert(String::from(&**key), String::from(&**value));
        }
        for (segment, raw) in self.template.segments.iter().zip(path.segments()) {
            if let TemplateSegment::Param(name) = segment {
                params.insert(String::from(&**name), decode_path_segment(raw).into_owned());
            }
        }
        params
    }
}

fn check_not_blank(value: &str, origin: RouteOrigin, config_key: &str, column: &str) -> Result<(), RouteTableError> {
    if value.trim().is_empty() {
        return Err(origin.error(config_key, column, "must not be empty".to_owned()));
    }
    Ok(())
}

fn check_binding_key(key: &str, template: &PathTemplate, origin: RouteOrigin) -> Result<(), RouteTableError> {
    let problem = if key.is_empty() {
        Some("must not be empty".to_owned())
    } else if key == RESOURCE_NAME {
        Some(format!("may not set `{RESOURCE_NAME}` (use `resourceName`)"))
    } else if template.param_names().any(|name| name == key) {
        Some(format!("clashes with the path parameter `:{key}`"))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(origin.error(&format!("bindings.{key}"), "extra_bindings", problem)),
        None => Ok(()),
    }
}
