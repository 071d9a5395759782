//! The seam that gives an event its `type` and `payload.params`. Capture asks one
//! [`RequestClassifier`]; today that is [`DefaultClassifier`] (one configured type for every
//! request). The Pact Broker route table (`routes::RouteTable::classify`) plugs in here by
//! implementing [`RequestClassifier`], without capture changing.

use std::collections::BTreeMap;

use crate::host::RequestHeaders;

/// What the classifier sees: the request line and the headers (the broker tells API
/// requests from UI pages by `Accept`).
#[derive(Debug, Clone, Copy)]
pub struct ClassifyRequest<'a> {
    pub method: &'a str,
    /// The path without the query string, as sent (not percent-decoded).
    pub path: &'a str,
    pub headers: &'a RequestHeaders,
}

/// The event's `type` and `payload.params` (`resource_name` plus decoded path parameters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    pub event_type: String,
    pub params: BTreeMap<String, String>,
}

/// Decides what resource handled a request.
pub trait RequestClassifier {
    fn classify(&self, request: &ClassifyRequest<'_>) -> Classification;
}

/// `resource_name` of events that no route table has typed.
pub const DEFAULT_RESOURCE_NAME: &str = "request";

/// Every request gets the configured `defaultType` and `{"resource_name": "request"}`.
#[derive(Debug, Clone)]
pub struct DefaultClassifier {
    event_type: String,
}

impl DefaultClassifier {
    pub fn new(event_type: impl Into<String>) -> Self {
        Self { event_type: event_type.into() }
    }
}

impl RequestClassifier for DefaultClassifier {
    fn classify(&self, _request: &ClassifyRequest<'_>) -> Classification {
        Classification {
            event_type: self.event_type.clone(),
            params: BTreeMap::from([("resource_name".to_string(), DEFAULT_RESOURCE_NAME.to_string())]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_classifier_types_every_request_alike() {
        let headers = RequestHeaders::default();
        let request = ClassifyRequest { method: "DELETE", path: "/pacticipants/Foo", headers: &headers };
        let classification = DefaultClassifier::new("Http::Request").classify(&request);
        assert_eq!(classification.event_type, "Http::Request");
        assert_eq!(classification.params.get("resource_name").map(String::as_str), Some("request"));
        assert_eq!(classification.params.len(), 1, "no path parameters without a route table");
    }
}
