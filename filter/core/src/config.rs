//! The filter's configuration: the JSON string Envoy hands to `on_configure`
//! (`google.protobuf.StringValue`), turned into a typed, validated [`FilterConfig`] by one
//! pure function, [`FilterConfig::from_json`]. Every error names the key that is wrong.
//!
//! The ingest token is resolved separately ([`FilterConfig::ingest_token`]) because it
//! comes from the environment, which the caller passes in as a lookup function.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::config_error::ConfigError;
use crate::request::bounds::{DEFAULT_MAX_FIELD_BYTES, MIN_MAX_FIELD_BYTES};
use crate::request::trusted_proxies::Cidr;
use crate::routes::{RouteTable, RouteTableConfig};
use crate::worker::failure_policy::FailurePolicyConfig;

/// The whole configuration. An empty or missing configuration means all defaults.
#[derive(Debug, Clone)]
pub struct FilterConfig {
    pub collector: CollectorConfig,
    pub batch: BatchConfig,
    pub buffer: BufferConfig,
    pub retry: RetryConfig,
    /// Fail-open or fail-closed while the trail cannot be written.
    pub failure_policy: FailurePolicyConfig,
    pub identity: IdentityConfig,
    pub redaction: RedactionConfig,
    /// How long a captured text field may be.
    pub limits: LimitsConfig,
    /// The route table that gives each event its `type` and `params`, compiled once here
    /// (the Pact Broker's own table unless `routes` brings another).
    pub route_table: RouteTable,
}

/// Where batches are sent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct CollectorConfig {
    /// The Envoy cluster name given to `dispatch_http_call`.
    pub cluster: String,
    /// The `:authority` of the ingest request.
    pub authority: String,
    /// The `:path` of the ingest request.
    pub path: String,
    /// The environment variable that holds the ingest token (preferred over `ingestToken`).
    pub ingest_token_env: String,
    /// An inline ingest token, for tests: it ends up in envoy.yaml, so prefer the env var.
    pub ingest_token: Option<String>,
    /// Timeout of one ingest call; a timeout is a failure and the batch is retried.
    pub timeout_ms: u64,
}

/// When a batch is due.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct BatchConfig {
    pub max_events: usize,
    pub max_bytes: usize,
    pub flush_interval_ms: u64,
}

/// How much each worker keeps while the collector is slow or down.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct BufferConfig {
    pub max_events: usize,
    pub max_bytes: usize,
}

/// Backoff between attempts to send a failed batch.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RetryConfig {
    pub initial_backoff_ms: u64,
    pub max_backoff_ms: u64,
}

/// Who made the request, and from where. Header names are matched lowercase.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// The sources read. `jwt` and `headers` are tried in this order and the first that
    /// gives an email or id is the identity, so one principal's email is never paired with
    /// another's id; `basic-auth`, when listed, always gives `user_name` (see
    /// [`crate::request::identity`]).
    pub sources: Vec<IdentitySource>,
    pub email_headers: Vec<String>,
    pub user_id_headers: Vec<String>,
    /// The peers (CIDRs) trusted to set the identity headers, e.g. an oauth2-proxy in
    /// front of Envoy. None by default: identity headers are then only ever claims.
    pub trusted_proxies: Vec<Cidr>,
    /// Remove identity headers that came from an untrusted peer before the request reaches
    /// the service, so that the service cannot be fooled by them either.
    pub strip_untrusted_headers: bool,
    /// Claims that Envoy's `jwt_authn` filter verified.
    pub jwt: JwtClaimsConfig,
    /// Proxies in front of Envoy trusted to append to `x-forwarded-for`, counted as
    /// Envoy's `xff_num_trusted_hops` with `use_remote_address: true` (0: the peer address).
    pub xff_trusted_hops: u32,
}

/// One place an identity can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdentitySource {
    /// The payload `jwt_authn` stored in the dynamic metadata (`payload_in_metadata`).
    Jwt,
    /// `emailHeaders` and `userIdHeaders`, set by an authenticating proxy in front.
    Headers,
    /// The user name of `Authorization: Basic` (never the password).
    BasicAuth,
}

/// Where `jwt_authn` left the verified payload, and which claims become which field.
/// A claim set to `null` is not read.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct JwtClaimsConfig {
    /// The dynamic metadata namespace: the `jwt_authn` filter's own name.
    pub metadata_namespace: String,
    /// The provider's `payload_in_metadata` value.
    pub payload_key: String,
    pub email_claim: Option<String>,
    /// Becomes `user_id`, and `db_user_id` when it is an integer.
    pub user_id_claim: Option<String>,
    pub user_name_claim: Option<String>,
    /// The native host only (an Envoy dynamic module reads dynamic metadata only at the top
    /// level of a namespace, not `jwt_authn`'s nested payload): the request header
    /// `jwt_authn`'s `claim_to_headers` writes each verified claim to, by claim name
    /// (`{"email": "x-jwt-email"}`). The native filter sits before `jwt_authn` and removes
    /// these headers from every request as it arrives, so only `jwt_authn` can have set
    /// them ([`crate::request::jwt_claim_headers`]). Empty: claims come from the metadata.
    pub claim_headers: BTreeMap<String, String>,
}

/// Bounds on what one event may hold.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// The most bytes of one text field (path, query, user agent, identity values, ...);
    /// a longer value is cut at a character boundary and marked (see [`crate::request::bounds`]).
    pub max_field_bytes: usize,
}

/// What is masked before an event leaves the filter.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct RedactionConfig {
    /// Query parameter names (matched case-insensitively) whose values become `***`.
    pub sensitive_query_params: Vec<String>,
    /// The keyed hash recorded instead of a presented token.
    pub token_fingerprint: TokenFingerprintConfig,
}

/// How `token_fingerprint` is made (see [`crate::request::fingerprint`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct TokenFingerprintConfig {
    pub enabled: bool,
    /// The environment variable holding the fingerprint key; when it is unset, the key
    /// is derived from the ingest token.
    pub key_env: String,
    /// Headers (lowercase) whose value is a token too, fingerprinted when there is no
    /// bearer token, e.g. `x-api-key`.
    pub api_key_headers: Vec<String>,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        Self {
            cluster: "audit_collector".into(),
            authority: "audit-collector".into(),
            path: audit_event::ingest::INGEST_PATH.into(),
            ingest_token_env: "AUDIT_INGEST_TOKEN".into(),
            ingest_token: None,
            timeout_ms: 5000,
        }
    }
}

impl Default for BatchConfig {
    fn default() -> Self {
        // ~400 KB of events at ~800 bytes each. Bigger batches mean bigger commits: from 8
        // connections the collector stored batches of 500 at 1.6x the rate of batches of 100
        // (30.7k vs 19.2k events/s, random uuids; bench/README.md has the ingest bench).
        Self { max_events: 500, max_bytes: 512 * 1024, flush_interval_ms: 1000 }
    }
}

impl Default for BufferConfig {
    fn default() -> Self {
        Self { max_events: 10_000, max_bytes: 8 * 1024 * 1024 }
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self { initial_backoff_ms: 200, max_backoff_ms: 30_000 }
    }
}

impl Default for IdentityConfig {
    fn default() -> Self {
        Self {
            // Verified claims first, then what a proxy in front asserts, then a user name
            // the upstream has still to check.
            sources: vec![IdentitySource::Jwt, IdentitySource::Headers, IdentitySource::BasicAuth],
            email_headers: strings(&["x-forwarded-email", "x-auth-request-email"]),
            user_id_headers: strings(&["x-user-id", "x-auth-request-user"]),
            trusted_proxies: Vec::new(),
            strip_untrusted_headers: true,
            jwt: JwtClaimsConfig::default(),
            xff_trusted_hops: 0,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self { max_field_bytes: DEFAULT_MAX_FIELD_BYTES }
    }
}

impl Default for JwtClaimsConfig {
    fn default() -> Self {
        Self {
            metadata_namespace: "envoy.filters.http.jwt_authn".into(),
            payload_key: "jwt_payload".into(),
            email_claim: Some("email".into()),
            user_id_claim: Some("sub".into()),
            user_name_claim: Some("preferred_username".into()),
            claim_headers: BTreeMap::new(),
        }
    }
}

impl Default for RedactionConfig {
    fn default() -> Self {
        Self {
            sensitive_query_params: strings(&[
                "token",
                "access_token",
                "password",
                "secret",
                "api_key",
                "apikey",
                "key",
                "signature",
                "sig",
                "code",
                "client_secret",
            ]),
            token_fingerprint: TokenFingerprintConfig::default(),
        }
    }
}

impl Default for TokenFingerprintConfig {
    fn default() -> Self {
        Self { enabled: true, key_env: "AUDIT_FINGERPRINT_KEY".into(), api_key_headers: Vec::new() }
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_string()).collect()
}

/// The top level, with each section kept raw so that a section's error can name it
/// (serde_json alone reports a line and column, not the key).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    collector: Option<Value>,
    batch: Option<Value>,
    buffer: Option<Value>,
    retry: Option<Value>,
    failure_policy: Option<Value>,
    identity: Option<Value>,
    redaction: Option<Value>,
    limits: Option<Value>,
    routes: Option<Value>,
}

fn section<T: DeserializeOwned + Default>(name: &'static str, raw: Option<Value>) -> Result<T, ConfigError> {
    match raw {
        None | Some(Value::Null) => Ok(T::default()),
        Some(value) => {
            serde_json::from_value(value).map_err(|err| ConfigError::Shape { section: name, message: err.to_string() })
        }
    }
}

impl FilterConfig {
    /// Parses and validates the plugin configuration. Empty input means all defaults.
    pub fn from_json(bytes: &[u8]) -> Result<FilterConfig, ConfigError> {
        let value: Value = if bytes.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(bytes).map_err(|err| ConfigError::NotJson(err.to_string()))?
        };
        let value = if value.is_null() { Value::Object(serde_json::Map::new()) } else { value };
        let raw: RawConfig = serde_json::from_value(value)
            .map_err(|err| ConfigError::Shape { section: "(top level)", message: err.to_string() })?;
        let config = FilterConfig {
            collector: section("collector", raw.collector)?,
            batch: section("batch", raw.batch)?,
            buffer: section("buffer", raw.buffer)?,
            retry: section("retry", raw.retry)?,
            failure_policy: section::<FailurePolicyConfig>("failurePolicy", raw.failure_policy)?.normalized(),
            identity: section("identity", raw.identity)?,
            redaction: section("redaction", raw.redaction)?,
            limits: section("limits", raw.limits)?,
            route_table: section::<RouteTableConfig>("routes", raw.routes)?.build().map_err(ConfigError::Routes)?,
        }
        .normalized();
        config.validate()?;
        Ok(config)
    }

    /// The ingest token: the environment variable named by `collector.ingestTokenEnv`
    /// first, then the inline `collector.ingestToken`. `env` looks a variable up.
    pub fn ingest_token(&self, env: impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
        let from_env = Some(self.collector.ingest_token_env.as_str()).filter(|name| !name.is_empty()).and_then(env);
        from_env
            .or_else(|| self.collector.ingest_token.clone())
            .filter(|token| !token.trim().is_empty())
            .ok_or_else(|| ConfigError::MissingIngestToken { env_var: self.collector.ingest_token_env.clone() })
    }

    /// Envoy's header maps are lowercase, and parameter names are matched case-insensitively.
    fn normalized(mut self) -> Self {
        let lower =
            |names: &mut Vec<String>| names.iter_mut().for_each(|name| *name = name.trim().to_ascii_lowercase());
        lower(&mut self.identity.email_headers);
        lower(&mut self.identity.user_id_headers);
        lower(&mut self.redaction.sensitive_query_params);
        lower(&mut self.redaction.token_fingerprint.api_key_headers);
        self
    }

    /// Each section checks its own rules (the buffer also against the batch it must hold).
    fn validate(&self) -> Result<(), ConfigError> {
        self.collector.validate()?;
        self.batch.validate()?;
        self.buffer.validate(&self.batch)?;
        self.retry.validate()?;
        self.failure_policy.validate()?;
        self.identity.validate()?;
        self.redaction.validate()?;
        self.limits.validate()
    }
}

/// The error for `key`, whose value breaks a rule.
fn invalid(key: &'static str, problem: &str) -> Result<(), ConfigError> {
    Err(ConfigError::Invalid { key, problem: problem.to_string() })
}

fn has_empty_name(names: &[String]) -> bool {
    names.iter().any(String::is_empty)
}

impl CollectorConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.cluster.trim().is_empty() {
            return invalid("collector.cluster", "must name an Envoy cluster");
        }
        if self.authority.trim().is_empty() {
            return invalid("collector.authority", "must not be empty");
        }
        if !self.path.starts_with('/') {
            return invalid("collector.path", "must start with `/`");
        }
        if self.timeout_ms == 0 {
            return invalid("collector.timeoutMs", "must be greater than zero (0 would mean no timeout)");
        }
        if self.ingest_token_env.trim().is_empty() && self.ingest_token.is_none() {
            return invalid(
                "collector.ingestTokenEnv",
                "must name an environment variable when `collector.ingestToken` is not set",
            );
        }
        Ok(())
    }
}

impl BatchConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_events == 0 {
            return invalid("batch.maxEvents", "must be greater than zero");
        }
        if self.max_bytes == 0 {
            return invalid("batch.maxBytes", "must be greater than zero");
        }
        if self.flush_interval_ms == 0 {
            return invalid("batch.flushIntervalMs", "must be greater than zero");
        }
        Ok(())
    }
}

impl BufferConfig {
    fn validate(&self, batch: &BatchConfig) -> Result<(), ConfigError> {
        if self.max_events < batch.max_events {
            return invalid("buffer.maxEvents", "must be at least `batch.maxEvents`");
        }
        if self.max_bytes < batch.max_bytes {
            return invalid("buffer.maxBytes", "must be at least `batch.maxBytes`");
        }
        Ok(())
    }
}

impl RetryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.initial_backoff_ms == 0 {
            return invalid("retry.initialBackoffMs", "must be greater than zero");
        }
        if self.max_backoff_ms < self.initial_backoff_ms {
            return invalid("retry.maxBackoffMs", "must be at least `retry.initialBackoffMs`");
        }
        Ok(())
    }
}

impl IdentityConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if has_empty_name(&self.email_headers) {
            return invalid("identity.emailHeaders", "must not contain an empty header name");
        }
        if has_empty_name(&self.user_id_headers) {
            return invalid("identity.userIdHeaders", "must not contain an empty header name");
        }
        self.jwt.validate()?;
        let mut seen = Vec::new();
        for source in &self.sources {
            if seen.contains(source) {
                return invalid("identity.sources", "must not name a source twice");
            }
            seen.push(*source);
        }
        Ok(())
    }
}

impl JwtClaimsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.payload_key.trim().is_empty() {
            return invalid("identity.jwt.payloadKey", "must name the provider's `payload_in_metadata`");
        }
        if self.metadata_namespace.trim().is_empty() {
            return invalid("identity.jwt.metadataNamespace", "must name the jwt_authn filter's metadata namespace");
        }
        let blank_claim = |claim: &Option<String>| claim.as_deref().is_some_and(|name| name.trim().is_empty());
        if [&self.email_claim, &self.user_id_claim, &self.user_name_claim].into_iter().any(blank_claim) {
            return invalid("identity.jwt", "claim names must not be empty (use null to read no claim)");
        }
        for (claim, header) in &self.claim_headers {
            let lowercase_name = !header.is_empty()
                && header
                    .bytes()
                    .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_');
            if claim.trim().is_empty() || !lowercase_name {
                return invalid(
                    "identity.jwt.claimHeaders",
                    &format!(
                        "`{claim}`: `{header}` must be a claim name and a lowercase header name (letters, digits, - and _), \
                         as in jwt_authn's claim_to_headers"
                    ),
                );
            }
        }
        Ok(())
    }
}

impl LimitsConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if self.max_field_bytes < MIN_MAX_FIELD_BYTES {
            return invalid("limits.maxFieldBytes", &format!("must be at least {MIN_MAX_FIELD_BYTES}"));
        }
        Ok(())
    }
}

impl RedactionConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        if has_empty_name(&self.sensitive_query_params) {
            return invalid("redaction.sensitiveQueryParams", "must not contain an empty name");
        }
        if has_empty_name(&self.token_fingerprint.api_key_headers) {
            return invalid("redaction.tokenFingerprint.apiKeyHeaders", "must not contain an empty header name");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<FilterConfig, ConfigError> {
        FilterConfig::from_json(json.as_bytes())
    }

    fn error_text(json: &str) -> String {
        match parse(json) {
            Ok(config) => format!("accepted: {config:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn empty_or_missing_configuration_means_all_defaults() {
        for input in ["", "  \n", "{}", "null"] {
            let config = parse(input).unwrap_or_else(|err| panic!("{input:?} refused: {err}"));
            assert_eq!(config.collector.cluster, "audit_collector", "collector.cluster for {input:?}");
            assert_eq!(config.collector.authority, "audit-collector");
            assert_eq!(config.collector.path, "/v1/events");
            assert_eq!(config.collector.ingest_token_env, "AUDIT_INGEST_TOKEN");
            assert_eq!(config.collector.timeout_ms, 5000);
            assert_eq!(
                (config.batch.max_events, config.batch.max_bytes, config.batch.flush_interval_ms),
                (500, 524_288, 1000)
            );
            assert_eq!((config.buffer.max_events, config.buffer.max_bytes), (10_000, 8_388_608));
            assert_eq!((config.retry.initial_backoff_ms, config.retry.max_backoff_ms), (200, 30_000));
            assert_eq!(config.identity.email_headers, ["x-forwarded-email", "x-auth-request-email"]);
            assert_eq!(config.identity.user_id_headers, ["x-user-id", "x-auth-request-user"]);
            assert_eq!(
                config.identity.sources,
                [IdentitySource::Jwt, IdentitySource::Headers, IdentitySource::BasicAuth]
            );
            assert_eq!(config.identity.xff_trusted_hops, 0);
            assert_eq!(config.identity.jwt.payload_key, "jwt_payload");
            assert_eq!(config.identity.jwt.user_id_claim.as_deref(), Some("sub"));
            assert!(config.redaction.token_fingerprint.enabled);
            assert_eq!(config.redaction.token_fingerprint.key_env, "AUDIT_FINGERPRINT_KEY");
            assert!(config.redaction.sensitive_query_params.contains(&"client_secret".to_string()));
            assert_eq!(
                config.route_table.fallback_type(),
                "PactBroker::Api::Resources::NotFound",
                "the Pact Broker table is the default for {input:?}"
            );
        }
    }

    #[test]
    fn a_partial_section_keeps_the_defaults_of_its_other_keys() {
        let config =
            parse(r#"{"batch": {"maxEvents": 5}, "routes": {"fallbackType": "Svc::Unknown"}}"#).expect("valid");
        assert_eq!(config.batch.max_events, 5);
        assert_eq!(config.batch.max_bytes, 524_288, "batch.maxBytes keeps its default");
        assert_eq!(config.route_table.fallback_type(), "Svc::Unknown");
        assert_eq!(config.route_table.route_counts().0, 103, "routes.fallbackType keeps the Pact Broker table");
    }

    #[test]
    fn header_and_parameter_names_are_lowercased() {
        let config =
            parse(r#"{"identity": {"emailHeaders": ["X-Email"]}, "redaction": {"sensitiveQueryParams": ["Token"]}}"#)
                .expect("valid");
        assert_eq!(config.identity.email_headers, ["x-email"]);
        assert_eq!(config.redaction.sensitive_query_params, ["token"]);
    }

    #[test]
    fn rule_violations_name_the_key() {
        let cases = [
            (r#"{"batch": {"maxEvents": 0}}"#, "`batch.maxEvents` must be greater than zero"),
            (r#"{"batch": {"maxBytes": 0}}"#, "`batch.maxBytes` must be greater than zero"),
            (r#"{"batch": {"flushIntervalMs": 0}}"#, "`batch.flushIntervalMs` must be greater than zero"),
            (r#"{"buffer": {"maxEvents": 10}}"#, "`buffer.maxEvents` must be at least `batch.maxEvents`"),
            (r#"{"buffer": {"maxBytes": 10}}"#, "`buffer.maxBytes` must be at least `batch.maxBytes`"),
            (r#"{"retry": {"maxBackoffMs": 100}}"#, "`retry.maxBackoffMs` must be at least `retry.initialBackoffMs`"),
            (r#"{"retry": {"initialBackoffMs": 0}}"#, "`retry.initialBackoffMs` must be greater than zero"),
            (r#"{"collector": {"path": "v1/events"}}"#, "`collector.path` must start with `/`"),
            (r#"{"collector": {"cluster": ""}}"#, "`collector.cluster` must name an Envoy cluster"),
            (
                r#"{"collector": {"timeoutMs": 0}}"#,
                "`collector.timeoutMs` must be greater than zero (0 would mean no timeout)",
            ),
            (
                r#"{"identity": {"emailHeaders": [""]}}"#,
                "`identity.emailHeaders` must not contain an empty header name",
            ),
            (r#"{"identity": {"sources": ["jwt", "jwt"]}}"#, "`identity.sources` must not name a source twice"),
            (
                r#"{"identity": {"jwt": {"payloadKey": " "}}}"#,
                "`identity.jwt.payloadKey` must name the provider's `payload_in_metadata`",
            ),
            (
                r#"{"identity": {"jwt": {"emailClaim": ""}}}"#,
                "`identity.jwt` claim names must not be empty (use null to read no claim)",
            ),
            (
                r#"{"redaction": {"tokenFingerprint": {"apiKeyHeaders": [""]}}}"#,
                "`redaction.tokenFingerprint.apiKeyHeaders` must not contain an empty header name",
            ),
            (
                r#"{"routes": {"routes": [{"path": "things", "type": "T", "resourceName": "t"}]}}"#,
                "in `routes`: `routes[0].path` must start with `/` (got `things`)",
            ),
        ];
        for (json, expected) in cases {
            assert_eq!(error_text(json), expected, "for {json}");
        }
    }

    #[test]
    fn unknown_and_mistyped_keys_name_their_section() {
        let unknown = error_text(r#"{"batch": {"maxEvent": 1}}"#);
        assert!(unknown.starts_with("`batch`: unknown field `maxEvent`"), "got {unknown}");
        let top = error_text(r#"{"batches": {}}"#);
        assert!(top.contains("unknown field `batches`"), "got {top}");
        let mistyped = error_text(r#"{"retry": {"maxBackoffMs": "soon"}}"#);
        assert!(mistyped.starts_with("`retry`: invalid type"), "got {mistyped}");
        let not_object = error_text("[1]");
        assert!(not_object.contains("(top level)"), "got {not_object}");
        let not_json = error_text("{batch");
        assert!(not_json.starts_with("the plugin configuration is not a JSON object"), "got {not_json}");
    }

    #[test]
    fn identity_sources_and_claims_are_configurable() {
        let config = parse(
            r#"{"identity": {"sources": ["basic-auth", "jwt"], "xffTrustedHops": 2,
                "jwt": {"payloadKey": "claims", "userNameClaim": null, "emailClaim": "mail"}}}"#,
        )
        .expect("valid");
        assert_eq!(config.identity.sources, [IdentitySource::BasicAuth, IdentitySource::Jwt]);
        assert_eq!(config.identity.xff_trusted_hops, 2);
        assert_eq!(config.identity.jwt.payload_key, "claims");
        assert_eq!(config.identity.jwt.email_claim.as_deref(), Some("mail"));
        assert_eq!(config.identity.jwt.user_name_claim, None, "null reads no claim");
        assert_eq!(config.identity.jwt.user_id_claim.as_deref(), Some("sub"), "unset keys keep their default");
        let unknown = error_text(r#"{"identity": {"sources": ["cookie"]}}"#);
        assert!(unknown.starts_with("`identity`: unknown variant `cookie`"), "got {unknown}");
    }

    #[test]
    fn trust_and_bounds_default_to_the_safe_side_and_are_configurable() {
        let defaults = parse("{}").expect("valid");
        assert_eq!(defaults.identity.trusted_proxies, [], "no peer is trusted to set identity headers");
        assert!(defaults.identity.strip_untrusted_headers, "untrusted identity headers never reach the service");
        assert_eq!(defaults.limits.max_field_bytes, 4096);
        let config = parse(
            r#"{"identity": {"trustedProxies": ["10.0.0.0/8", "2001:db8::1"], "stripUntrustedHeaders": false},
                "limits": {"maxFieldBytes": 1024}}"#,
        )
        .expect("valid");
        let proxies: Vec<String> = config.identity.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(proxies, ["10.0.0.0/8", "2001:db8::1/128"]);
        assert!(!config.identity.strip_untrusted_headers);
        assert_eq!(config.limits.max_field_bytes, 1024);
    }

    #[test]
    fn a_bad_trusted_proxy_or_bound_says_what_to_write() {
        let bad_cidr = error_text(r#"{"identity": {"trustedProxies": ["10.0.0.0/40"]}}"#);
        assert!(bad_cidr.starts_with("`identity`: trustedProxies entry `10.0.0.0/40` is not a CIDR"), "got {bad_cidr}");
        assert_eq!(error_text(r#"{"limits": {"maxFieldBytes": 10}}"#), "`limits.maxFieldBytes` must be at least 64");
        assert!(error_text(r#"{"limits": {"maxBytes": 10}}"#).starts_with("`limits`: unknown field `maxBytes`"));
    }

    #[test]
    fn the_ingest_token_comes_from_the_environment_first() {
        let config = parse(r#"{"collector": {"ingestToken": "inline"}}"#).expect("valid");
        let env = |name: &str| (name == "AUDIT_INGEST_TOKEN").then(|| "from-env".to_string());
        assert_eq!(config.ingest_token(env), Ok("from-env".to_string()));
        assert_eq!(config.ingest_token(|_| None), Ok("inline".to_string()));
    }

    #[test]
    fn a_missing_ingest_token_names_the_variable_and_the_inline_key() {
        let config = parse(r#"{"collector": {"ingestTokenEnv": "MY_TOKEN"}}"#).expect("valid");
        let err = config.ingest_token(|_| Some("  ".to_string())).map_err(|e| e.to_string());
        let text = err.expect_err("a blank token is no token");
        assert!(text.contains("`MY_TOKEN`") && text.contains("`collector.ingestToken`"), "got {text}");
    }
}
