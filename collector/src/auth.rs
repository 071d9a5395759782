//! Bearer tokens. A [`TokenSet`] keeps only the SHA-256 digest of each configured token, so
//! the secrets never sit in memory longer than configuration parsing, and compares a
//! presented token against every digest in constant time, so timing says nothing about
//! how much of a guess was right.

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
        let presented = digest(presented);
        let mut matched = Choice::from(0);
        for known in &self.digests {
            matched |= known.ct_eq(&presented);
        }
        bool::from(matched)
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

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The outcome of checking a request's `Authorization` header against a [`TokenSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// A bearer token from the set.
    Valid,
    /// No `Authorization: Bearer …` header.
    Missing,
    /// A bearer token that is not in the set (or a malformed header).
    Invalid,
}

/// Checks the request's `Authorization: Bearer <token>` against `tokens`.
pub fn check_bearer(headers: &HeaderMap, tokens: &TokenSet) -> Credential {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Credential::Missing;
    };
    let Ok(value) = value.to_str() else {
        return Credential::Invalid;
    };
    match value.trim().split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && tokens.accepts(token.trim()) => {
            Credential::Valid
        }
        _ => Credential::Invalid,
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
        let tokens = TokenSet::from_list("abc");
        assert_eq!(check_bearer(&headers_with("Bearer abc"), &tokens), Credential::Valid);
        assert_eq!(check_bearer(&headers_with("bearer abc"), &tokens), Credential::Valid);
        assert_eq!(check_bearer(&headers_with("Basic abc"), &tokens), Credential::Invalid);
        assert_eq!(check_bearer(&headers_with("Bearer abd"), &tokens), Credential::Invalid);
        assert_eq!(check_bearer(&HeaderMap::new(), &tokens), Credential::Missing);
    }

    #[test]
    fn detects_a_token_shared_between_two_sets() {
        let read = TokenSet::from_list("a,b");
        assert!(read.shares_a_token_with(&TokenSet::from_list("b")));
        assert!(!read.shares_a_token_with(&TokenSet::from_list("c")));
    }
}
