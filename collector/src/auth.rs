//! Bearer tokens. A [`TokenSet`] keeps only the SHA-256 digest of each configured token, so
//! the secrets never sit in memory longer than configuration parsing, and compares a
//! presented token against every digest in constant time, so timing says nothing about
//! how much of a guess was right. Tokens made by `audit-collector token create` are
//! [`new_secret`]s with a [`Scope`], stored as the same digests in the database.
//!
//! A plain SHA-256, not a slow password hash, is enough here: every token the collector
//! makes is 32 random bytes (256 bits), so there is no dictionary to try and a fast hash
//! leaks nothing; what the hash protects against is a copy of the database (or of the
//! process memory) turning into working credentials.

use std::fmt;

use hyper::header::{HeaderMap, AUTHORIZATION};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// The tokens one route accepts, as SHA-256 digests.
#[derive(Clone, Default)]
pub struct TokenSet {
    digests: Vec<[u8; 32]>,
}

impl TokenSet {
    /// Reads a comma-separated list of tokens; blanks around and between entries are ignored.
    pub fn from_list(list: &str) -> TokenSet {
        TokenSet::from_tokens(list.split(','))
    }

    /// Builds the set from individual tokens; empty ones are ignored.
    pub fn from_tokens<I, S>(tokens: I) -> TokenSet
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let digests = tokens
            .into_iter()
            .map(|token| token.as_ref().trim().to_owned())
            .filter(|token| !token.is_empty())
            .map(|token| digest(&token))
            .collect();
        TokenSet { digests }
    }

    /// True when no token is configured (such a set accepts nothing).
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// True when `presented` is one of the tokens. Every digest is compared, always.
    pub fn accepts(&self, presented: &str) -> bool {
        self.contains_digest(&digest(presented))
    }

    /// True when a token is in both sets (a read token must not also be the ingest token).
    pub fn shares_a_token_with(&self, other: &TokenSet) -> bool {
        self.digests.iter().any(|mine| other.digests.iter().any(|theirs| bool::from(mine.ct_eq(theirs))))
    }
}

impl fmt::Debug for TokenSet {
    // Only the count: even digests of tokens do not belong in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSet({} tokens)", self.digests.len())
    }
}

impl TokenSet {
    /// True when `presented` (a digest) is one of the tokens. Every digest is compared.
    pub fn contains_digest(&self, presented: &[u8; 32]) -> bool {
        contains_in_constant_time(self.digests.iter(), presented)
    }
}

/// True when `presented` is among `known`; compares every entry, whatever matched.
pub fn contains_in_constant_time<'a>(known: impl Iterator<Item = &'a [u8; 32]>, presented: &[u8; 32]) -> bool {
    let mut matched = Choice::from(0);
    for digest in known {
        matched |= digest.ct_eq(presented);
    }
    bool::from(matched)
}

/// The SHA-256 digest a token is stored and compared as.
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `GET /audit` and the other reads of the trail.
    Read,
    /// `POST /v1/events`: what the Envoy filter presents.
    Ingest,
    /// `POST /audit/checkpoints`: sign a checkpoint on demand, so an auditor can close the
    /// uncovered tail before verifying. Made only by `token create --scope admin`; it reads
    /// nothing (a read token is still needed to read the trail).
    Admin,
}

impl Scope {
    /// The name used on the command line and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Ingest => "ingest",
            Scope::Admin => "admin",
        }
    }

    /// The scope of a name, or `None`.
    pub fn parse(name: &str) -> Option<Scope> {
        match name {
            "read" => Some(Scope::Read),
            "ingest" => Some(Scope::Ingest),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// The prefix of every token the collector makes, so a leaked one is recognisable (secret
/// scanners look for such prefixes).
pub const TOKEN_PREFIX: &str = "ast_";

/// A new token secret: [`TOKEN_PREFIX`] and 32 random bytes from the OS, base64url.
pub fn new_secret() -> Result<String, getrandom::Error> {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// An `Authorization` header that is not `Bearer <token>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the Authorization header is not `Bearer <token>`")]
pub struct MalformedAuthorization;

/// The bearer token of a request: `Ok(None)` without an `Authorization` header.
pub fn presented_bearer(headers: &HeaderMap) -> Result<Option<String>, MalformedAuthorization> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| MalformedAuthorization)?;
    match value.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(Some(token.trim().to_owned()))
        }
        _ => Err(MalformedAuthorization),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers_with(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_str(authorization).expect("valid header"));
        headers
    }

    #[test]
    fn accepts_every_token_of_a_comma_separated_list_and_nothing_else() {
        let tokens = TokenSet::from_list(" first , second,,");
        assert!(tokens.accepts("first"));
        assert!(tokens.accepts("second"));
        assert!(!tokens.accepts(""));
        assert!(!tokens.accepts("first,second"));
        assert!(!tokens.accepts("firs"));
    }

    #[test]
    fn an_empty_list_is_empty_and_accepts_nothing() {
        let tokens = TokenSet::from_list(" , ");
        assert!(tokens.is_empty());
        assert!(!tokens.accepts(""));
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        let shown = format!("{:?}", TokenSet::from_list("s3cret-token"));
        assert_eq!(shown, "TokenSet(1 tokens)");
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_other_schemes_are_refused() {
        assert_eq!(presented_bearer(&headers_with("bearer abc")), Ok(Some("abc".to_owned())));
        assert_eq!(presented_bearer(&headers_with("Bearer ")), Err(MalformedAuthorization));
        assert_eq!(presented_bearer(&headers_with("Token abc")), Err(MalformedAuthorization));
    }

    #[test]
    fn new_secrets_are_prefixed_43_characters_of_base64url_and_differ() {
        let first = new_secret().expect("random");
        let second = new_secret().expect("random");
        assert!(first.starts_with(TOKEN_PREFIX) && first.len() == TOKEN_PREFIX.len() + 43, "{first}");
        assert_ne!(first, second);
        assert!(TokenSet::from_list(&first).contains_digest(&digest(&first)));
    }

    #[test]
    fn the_presented_bearer_is_read_from_the_header() {
        assert_eq!(presented_bearer(&headers_with("Bearer  abc ")), Ok(Some("abc".to_owned())));
        assert_eq!(presented_bearer(&HeaderMap::new()), Ok(None));
        assert_eq!(presented_bearer(&headers_with("Basic abc")), Err(MalformedAuthorization));
    }

    #[test]
    fn detects_a_token_shared_between_two_sets() {
        let read = TokenSet::from_list("a,b");
        assert!(read.shares_a_token_with(&TokenSet::from_list("b")));
        assert!(!read.shares_a_token_with(&TokenSet::from_list("c")));
    }
}
