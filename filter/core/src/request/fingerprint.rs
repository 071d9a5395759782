//! Token fingerprints: a keyed hash of the credential a request presented (`Authorization:
//! Bearer <token>`, or a configured API-key header), so that the uses of one token can be
//! correlated in the trail without the token ever being stored.
//!
//! `hmac-sha256:` + base64url(first 16 bytes of HMAC-SHA256(key, token)). The key is secret
//! and per deployment, so a reader of the trail cannot test guessed tokens against it, and
//! two deployments give the same token different fingerprints.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::TokenFingerprintConfig;
use crate::request::host::RequestHeaders;

/// What every fingerprint starts with, naming the algorithm (so it can change one day).
pub const FINGERPRINT_PREFIX: &str = "hmac-sha256:";

/// How many bytes of the MAC are kept: 128 bits, ample to tell tokens apart.
const FINGERPRINT_BYTES: usize = 16;

/// Labels the key derived from the ingest token, so it is used for nothing else.
const DERIVED_KEY_LABEL: &[u8] = b"audit-sidecar token fingerprint v1";

/// The secret that keys fingerprints. Never logged (its `Debug` hides it).
#[derive(Clone, PartialEq, Eq)]
pub struct FingerprintKey {
    bytes: Vec<u8>,
}

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("FingerprintKey(..)")
    }
}

impl FingerprintKey {
    /// A key given as is (the value of `AUDIT_FINGERPRINT_KEY`).
    pub fn new(secret: &[u8]) -> Self {
        Self { bytes: secret.to_vec() }
    }

    /// A key derived from the ingest token, when no fingerprint key is configured: still
    /// secret and per deployment, but it changes when the ingest token is rotated.
    pub fn derived_from_ingest_token(ingest_token: &str) -> Self {
        Self { bytes: mac(ingest_token.as_bytes(), DERIVED_KEY_LABEL).to_vec() }
    }

    /// The fingerprint of `token`.
    pub fn fingerprint(&self, token: &str) -> String {
        let digest = mac(&self.bytes, token.as_bytes());
        let kept = digest.get(..FINGERPRINT_BYTES).unwrap_or(&digest);
        format!("{FINGERPRINT_PREFIX}{}", URL_SAFE_NO_PAD.encode(kept))
    }
}

/// Where the fingerprint key came from, for the one log line at configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The environment variable `redaction.tokenFingerprint.keyEnv`.
    Environment,
    /// Derived from the ingest token, because that variable is unset or blank.
    IngestToken,
    /// `redaction.tokenFingerprint.enabled` is false: no fingerprints.
    Disabled,
}

/// The fingerprint key: the configured environment variable, else one derived from the
/// ingest token (so fingerprints are always keyed by a per-deployment secret, never a
/// plain hash anyone could compute from a guessed token). `env` looks a variable up.
pub fn resolve_key(
    config: &TokenFingerprintConfig,
    env: impl Fn(&str) -> Option<String>,
    ingest_token: &str,
) -> (Option<FingerprintKey>, KeyOrigin) {
    if !config.enabled {
        return (None, KeyOrigin::Disabled);
    }
    let configured = Some(config.key_env.trim()).filter(|name| !name.is_empty()).and_then(env);
    match configured.filter(|secret| !secret.trim().is_empty()) {
        Some(secret) => (Some(FingerprintKey::new(secret.trim().as_bytes())), KeyOrigin::Environment),
        None => (Some(FingerprintKey::derived_from_ingest_token(ingest_token)), KeyOrigin::IngestToken),
    }
}

fn mac(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut hmac) => {
            hmac.update(message);
            hmac.finalize().into_bytes().into()
        }
        Err(_) => [0; 32],
    }
}

/// The token a request presented: the bearer token of `Authorization`, else the first
/// non-empty value of `api_key_headers` (lowercase names). Basic credentials are not tokens.
pub fn presented_token<'a>(headers: &'a RequestHeaders, api_key_headers: &[String]) -> Option<&'a str> {
    let bearer = headers.get("authorization").and_then(|value| {
        let (scheme, token) = value.trim().split_once(' ')?;
        let token = token.trim();
        (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
    });
    bearer.or_else(|| api_key_headers.iter().find_map(|name| headers.get_non_empty(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> RequestHeaders {
        RequestHeaders::new(pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect())
    }

    #[test]
    fn the_same_token_and_key_give_the_same_fingerprint() {
        let key = FingerprintKey::new(b"deployment-key");
        assert_eq!(key.fingerprint("tok-1"), key.fingerprint("tok-1"));
        assert_ne!(key.fingerprint("tok-1"), key.fingerprint("tok-2"), "different tokens");
    }

    #[test]
    fn a_different_key_gives_a_different_fingerprint() {
        let one = FingerprintKey::new(b"key-one").fingerprint("tok-1");
        let two = FingerprintKey::new(b"key-two").fingerprint("tok-1");
        assert_ne!(one, two);
        let derived = FingerprintKey::derived_from_ingest_token("ingest").fingerprint("tok-1");
        assert_ne!(
            derived,
            FingerprintKey::new(b"ingest").fingerprint("tok-1"),
            "the derived key is not the ingest token"
        );
    }

    #[test]
    fn a_fingerprint_is_the_prefix_and_16_bytes_of_base64url() {
        let fingerprint = FingerprintKey::new(b"k").fingerprint("secret-token-value");
        let encoded =
            fingerprint.strip_prefix(FINGERPRINT_PREFIX).unwrap_or_else(|| panic!("no prefix: {fingerprint}"));
        assert_eq!(URL_SAFE_NO_PAD.decode(encoded).map(|bytes| bytes.len()), Ok(16), "{fingerprint}");
        assert!(!fingerprint.contains("secret-token-value"), "the token appears in {fingerprint}");
    }

    #[test]
    fn matches_the_rfc_4231_test_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let expected = [0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24, 0x26, 0x08, 0x95, 0x75, 0xc7];
        let fingerprint = FingerprintKey::new(b"Jefe").fingerprint("what do ya want for nothing?");
        assert_eq!(fingerprint, format!("{FINGERPRINT_PREFIX}{}", URL_SAFE_NO_PAD.encode(expected)));
    }

    #[test]
    fn the_key_comes_from_the_environment_else_from_the_ingest_token() {
        let config = TokenFingerprintConfig::default();
        let env = |name: &str| (name == "AUDIT_FINGERPRINT_KEY").then(|| "env-key".to_string());
        assert_eq!(
            resolve_key(&config, env, "ingest"),
            (Some(FingerprintKey::new(b"env-key")), KeyOrigin::Environment)
        );
        let derived = (Some(FingerprintKey::derived_from_ingest_token("ingest")), KeyOrigin::IngestToken);
        assert_eq!(resolve_key(&config, |_| None, "ingest"), derived);
        assert_eq!(resolve_key(&config, |_| Some(" ".into()), "ingest"), derived, "a blank variable is unset");
        let off = TokenFingerprintConfig { enabled: false, ..TokenFingerprintConfig::default() };
        assert_eq!(resolve_key(&off, env, "ingest"), (None, KeyOrigin::Disabled));
    }

    #[test]
    fn the_key_is_never_printed() {
        assert_eq!(format!("{:?}", FingerprintKey::new(b"top-secret")), "FingerprintKey(..)");
    }

    #[test]
    fn the_presented_token_is_the_bearer_token_or_an_api_key_header() {
        let api_keys = ["x-api-key".to_string()];
        assert_eq!(presented_token(&headers(&[("authorization", "Bearer abc.def")]), &api_keys), Some("abc.def"));
        assert_eq!(presented_token(&headers(&[("authorization", "bearer  xyz ")]), &api_keys), Some("xyz"));
        assert_eq!(presented_token(&headers(&[("x-api-key", "k1")]), &api_keys), Some("k1"));
        assert_eq!(presented_token(&headers(&[("x-api-key", "k1")]), &[]), None, "not configured");
        assert_eq!(
            presented_token(&headers(&[("authorization", "Bearer b"), ("x-api-key", "k")]), &api_keys),
            Some("b"),
            "the bearer token first"
        );
        for value in ["Basic YTpi", "Bearer", "Bearer  ", "Token abc"] {
            assert_eq!(presented_token(&headers(&[("authorization", value)]), &[]), None, "Authorization: {value}");
        }
    }
}
