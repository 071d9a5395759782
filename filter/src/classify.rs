//! The seam that gives an event its `type` and `payload.params`. Capture asks one
//! [`RequestClassifier`]: the configured route table ([`RouteTable`], the Pact Broker's own
//! by default), which reads the request line and the `Accept` and `Content-Type` headers.

use std::collections::BTreeMap;

use crate::host::RequestHeaders;
use crate::routes::{RouteRequest, RouteTable};
use crate::sidecar_routes::classify_sidecar_path;

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

/// The route table types a request as the served application would dispatch it; requests
/// for audit-sidecar's own API (`/audit`, routed to the collector) get that API's types.
impl RequestClassifier for RouteTable {
    fn classify(&self, request: &ClassifyRequest<'_>) -> Classification {
        if let Some(sidecar) = classify_sidecar_path(request.path) {
            return sidecar;
        }
        let matched = RouteTable::classify(
            self,
            &RouteRequest {
                method: request.method,
                path: request.path,
                accept: request.headers.get("accept"),
                content_type: request.headers.get("content-type"),
            },
        );
        Classification { event_type: matched.event_type.to_string(), params: matched.params }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::RouteTableConfig;

    #[test]
    fn the_route_table_types_a_request_from_its_path_and_accept_header() {
        let table = RouteTableConfig::default().build().expect("the built-in table loads");
        let headers = RequestHeaders::new(vec![("accept".into(), "application/hal+json".into())]);
        let request = ClassifyRequest { method: "DELETE", path: "/pacticipants/Foo%20Bar", headers: &headers };
        let classification = RequestClassifier::classify(&table, &request);
        assert_eq!(classification.event_type, "PactBroker::Api::Resources::Pacticipant");
        assert_eq!(classification.params.get("pacticipant_name").map(String::as_str), Some("Foo Bar"), "decoded param");
        assert_eq!(classification.params.get("resource_name").map(String::as_str), Some("pacticipant"));
    }

    #[test]
    fn a_browser_asking_for_html_gets_the_ui_page_type() {
        let table = RouteTableConfig::default().build().expect("the built-in table loads");
        let headers = RequestHeaders::new(vec![("accept".into(), "text/html".into())]);
        let request = ClassifyRequest { method: "GET", path: "/pacticipants/Foo", headers: &headers };
        let classification = RequestClassifier::classify(&table, &request);
        assert_eq!(classification.event_type, "PactBroker::UI::Controllers::Groups");
    }
}
