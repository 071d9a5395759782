//! Fail-open or fail-closed: whether a request may proceed while the audit trail cannot
//! be written (the `failurePolicy` section of the configuration).
//!
//! Fail-open (the default) never refuses anything: the event waits in the buffer, and if
//! the buffer overflows the loss is counted and reported as a gap. Fail-closed is for
//! services where an unaudited change is worse than no change (after Vault's and
//! Kubernetes' audit modes): while the worker's trail cannot be written, requests with
//! one of the configured methods are answered 503 by the filter and never reach the
//! service; reads go on. The refused request is itself captured (`on_log` runs for local
//! replies), so the trail shows the refusal once delivery is back.
//!
//! "Cannot be written" is what this worker knows: its last delivery attempt failed and
//! none has succeeded since, or its buffer is filled past `maxBufferFill`. A worker that
//! has not tried to deliver since the collector went away does not know yet.

use serde::Deserialize;

use crate::config_error::ConfigError;

/// `failurePolicy.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FailureMode {
    /// Requests always proceed.
    #[default]
    Open,
    /// Requests with one of `methods` are refused while the trail cannot be written.
    Closed,
}

/// The `failurePolicy` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct FailurePolicyConfig {
    pub mode: FailureMode,
    /// The methods refused in closed mode (upper case after normalization).
    pub methods: Vec<String>,
    /// In closed mode, the buffer fill (0 < fill ≤ 1, of events or bytes, whichever is
    /// fuller) from which `methods` are refused, so the events of refused requests and
    /// of reads still fit.
    pub max_buffer_fill: f64,
}

impl Default for FailurePolicyConfig {
    fn default() -> Self {
        Self {
            mode: FailureMode::Open,
            methods: ["POST", "PUT", "PATCH", "DELETE"].iter().map(|m| (*m).to_string()).collect(),
            max_buffer_fill: 0.9,
        }
    }
}

impl FailurePolicyConfig {
    /// Methods are compared upper case, as HTTP/1 and Envoy write them.
    pub fn normalized(mut self) -> Self {
        self.methods.iter_mut().for_each(|method| *method = method.trim().to_ascii_uppercase());
        self
    }

    /// The rules of the values, with errors that name the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid =
            |key: &'static str, problem: &str| Err(ConfigError::Invalid { key, problem: problem.to_string() });
        if self.methods.iter().any(String::is_empty) {
            return invalid("failurePolicy.methods", "must not contain an empty method");
        }
        if !(self.max_buffer_fill > 0.0 && self.max_buffer_fill <= 1.0) {
            return invalid(
                "failurePolicy.maxBufferFill",
                "must be greater than 0 and at most 1 (a fraction of the buffer)",
            );
        }
        Ok(())
    }
}

/// What the worker knows about its trail when a request arrives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrailHealth {
    /// The last delivery attempt failed and none has succeeded since.
    pub delivery_failing: bool,
    /// How full the buffer is, 0 to 1.
    pub buffer_fill: f64,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    CollectorUnreachable,
    BufferNearlyFull,
}

impl Refusal {
    /// The `reason` field of the refusal body.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::CollectorUnreachable => "audit_collector_unreachable",
            Refusal::BufferNearlyFull => "audit_buffer_full",
        }
    }

    fn explanation(self) -> &'static str {
        match self {
            Refusal::CollectorUnreachable => "the audit collector cannot be reached",
            Refusal::BufferNearlyFull => "the audit buffer is nearly full",
        }
    }
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Forward,
    Refuse(Refusal),
}

/// Whether a request with `method` may proceed, given the policy and the trail's health.
pub fn admit(policy: &FailurePolicyConfig, method: &str, health: TrailHealth) -> Admission {
    if policy.mode == FailureMode::Open || !policy.methods.iter().any(|refused| refused.eq_ignore_ascii_case(method)) {
        return Admission::Forward;
    }
    if health.delivery_failing {
        return Admission::Refuse(Refusal::CollectorUnreachable);
    }
    if health.buffer_fill >= policy.max_buffer_fill {
        return Admission::Refuse(Refusal::BufferNearlyFull);
    }
    Admission::Forward
}

/// The JSON body of the 503 sent for a refused request: what happened, and that the
/// request did not reach the service, so the client knows retrying later is safe.
pub fn refusal_body(refusal: Refusal, method: &str) -> Vec<u8> {
    let message = format!(
        "This {method} request was refused and was not forwarded to the service: {}, so the \
         change could not be recorded in the audit trail. Nothing was changed; retry later.",
        refusal.explanation()
    );
    let body = serde_json::json!({
        "error": "audit_trail_unavailable",
        "reason": refusal.code(),
        "message": message,
        "forwarded": false,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed() -> FailurePolicyConfig {
        FailurePolicyConfig { mode: FailureMode::Closed, ..FailurePolicyConfig::default() }
    }

    const HEALTHY: TrailHealth = TrailHealth { delivery_failing: false, buffer_fill: 0.1 };
    const UNREACHABLE: TrailHealth = TrailHealth { delivery_failing: true, buffer_fill: 0.1 };
    const NEARLY_FULL: TrailHealth = TrailHealth { delivery_failing: false, buffer_fill: 0.9 };

    #[test]
    fn open_mode_never_refuses() {
        let policy = FailurePolicyConfig::default();
        for health in [HEALTHY, UNREACHABLE, NEARLY_FULL] {
            assert_eq!(admit(&policy, "DELETE", health), Admission::Forward, "{health:?}");
        }
    }

    #[test]
    fn closed_mode_refuses_mutations_only_while_the_trail_cannot_be_written() {
        let policy = closed();
        assert_eq!(admit(&policy, "PUT", HEALTHY), Admission::Forward);
        assert_eq!(admit(&policy, "PUT", UNREACHABLE), Admission::Refuse(Refusal::CollectorUnreachable));
        assert_eq!(
            admit(&policy, "post", UNREACHABLE),
            Admission::Refuse(Refusal::CollectorUnreachable),
            "case-insensitive"
        );
        assert_eq!(
            admit(&policy, "DELETE", NEARLY_FULL),
            Admission::Refuse(Refusal::BufferNearlyFull),
            "0.9 ≥ maxBufferFill 0.9"
        );
        assert_eq!(admit(&policy, "PATCH", TrailHealth { buffer_fill: 0.89, ..HEALTHY }), Admission::Forward);
        for read in ["GET", "HEAD", "OPTIONS"] {
            assert_eq!(admit(&policy, read, UNREACHABLE), Admission::Forward, "{read} goes on");
            assert_eq!(admit(&policy, read, NEARLY_FULL), Admission::Forward, "{read} goes on");
        }
    }

    #[test]
    fn the_refused_methods_are_configurable() {
        let policy = FailurePolicyConfig { methods: vec!["GET".into()], ..closed() };
        assert_eq!(admit(&policy, "GET", UNREACHABLE), Admission::Refuse(Refusal::CollectorUnreachable));
        assert_eq!(admit(&policy, "POST", UNREACHABLE), Admission::Forward);
    }

    #[test]
    fn the_refusal_body_says_what_happened_and_that_nothing_was_forwarded() {
        let body: serde_json::Value =
            serde_json::from_slice(&refusal_body(Refusal::CollectorUnreachable, "PUT")).expect("JSON");
        assert_eq!(body["error"], "audit_trail_unavailable");
        assert_eq!(body["reason"], "audit_collector_unreachable");
        assert_eq!(body["forwarded"], false);
        let message = body["message"].as_str().expect("a message");
        assert!(message.contains("PUT request was refused and was not forwarded"), "{message}");
        assert!(message.contains("audit collector cannot be reached"), "{message}");
    }

    #[test]
    fn the_section_is_read_from_the_plugin_configuration() {
        use crate::config::FilterConfig;
        let default = FilterConfig::from_json(b"{}").expect("valid");
        assert_eq!(default.failure_policy, FailurePolicyConfig::default(), "fail-open unless configured");
        let config = FilterConfig::from_json(
            br#"{"failurePolicy": {"mode": "closed", "methods": ["put"], "maxBufferFill": 0.5}}"#,
        )
        .expect("valid");
        assert_eq!(
            (
                config.failure_policy.mode,
                config.failure_policy.methods.as_slice(),
                config.failure_policy.max_buffer_fill
            ),
            (FailureMode::Closed, ["PUT".to_string()].as_slice(), 0.5)
        );
        let error = |json: &str| FilterConfig::from_json(json.as_bytes()).map(|_| ()).map_err(|e| e.to_string());
        let bad_mode = error(r#"{"failurePolicy": {"mode": "shut"}}"#).expect_err("unknown mode");
        assert!(bad_mode.starts_with("`failurePolicy`: unknown variant `shut`"), "got {bad_mode}");
        let unknown = error(r#"{"failurePolicy": {"maxFill": 0.5}}"#).expect_err("unknown key");
        assert!(unknown.starts_with("`failurePolicy`: unknown field `maxFill`"), "got {unknown}");
        assert_eq!(
            error(r#"{"failurePolicy": {"maxBufferFill": 0}}"#),
            Err("`failurePolicy.maxBufferFill` must be greater than 0 and at most 1 (a fraction of the buffer)".into())
        );
    }

    #[test]
    fn validation_names_the_key() {
        let bad_fill = FailurePolicyConfig { max_buffer_fill: 1.5, ..closed() };
        assert_eq!(
            bad_fill.validate().map_err(|e| e.to_string()),
            Err("`failurePolicy.maxBufferFill` must be greater than 0 and at most 1 (a fraction of the buffer)".into())
        );
        let zero_fill = FailurePolicyConfig { max_buffer_fill: 0.0, ..closed() };
        assert!(zero_fill.validate().is_err());
        let empty = FailurePolicyConfig { methods: vec![" ".into()], ..closed() }.normalized();
        assert_eq!(
            empty.validate().map_err(|e| e.to_string()),
            Err("`failurePolicy.methods` must not contain an empty method".into())
        );
        assert_eq!(FailurePolicyConfig { methods: vec!["put ".into()], ..closed() }.normalized().methods, ["PUT"]);
    }
}
