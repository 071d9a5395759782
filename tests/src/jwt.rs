//! JSON Web Tokens for the end-to-end tests: an RSA key pair made at test time (never
//! checked in), its JWKS, RS256 tokens signed with it, and an Envoy `jwt_authn` filter that
//! trusts it. The `openssl` command does the cryptography, so no crypto crate is needed;
//! [`hmac_sha256`] is there to check token fingerprints independently of the filter.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// The issuer the test tokens carry and the filter requires.
pub const ISSUER: &str = "https://issuer.audit-e2e.test";
/// The audience the test tokens carry and the filter requires.
pub const AUDIENCE: &str = "audit-e2e";

/// An RSA key pair in a folder (the private key never leaves it).
pub struct SigningKey {
    private_key: PathBuf,
    kid: String,
}

impl SigningKey {
    /// Makes a new 2048-bit key, written to `private_key`, announced as key id `kid`.
    pub fn generate(private_key: &Path, kid: &str) -> Result<Self> {
        openssl(
            &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"],
            Some(private_key),
            None,
        )?;
        Ok(Self { private_key: private_key.to_path_buf(), kid: kid.to_string() })
    }

    /// The public key as a JWKS (`{"keys": [{"kty": "RSA", ...}]}`).
    pub fn jwks(&self) -> Result<serde_json::Value> {
        let out = openssl(&["rsa", "-noout", "-modulus", "-in"], Some(&self.private_key), None)?;
        let text = String::from_utf8(out)?;
        let hex = text.trim().strip_prefix("Modulus=").ok_or_else(|| anyhow!("openssl printed no modulus: {text}"))?;
        let modulus = (0..hex.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(hex.get(at..at + 2).unwrap_or("zz"), 16))
            .collect::<Result<Vec<u8>, _>>()
            .context("the modulus is not hex")?;
        Ok(serde_json::json!({"keys": [{
            "kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(modulus),
            "e": URL_SAFE_NO_PAD.encode([1u8, 0, 1]),
        }]}))
    }

    /// An RS256 token with `claims`, signed with this key.
    pub fn sign(&self, claims: &serde_json::Value) -> Result<String> {
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
        );
        let signature =
            openssl(&["dgst", "-sha256", "-sign"], Some(&self.private_key), Some(signing_input.as_bytes()))?;
        Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// Seconds since the Unix epoch, for `iat` and `exp`.
pub fn now_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

/// Envoy's `jwt_authn` filter trusting `jwks` for [`ISSUER`] and [`AUDIENCE`], storing the
/// verified payload in the dynamic metadata under `payload_in_metadata`. A request without
/// a token passes (the service decides); a request with a bad token gets Envoy's 401.
/// `claim_to_headers` also writes the `email`, `sub` and `preferred_username` claims to
/// `x-jwt-email`, `x-jwt-sub` and `x-jwt-username` ([`claim_headers`]).
/// `forward: true` keeps the `Authorization` header: with `forward: false` jwt_authn strips
/// a verified token before the audit filter runs, which then cannot fingerprint it.
pub fn jwt_authn_filter(jwks: &serde_json::Value, payload_in_metadata: &str) -> Result<serde_yaml::Value> {
    let filter = serde_json::json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {
                "audit_e2e": {
                    "issuer": ISSUER,
                    "audiences": [AUDIENCE],
                    "local_jwks": {"inline_string": serde_json::to_string(jwks)?},
                    "payload_in_metadata": payload_in_metadata,
                    "forward": true,
                    "claim_to_headers": [
                        {"claim_name": "email", "header_name": "x-jwt-email"},
                        {"claim_name": "sub", "header_name": "x-jwt-sub"},
                        {"claim_name": "preferred_username", "header_name": "x-jwt-username"},
                    ],
                }
            },
            "rules": [{
                "match": {"prefix": "/"},
                "requires": {"requires_any": {"requirements": [{"provider_name": "audit_e2e"}, {"allow_missing": {}}]}},
            }],
        }
    });
    Ok(serde_yaml::to_value(filter)?)
}

/// `identity.jwt.claimHeaders` for the headers [`jwt_authn_filter`]'s `claim_to_headers`
/// writes: how the native host reads the verified claims (the wasm host reads the metadata).
pub fn claim_headers() -> serde_json::Value {
    serde_json::json!({"email": "x-jwt-email", "sub": "x-jwt-sub", "preferred_username": "x-jwt-username"})
}

/// HMAC-SHA256 of `message` with `key`, computed by `openssl`: an oracle for the
/// filter's token fingerprints that shares no code with it.
pub fn hmac_sha256(key: &str, message: &str) -> Result<Vec<u8>> {
    let mac_key = format!("key:{key}");
    openssl(&["dgst", "-sha256", "-binary", "-mac", "HMAC", "-macopt", &mac_key], None, Some(message.as_bytes()))
}

/// Runs `openssl args [path]`, feeding `stdin`, and returns its standard output.
fn openssl(args: &[&str], path: Option<&Path>, stdin: Option<&[u8]>) -> Result<Vec<u8>> {
    let mut command = Command::new("openssl");
    command.args(args);
    if let Some(path) = path {
        command.arg(path);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running `openssl` (the end-to-end JWT tests need the openssl command)")?;
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.unwrap_or_default())?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("openssl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    }
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_token_has_three_parts_and_the_claims_given() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::generate(&dir.path().join("k1.pem"), "k1").unwrap();
        let token = key.sign(&serde_json::json!({"sub": "ann"})).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{token}");
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["sub"], "ann");
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 256, "an RSA-2048 signature");
        let jwks = key.jwks().unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(jwks["keys"][0]["n"].as_str().unwrap()).unwrap().len(), 256, "the modulus");
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        let mac = hmac_sha256("Jefe", "what do ya want for nothing?").unwrap();
        assert_eq!(mac[..4], [0x5b, 0xdc, 0xc1, 0x46]);
    }
}
