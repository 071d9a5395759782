//! Where and how to connect to PostgreSQL, from `--database`: the URL, and TLS as its
//! `sslmode` and `sslrootcert` parameters say (libpq's names; rustls underneath).
//!
//! - no `sslmode`, or `disable`: plaintext (a private network or a local socket proxy).
//! - `verify-full`: TLS, the server's certificate chained to `sslrootcert` (a PEM file of
//!   CA certificates) or, without it, to the public web CAs, and naming the URL's host.
//! - `verify-ca`, and `require` with `sslrootcert` (what libpq does then): TLS, the
//!   certificate chained to `sslrootcert`, whatever host it names.
//!
//! Refused, with a message: `require` without `sslrootcert` (it would encrypt without
//! checking who answers), and `prefer`/`allow` (they fall back to plaintext). A server
//! that does not offer TLS is refused in every TLS mode, never used in plaintext.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::super::StoreError;

/// A database to connect to: its configuration, and the TLS connector when it uses TLS.
pub struct PgTarget {
    /// The connection settings, without the TLS parameters tokio-postgres does not know.
    pub config: tokio_postgres::Config,
    /// `None`: plaintext.
    pub tls: Option<MakeRustlsConnect>,
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// Chained to the roots and naming the host.
    Full,
    /// Chained to the roots.
    ChainOnly,
}

/// Reads `url`, its TLS parameters included.
pub fn target(url: &str) -> Result<PgTarget, StoreError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (mut mode, mut root_file, mut kept) = (None, None, Vec::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "sslmode" => mode = Some(value.into_owned()),
            "sslrootcert" => root_file = Some(value.into_owned()),
            _ => kept.push((key.into_owned(), value.into_owned())),
        }
    }
    let check = match (mode.as_deref(), &root_file) {
        (None | Some("disable"), None) => None,
        (None | Some("disable"), Some(_)) => {
            return Err(tls_error("sslrootcert is given but sslmode is not verify-full, verify-ca or require"))
        }
        (Some("verify-full"), _) => Some(Check::Full),
        (Some("verify-ca" | "require"), Some(_)) => Some(Check::ChainOnly),
        (Some("verify-ca" | "require"), None) => return Err(tls_error(
            "sslmode=require or verify-ca needs sslrootcert=<PEM file of the CA that signed the server's certificate> \
                 (without it the collector could not tell PostgreSQL from whoever answers in its place); or use \
                 sslmode=verify-full, which also trusts the public web CAs",
        )),
        (Some("prefer" | "allow"), _) => {
            return Err(tls_error(
                "sslmode=prefer and allow may fall back to plaintext; use verify-full, verify-ca or require (with \
                 sslrootcert), or disable",
            ))
        }
        (Some(other), _) => {
            return Err(tls_error(&format!("sslmode={other} is not one of disable, require, verify-ca, verify-full")))
        }
    };
    if check.is_some() {
        // tokio-postgres knows `require` only; the check itself is the connector's.
        kept.push(("sslmode".to_owned(), "require".to_owned()));
    } else if mode.is_some() {
        kept.push(("sslmode".to_owned(), "disable".to_owned()));
    }
    let query = form_urlencoded::Serializer::new(String::new()).extend_pairs(&kept).finish();
    let plain_url = if query.is_empty() { base.to_owned() } else { format!("{base}?{query}") };
    let config: tokio_postgres::Config =
        plain_url.parse().map_err(|error: tokio_postgres::Error| StoreError::PostgresUrl(error.to_string()))?;
    let tls = match check {
        None => None,
        Some(check) => Some(MakeRustlsConnect::new(client_config(check, root_file.as_deref().map(Path::new))?)),
    };
    Ok(PgTarget { config, tls })
}

fn tls_error(message: &str) -> StoreError {
    StoreError::PostgresTls(message.to_owned())
}

fn client_config(check: Check, root_file: Option<&Path>) -> Result<ClientConfig, StoreError> {
    let mut roots = RootCertStore::empty();
    match root_file {
        Some(path) => {
            let unreadable = |error: &dyn std::fmt::Display| {
                tls_error(&format!("sslrootcert {}: {error}; give a PEM file of CA certificates", path.display()))
            };
            for certificate in CertificateDer::pem_file_iter(path).map_err(|error| unreadable(&error))? {
                roots.add(certificate.map_err(|error| unreadable(&error))?).map_err(|error| unreadable(&error))?;
            }
            if roots.is_empty() {
                return Err(unreadable(&"no certificate in it"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|error| tls_error(&error.to_string()))?;
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
        .build()
        .map_err(|error| tls_error(&error.to_string()))?;
    let config = match check {
        Check::Full => builder.with_webpki_verifier(verifier),
        Check::ChainOnly => {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(ChainOnly { chain: verifier, provider }))
        }
    };
    Ok(config.with_no_client_auth())
}

/// The full check, less the host name: libpq's `verify-ca`.
#[derive(Debug)]
struct ChainOnly {
    chain: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_tls_parameters_the_url_is_plaintext_as_before() {
        let plain = target("postgres://u:p@db:5433/audit?application_name=x").expect("valid");
        assert!(plain.tls.is_none());
        assert_eq!(plain.config.get_ssl_mode(), tokio_postgres::config::SslMode::Prefer);
        assert_eq!(plain.config.get_application_name(), Some("x"));
        let disabled = target("postgres://u@db/audit?sslmode=disable").expect("valid");
        assert_eq!(disabled.config.get_ssl_mode(), tokio_postgres::config::SslMode::Disable);
    }

    #[test]
    fn verify_full_without_a_root_file_trusts_the_web_cas_and_requires_tls() {
        let full = target("postgres://u@db/audit?sslmode=verify-full").expect("valid");
        assert!(full.tls.is_some());
        assert_eq!(full.config.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
    }

    #[test]
    fn modes_that_would_not_check_the_server_are_refused_with_what_to_do() {
        for (url, says) in [
            ("postgres://u@db/audit?sslmode=require", "needs sslrootcert"),
            ("postgres://u@db/audit?sslmode=verify-ca", "needs sslrootcert"),
            ("postgres://u@db/audit?sslmode=prefer", "fall back to plaintext"),
            ("postgres://u@db/audit?sslmode=bogus", "not one of"),
            ("postgres://u@db/audit?sslrootcert=/ca.pem", "sslmode is not"),
            ("postgres://u@db/audit?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem", "/nonexistent/ca.pem"),
        ] {
            let error = target(url).err().map(|error| error.to_string()).unwrap_or_default();
            assert!(error.contains(says), "{url}: {error}");
        }
    }
}
