//! Building an [`AuditEvent`] from a finished request: the request line and headers, the
//! client address, Envoy's timing and response properties, the identity (and the identity
//! claims that were not trusted), a fingerprint of the presented token, and the type and
//! params of the route that handled it; every text field bounded. Runs in `on_log`, so
//! locally answered requests (a 401 from `jwt_authn`, say) are captured too.
//!
//! What is deliberately left out: the Authorization and Proxy-Authorization headers,
//! cookies, bodies and any token; query strings (also the `Referer`'s) are masked.

use std::collections::BTreeMap;

use audit_event::event_uuid::encode_event_uuid;
use audit_event::timestamp::format_rfc3339_millis;
use audit_event::trust::ALERT_UNTRUSTED_IDENTITY;
use audit_event::{AuditEvent, RequestPayload, ResponseSummary};

use crate::config::FilterConfig;
use crate::request::bounds::bound_event;
use crate::request::client_ip::client_ip;
use crate::request::fingerprint::{presented_token, FingerprintKey};
use crate::request::host::{RequestHeaders, RequestView};
use crate::request::identity::identify;
use crate::request::invisible::flag_invisible;
use crate::request::redact::{redact_query, redact_url};
use crate::request::sidecar_routes::classify_sidecar_path;
use crate::routes::request::RESOURCE_NAME;
use crate::routes::RouteRequest;

/// Builds the event of the request `view` describes. `random` becomes the event uuid;
/// `fingerprint_key` keys `token_fingerprint` (none: no fingerprint is recorded).
pub fn capture_event(
    view: &dyn RequestView,
    config: &FilterConfig,
    fingerprint_key: Option<&FingerprintKey>,
    random: [u8; 16],
) -> AuditEvent {
    let headers = view.request_headers();
    let method = headers.get(":method").unwrap_or("UNKNOWN").to_string();
    let full_path = headers.get(":path").unwrap_or("/");
    let (path, query) = full_path.split_once('?').unwrap_or((full_path, ""));
    let peer = view.property_string(&["source", "address"]);
    let identity = identify(view, &headers, &config.identity, peer.as_deref());
    let sensitive = &config.redaction.sensitive_query_params;
    let token_fingerprint = fingerprint_key.and_then(|key| {
        let token = presented_token(&headers, &config.redaction.token_fingerprint.api_key_headers)?;
        Some(key.fingerprint(token))
    });
    let (event_type, params) = if headers.get(":method").is_none() && headers.get(":path").is_none() {
        unparsed_request(view)
    } else {
        classify(config, &method, path, &headers)
    };
    let request_time = view.property_i64(&["request", "time"]).unwrap_or_else(|| view.now_unix_nanos());

    let alerts =
        if identity.untrusted_claims.is_empty() { Vec::new() } else { vec![ALERT_UNTRUSTED_IDENTITY.to_string()] };
    let mut event = AuditEvent {
        uuid: encode_event_uuid(random),
        timestamp: format_rfc3339_millis(request_time),
        event_type,
        db_user_id: identity.db_user_id,
        user_email: identity.user_email,
        payload: RequestPayload {
            path: path.to_string(),
            query_string: redact_query(query, sensitive),
            method,
            user_agent: headers.get("user-agent").map(str::to_string),
            referer: headers.get("referer").map(|referer| redact_url(referer, sensitive)),
            params,
            client_ip: client_ip(peer.as_deref(), headers.get_all("x-forwarded-for"), config.identity.xff_trusted_hops),
            // Envoy's `request.id` property is this very header (its CEL `request.id` reads
            // `x-request-id` from the request headers), already fetched: no extra host call.
            request_id: headers.get("x-request-id").map(str::to_string),
            host: headers.get(":authority").map(str::to_string),
        },
        user_id: identity.user_id,
        user_name: identity.user_name,
        identity_source: identity.identity_source,
        token_fingerprint,
        response: response_summary(view),
        gap: None,
        sender: None,
        untrusted_identity: identity.untrusted_claims,
        truncated_fields: Vec::new(),
        alerts,
    };
    bound_event(&mut event, config.limits.max_field_bytes);
    flag_invisible(&mut event);
    event
}

/// The event's `type` and `params`: audit-sidecar's own API first (Envoy routes it to the
/// collector, whatever the service), then the service's route table, which tells API
/// requests from UI pages by `Accept` and `Content-Type`.
fn classify(
    config: &FilterConfig,
    method: &str,
    path: &str,
    headers: &RequestHeaders,
) -> (String, BTreeMap<String, String>) {
    if let Some(sidecar) = classify_sidecar_path(path) {
        let params = BTreeMap::from([(RESOURCE_NAME.to_string(), sidecar.resource_name.to_string())]);
        return (sidecar.event_type.to_string(), params);
    }
    let matched = config.route_table.classify(&RouteRequest {
        method,
        path,
        accept: headers.get("accept"),
        content_type: headers.get("content-type"),
    });
    (matched.event_type.to_string(), matched.params)
}

/// The `type` of a request Envoy answered itself because it could not parse its request
/// line or headers (a control character in the path, a method that is no token): neither
/// `:method` nor `:path` reached the filter, so it is recorded as method `UNKNOWN`, path `/`, and typed as what it
/// was, not as the service's `/`. Envoy's reason (`response.code_details`, e.g.
/// `http1.codec_error`) is kept in `params`; that property is read only for such requests.
pub const UNPARSED_REQUEST_TYPE: &str = "AuditSidecar::UnparsedRequest";

fn unparsed_request(view: &dyn RequestView) -> (String, BTreeMap<String, String>) {
    let mut params = BTreeMap::from([(RESOURCE_NAME.to_string(), "unparsed_request".to_string())]);
    if let Some(details) = view.property_string(&["response", "code_details"]) {
        params.insert("envoy_response_code_details".to_string(), details);
    }
    (UNPARSED_REQUEST_TYPE.to_string(), params)
}

/// Status and duration, when Envoy knows either (a stream reset before any response has
/// a duration but no code: status 0).
fn response_summary(view: &dyn RequestView) -> Option<ResponseSummary> {
    let status = view.property_i64(&["response", "code"]);
    let duration_nanos = view.property_i64(&["request", "duration"]);
    if status.is_none() && duration_nanos.is_none() {
        return None;
    }
    Some(ResponseSummary::new(
        status.and_then(|code| u16::try_from(code).ok()).unwrap_or(0),
        duration_nanos.map_or(0.0, |nanos| nanos as f64 / 1_000_000.0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::host::FakeRequest;
    use audit_event::trust::{UntrustedClaim, TRUNCATION_MARKER};
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;

    const REQUEST_TIME_NS: i64 = 1_575_929_724_864_123_456; // 2019-12-09T22:15:24.864Z

    fn broker_request() -> FakeRequest {
        FakeRequest::default()
            .header(":method", "POST")
            .header(":path", "/settings/tokens/abc/regenerate?page=2&token=s3cr3t")
            .header(":authority", "broker.example")
            .header("user-agent", "curl/8.5")
            .header("referer", "http://broker.example/settings")
            .header("x-request-id", "header-id")
            .header("x-forwarded-email", "ann@example.com")
            .header("x-user-id", "2")
            .header("authorization", &format!("Basic {}", STANDARD.encode("ann:hunter2")))
            .header("cookie", "session=cookie-secret")
            .property("source.address", b"10.0.0.7:51234")
            .int_property("request.time", REQUEST_TIME_NS)
            .int_property("request.duration", 1_500_000)
            .int_property("response.code", 201)
    }

    fn capture(request: &FakeRequest) -> AuditEvent {
        let config = FilterConfig::from_json(b"{}").expect("defaults are valid");
        capture_event(request, &config, None, [7; 16])
    }

    fn capture_with(request: &FakeRequest, config_json: &str, key: Option<&FingerprintKey>) -> AuditEvent {
        let config = FilterConfig::from_json(config_json.as_bytes()).expect("a valid configuration");
        capture_event(request, &config, key, [7; 16])
    }

    #[test]
    fn the_route_table_types_a_request_from_its_path_and_accept_header() {
        let request = FakeRequest::default()
            .header(":method", "DELETE")
            .header(":path", "/pacticipants/Foo%20Bar")
            .header("accept", "application/hal+json");
        let event = capture(&request);
        assert_eq!(event.event_type, "PactBroker::Api::Resources::Pacticipant");
        let params = &event.payload.params;
        assert_eq!(params.get("pacticipant_name").map(String::as_str), Some("Foo Bar"), "decoded param");
        assert_eq!(params.get("resource_name").map(String::as_str), Some("pacticipant"));
    }

    #[test]
    fn a_browser_asking_for_html_gets_the_ui_page_type() {
        let request = FakeRequest::default()
            .header(":method", "GET")
            .header(":path", "/pacticipants/Foo")
            .header("accept", "text/html");
        assert_eq!(capture(&request).event_type, "PactBroker::UI::Controllers::Groups");
    }

    #[test]
    fn captures_the_request_line_and_headers() {
        let event = capture(&broker_request());
        let payload = &event.payload;
        assert_eq!(payload.method, "POST", "payload.method");
        assert_eq!(payload.path, "/settings/tokens/abc/regenerate", "payload.path");
        assert_eq!(payload.query_string, "page=2&token=***", "payload.queryString");
        assert_eq!(payload.user_agent.as_deref(), Some("curl/8.5"), "payload.userAgent");
        assert_eq!(payload.referer.as_deref(), Some("http://broker.example/settings"), "payload.referer");
        assert_eq!(payload.host.as_deref(), Some("broker.example"), "payload.host");
        assert_eq!(payload.client_ip.as_deref(), Some("10.0.0.7"), "payload.client_ip");
        assert_eq!(payload.request_id.as_deref(), Some("header-id"), "payload.request_id is x-request-id");
    }

    #[test]
    fn captures_identity_time_response_and_type() {
        let event = capture(&broker_request());
        assert_eq!(event.uuid, encode_event_uuid([7; 16]), "uuid");
        assert_eq!(event.timestamp, "2019-12-09T22:15:24.864+00:00", "timestamp");
        // Not a Pact Broker route: still an event, with the broker's not-found type.
        assert_eq!(event.event_type, "PactBroker::Api::Resources::NotFound", "type");
        assert_eq!(event.payload.params.get("resource_name").map(String::as_str), Some("not_found"), "params");
        // From a peer that is not a trusted proxy (none are, by default): the identity
        // headers are claims, and the basic-auth name is the one identity presented.
        assert_eq!((event.user_email.as_deref(), event.db_user_id), (None, None), "user_email, db_user_id");
        assert_eq!(event.user_name.as_deref(), Some("ann"), "user_name from basic auth");
        assert_eq!(event.identity_source.as_deref(), Some("basic-auth"), "identity_source");
        assert_eq!(
            event.untrusted_identity,
            [
                UntrustedClaim { header: "x-forwarded-email".into(), value: "ann@example.com".into() },
                UntrustedClaim { header: "x-user-id".into(), value: "2".into() }
            ],
            "untrusted_identity"
        );
        assert_eq!(event.alerts, [ALERT_UNTRUSTED_IDENTITY], "alerts");
        assert_eq!(event.response, Some(ResponseSummary::new(201, 1.5)), "response");
        assert_eq!(event.validate(), Ok(()), "the collector would accept it");
    }

    #[test]
    fn behind_a_trusted_proxy_the_identity_headers_are_the_identity() {
        let config = r#"{"identity": {"trustedProxies": ["10.0.0.0/24"]}}"#;
        let event = capture_with(&broker_request(), config, None);
        assert_eq!(event.user_email.as_deref(), Some("ann@example.com"), "user_email");
        assert_eq!((event.user_id.as_deref(), event.db_user_id), (Some("2"), Some(2)), "user_id, db_user_id");
        assert_eq!(event.user_name.as_deref(), Some("ann"), "user_name: the basic-auth name, kept beside");
        assert_eq!(
            event.identity_source.as_deref(),
            Some("header:x-forwarded-email,header:x-user-id,basic-auth"),
            "identity_source"
        );
        assert_eq!((event.untrusted_identity.len(), event.alerts.len()), (0, 0), "no attempt, no alert");
        let json = serde_json::to_value(&event).expect("serializes");
        for key in ["untrusted_identity", "truncated_fields", "alerts"] {
            assert!(json.get(key).is_none(), "`{key}` is omitted when empty: {json}");
        }
    }

    #[test]
    fn long_fields_are_cut_to_the_configured_bound_and_listed() {
        let request = FakeRequest::default()
            .header(":method", "GET")
            .header(":path", &format!("/pacticipants/{}?q={}", "p".repeat(5000), "é".repeat(6000)))
            .header("user-agent", &"u".repeat(50_000))
            .header("x-forwarded-email", &"m".repeat(300));
        let event = capture_with(&request, r#"{"limits": {"maxFieldBytes": 256}}"#, None);
        let cut: Vec<(&str, u64)> =
            event.truncated_fields.iter().map(|field| (field.field.as_str(), field.original_bytes)).collect();
        assert_eq!(
            cut,
            [
                ("payload.path", 5014),
                ("payload.queryString", 12_002),
                ("payload.userAgent", 50_000),
                ("payload.params.pacticipant_name", 5000),
                ("untrusted_identity[0].value", 300)
            ]
        );
        assert!(event
            .payload
            .user_agent
            .as_deref()
            .is_some_and(|agent| agent.len() <= 256 && agent.ends_with(TRUNCATION_MARKER)));
        assert_eq!(event.event_type, "PactBroker::Api::Resources::Pacticipant", "typed by the whole path");
        let default_bound = capture(&request);
        assert_eq!(default_bound.payload.user_agent.as_deref().map(str::len), Some(4096), "4 KiB by default");
    }

    #[test]
    fn never_serializes_credentials_or_cookies() {
        let json = serde_json::to_string(&capture(&broker_request())).expect("serializes");
        for secret in ["hunter2", "s3cr3t", "cookie-secret", "Basic ", &STANDARD.encode("ann:hunter2")] {
            assert!(!json.contains(secret), "{secret:?} leaked into {json}");
        }
    }

    #[test]
    fn a_bearer_token_is_recorded_only_as_its_fingerprint() {
        let key = FingerprintKey::new(b"deployment-key");
        let request = FakeRequest::default().header(":path", "/").header("authorization", "Bearer tok-abc-123");
        let event = capture_with(&request, "{}", Some(&key));
        assert_eq!(event.token_fingerprint, Some(key.fingerprint("tok-abc-123")), "token_fingerprint");
        let json = serde_json::to_string(&event).expect("serializes");
        assert!(!json.contains("tok-abc-123"), "the token leaked into {json}");
        assert_eq!(capture_with(&request, "{}", None).token_fingerprint, None, "no key, no fingerprint");
    }

    #[test]
    fn a_configured_api_key_header_is_fingerprinted_too() {
        let key = FingerprintKey::new(b"deployment-key");
        let request = FakeRequest::default().header("x-api-key", "api-key-secret");
        let configured = r#"{"redaction": {"tokenFingerprint": {"apiKeyHeaders": ["X-Api-Key"]}}}"#;
        assert_eq!(
            capture_with(&request, configured, Some(&key)).token_fingerprint,
            Some(key.fingerprint("api-key-secret"))
        );
        assert_eq!(capture_with(&request, "{}", Some(&key)).token_fingerprint, None, "not configured");
    }

    #[test]
    fn the_client_ip_follows_the_trusted_hops() {
        // Arrived: `203.0.113.9, 10.0.0.5`; Envoy appended its peer, 10.0.0.7.
        let request = FakeRequest::default()
            .header("x-forwarded-for", "203.0.113.9, 10.0.0.5")
            .header("x-forwarded-for", "10.0.0.7")
            .property("source.address", b"10.0.0.7:51234");
        assert_eq!(capture(&request).payload.client_ip.as_deref(), Some("10.0.0.7"), "0 hops: the peer");
        let one_hop = capture_with(&request, r#"{"identity": {"xffTrustedHops": 1}}"#, None);
        assert_eq!(one_hop.payload.client_ip.as_deref(), Some("10.0.0.5"), "1 hop");
        let two_hops = capture_with(&request, r#"{"identity": {"xffTrustedHops": 2}}"#, None);
        assert_eq!(two_hops.payload.client_ip.as_deref(), Some("203.0.113.9"), "2 hops");
    }

    #[test]
    fn the_referer_query_is_masked() {
        let request = FakeRequest::default().header("referer", "https://ui.example/cb?code=oauth-code&x=1");
        assert_eq!(capture(&request).payload.referer.as_deref(), Some("https://ui.example/cb?code=***&x=1"));
    }

    #[test]
    fn a_bare_request_still_makes_a_valid_event() {
        let request = FakeRequest { now_unix_nanos: REQUEST_TIME_NS, ..FakeRequest::default() };
        let event = capture(&request);
        assert_eq!(event.timestamp, "2019-12-09T22:15:24.864+00:00", "falls back to now");
        assert_eq!((event.payload.path.as_str(), event.payload.query_string.as_str()), ("/", ""));
        assert_eq!(event.response, None, "no response properties, no response");
        assert_eq!(event.user_email, None);
        assert_eq!(event.validate(), Ok(()));
    }

    #[test]
    fn a_request_envoy_could_not_parse_is_typed_as_such_with_envoys_reason() {
        let request = FakeRequest::default()
            .property("source.address", b"10.0.0.7:51234")
            .property("response.code_details", b"http1.codec_error")
            .int_property("response.code", 400);
        let event = capture(&request);
        assert_eq!((event.payload.method.as_str(), event.payload.path.as_str()), ("UNKNOWN", "/"));
        assert_eq!(event.event_type, UNPARSED_REQUEST_TYPE, "not the service's index page");
        assert_eq!(
            event.payload.params,
            BTreeMap::from([
                ("envoy_response_code_details".to_string(), "http1.codec_error".to_string()),
                ("resource_name".to_string(), "unparsed_request".to_string())
            ])
        );
        assert_eq!(event.payload.client_ip.as_deref(), Some("10.0.0.7"), "what Envoy still knows is kept");
    }

    #[test]
    fn a_reset_stream_has_status_zero() {
        let request = FakeRequest::default()
            .header(":method", "GET")
            .header(":path", "/")
            .int_property("request.duration", 2_000_000);
        assert_eq!(capture(&request).response, Some(ResponseSummary::new(0, 2.0)));
    }

    #[test]
    fn durations_up_to_a_day_survive_the_collectors_json_parsing_exactly() {
        // Found by fuzzing: serde_json's default float parser (the collector's) is exact only
        // up to ~15 significant digits, so a duration of decades in milliseconds with its
        // nanoseconds came back one digit off. Every duration up to a day has fewer digits.
        let day_nanos: i64 = 86_400_000_000_000;
        let mut nanos = 1;
        while nanos < day_nanos {
            for duration in [nanos, nanos + 123_456_789 % day_nanos, day_nanos - nanos] {
                let request = FakeRequest::default().int_property("request.duration", duration);
                let response = capture(&request).response.expect("a duration gives a response summary");
                let json = serde_json::to_string(&response).expect("serializes");
                let parsed: ResponseSummary = serde_json::from_str(&json).expect("parses");
                assert_eq!(parsed, response, "{duration} ns: {json}");
            }
            nanos = nanos * 7 + 3;
        }
    }

    #[test]
    fn a_user_name_with_a_right_to_left_override_is_kept_as_sent_and_raises_the_alert() {
        let spoof = "admin\u{202E}gnp.exe";
        let login = format!("Basic {}", STANDARD.encode(format!("{spoof}:pw")));
        let event = capture(&FakeRequest::default().header("authorization", &login));
        assert_eq!(event.user_name.as_deref(), Some(spoof), "stored as sent: it is evidence");
        assert_eq!(event.alerts, [audit_event::trust::ALERT_INVISIBLE_CHARACTERS]);
        let plain =
            capture(&FakeRequest::default().header("authorization", &format!("Basic {}", STANDARD.encode("admin:pw"))));
        assert!(plain.alerts.is_empty(), "no alert for a plain name");
    }

    #[test]
    fn the_request_id_is_the_x_request_id_header() {
        let request = FakeRequest::default().header("x-request-id", "from-header");
        assert_eq!(capture(&request).payload.request_id.as_deref(), Some("from-header"));
    }
}
