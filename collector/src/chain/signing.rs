//! The Ed25519 key that signs checkpoints. [`TrailSigner::load_or_create`] reads the
//! private key from a PKCS#8 PEM file, creating one (mode 0600) on first start, so a
//! collector keeps its identity across restarts. [`TrailVerifier`] is the auditor's side:
//! a public key given as 64 hex digits or a PEM `PUBLIC KEY`, which OpenSSL also reads.

use std::io::Write;
use std::path::{Path, PathBuf};

use audit_event::chain::TrailPublicKey;
use base64::Engine as _;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

use super::link::{from_hex, sha256, to_hex};

/// DER of a PKCS#8 v1 Ed25519 private key, before the 32-byte seed (RFC 8410).
const PKCS8_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];
/// DER of an Ed25519 SubjectPublicKeyInfo, before the 32-byte key (RFC 8410).
const SPKI_PREFIX: [u8; 12] = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];

/// A key that cannot be read, written or used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read or written.
    #[error("could not {action} the signing key {path}: {source}; check --signing-key / AUDIT_SIGNING_KEY")]
    Io {
        /// `read` or `create`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not an Ed25519 private key this collector wrote.
    #[error("{path} is not an Ed25519 private key (PKCS#8 PEM, `-----BEGIN PRIVATE KEY-----`)")]
    NotAPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// The public key text is neither 64 hex digits nor a PEM Ed25519 public key.
    #[error("the public key is neither 64 hex digits nor a PEM Ed25519 `PUBLIC KEY` ({0})")]
    NotAPublicKey(String),
    /// The text has the form of a key (64 hex digits, or a PEM `PUBLIC KEY` of 32 bytes), but
    /// the 32 bytes are not an Ed25519 public key: a mistyped or truncated copy, most likely.
    #[error("the public key has the right form ({form}) but is not a valid Ed25519 public key ({reason}): copy it again, whole, from `audit-collector public-key` or GET /audit/public-key")]
    InvalidPublicKey {
        /// `64 hex digits` or `a PEM PUBLIC KEY`.
        form: &'static str,
        /// What the Ed25519 library said.
        reason: String,
    },
    /// The operating system gave no random bytes.
    #[error("no randomness for a new signing key: {0}")]
    Random(String),
}

/// Where the signing key lives when no path is given: next to the database, e.g.
/// `data/audit.db` → `data/audit.signing-key.pem`.
pub fn default_key_path(database: &Path) -> PathBuf {
    database.with_extension("signing-key.pem")
}

/// The collector's signing key.
pub struct TrailSigner {
    key: SigningKey,
    key_id: String,
}

impl TrailSigner {
    /// Reads the key at `path`, or creates it (mode 0600) when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<TrailSigner, KeyError> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                TrailSigner::from_pem(&text).ok_or_else(|| KeyError::NotAPrivateKey { path: path.to_path_buf() })
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => TrailSigner::create(path),
            Err(source) => Err(KeyError::Io { action: "read", path: path.to_path_buf(), source }),
        }
    }

    /// Reads an existing key.
    pub fn load(path: &Path) -> Result<TrailSigner, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
        TrailSigner::from_pem(&text).ok_or_else(|| KeyError::NotAPrivateKey { path: path.to_path_buf() })
    }

    /// A signer from a 32-byte seed (tests use fixed seeds, for reproducible databases).
    pub fn from_seed(seed: [u8; 32]) -> TrailSigner {
        let key = SigningKey::from_bytes(&seed);
        let key_id = key_id_of(&key.verifying_key());
        TrailSigner { key, key_id }
    }

    fn create(path: &Path) -> Result<TrailSigner, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|error| KeyError::Random(error.to_string()))?;
        let signer = TrailSigner::from_seed(seed);
        let io_error = |source| KeyError::Io { action: "create", path: path.to_path_buf(), source };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io_error)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(io_error)?;
        let der: Vec<u8> = PKCS8_PREFIX.iter().chain(seed.iter()).copied().collect();
        file.write_all(pem("PRIVATE KEY", &der).as_bytes()).map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
        tracing::info!(path = %path.display(), key_id = %signer.key_id, "created the checkpoint signing key");
        Ok(signer)
    }

    fn from_pem(text: &str) -> Option<TrailSigner> {
        let der = pem_body(text, "PRIVATE KEY")?;
        let seed: [u8; 32] = der.strip_prefix(&PKCS8_PREFIX)?.try_into().ok()?;
        Some(TrailSigner::from_seed(seed))
    }

    /// The key id checkpoints name.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }

    /// The public half, as `GET /audit/public-key` serves it.
    pub fn public_key(&self) -> TrailPublicKey {
        describe(&self.key.verifying_key())
    }

    /// The public half, for verifying.
    pub fn verifier(&self) -> TrailVerifier {
        let key = self.key.verifying_key();
        TrailVerifier { key_id: key_id_of(&key), key }
    }
}

/// A public key that checks checkpoint signatures.
#[derive(Clone)]
pub struct TrailVerifier {
    key: VerifyingKey,
    key_id: String,
}

impl TrailVerifier {
    /// Reads 64 hex digits or a PEM `PUBLIC KEY`.
    pub fn parse(text: &str) -> Result<TrailVerifier, KeyError> {
        let text = text.trim();
        let (raw, form) = match pem_body(text, "PUBLIC KEY") {
            Some(der) => (der.strip_prefix(&SPKI_PREFIX).map(<[u8]>::to_vec), "a PEM PUBLIC KEY"),
            None => (from_hex(text), "64 hex digits"),
        };
        let raw: [u8; 32] = raw
            .and_then(|raw| raw.try_into().ok())
            .ok_or_else(|| KeyError::NotAPublicKey("not 32 bytes of Ed25519 key".to_owned()))?;
        let key = VerifyingKey::from_bytes(&raw)
            .map_err(|error| KeyError::InvalidPublicKey { form, reason: error.to_string() })?;
        Ok(TrailVerifier { key_id: key_id_of(&key), key })
    }

    /// The id of this key, as checkpoints name it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// True when `signature` is this key's signature of `message` (strict RFC 8032 checks).
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        match Signature::from_slice(signature) {
            Ok(signature) => self.key.verify_strict(message, &signature).is_ok(),
            Err(_) => false,
        }
    }

    /// The key as `GET /audit/public-key` serves it.
    pub fn public_key(&self) -> TrailPublicKey {
        describe(&self.key)
    }

    /// The 32 raw public key bytes.
    pub fn public_key_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }
}

fn key_id_of(key: &VerifyingKey) -> String {
    to_hex(&sha256(key.as_bytes())[..8])
}

fn describe(key: &VerifyingKey) -> TrailPublicKey {
    let der: Vec<u8> = SPKI_PREFIX.iter().chain(key.as_bytes().iter()).copied().collect();
    TrailPublicKey {
        algorithm: "Ed25519".to_owned(),
        key_id: key_id_of(key),
        public_key_hex: to_hex(key.as_bytes()),
        public_key_pem: pem("PUBLIC KEY", &der),
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
}

fn pem_body(text: &str, label: &str) -> Option<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text.find(&begin)? + begin.len();
    let stop = text[start..].find(&end)? + start;
    let base64: String = text[start..stop].chars().filter(|c| !c.is_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(base64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_is_private_to_its_owner_and_reloads_as_the_same_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("keys/audit.signing-key.pem");
        let created = TrailSigner::load_or_create(&path).expect("created");
        let reloaded = TrailSigner::load_or_create(&path).expect("reloaded");
        assert_eq!(created.public_key(), reloaded.public_key());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "the key file is readable by its owner only");
        }
    }

    #[test]
    fn the_public_key_reads_back_from_hex_and_pem_and_checks_signatures() {
        let signer = TrailSigner::from_seed([7; 32]);
        let signature = signer.sign(b"message");
        let public = signer.public_key();
        for text in [&public.public_key_hex, &public.public_key_pem] {
            let verifier = TrailVerifier::parse(text).expect("parses");
            assert_eq!(verifier.key_id(), signer.key_id());
            assert!(verifier.verifies(b"message", &signature));
            assert!(!verifier.verifies(b"massage", &signature));
        }
        assert!(TrailVerifier::parse("not a key").is_err());
    }

    #[test]
    fn sixty_four_hex_digits_that_are_no_ed25519_key_are_told_apart_from_text_that_is_no_key_at_all() {
        // 32 bytes whose y coordinate is on no point of the curve (about half of all values).
        let not_a_point = "02".repeat(32);
        assert!(VerifyingKey::from_bytes(&[2; 32]).is_err(), "[2; 32] is not a point");
        let error = TrailVerifier::parse(&not_a_point).err().map(|error| error.to_string()).unwrap_or_default();
        assert!(
            error.contains("has the right form (64 hex digits) but is not a valid Ed25519 public key")
                && !error.contains("neither"),
            "{error}"
        );
        let error = TrailVerifier::parse("abc").err().map(|error| error.to_string()).unwrap_or_default();
        assert!(error.contains("neither 64 hex digits nor a PEM"), "{error}");
    }

    #[test]
    fn a_file_that_is_not_a_key_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("key.pem");
        std::fs::write(&path, "hello").expect("write");
        assert!(matches!(TrailSigner::load_or_create(&path), Err(KeyError::NotAPrivateKey { .. })));
    }
}
