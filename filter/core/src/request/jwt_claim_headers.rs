//! Verified claims from request headers, for a host that cannot read `jwt_authn`'s payload
//! from the dynamic metadata (the native host: dynamic metadata is readable only at the top
//! level of a namespace). `jwt_authn`'s `claim_to_headers` writes each claim of a verified
//! token to a request header; `identity.jwt.claimHeaders` names those headers.
//!
//! The trust rule: a client can send the same headers, and when its token is missing (or
//! has no such claim) `jwt_authn` leaves them as they are. So the host removes every one of
//! [`claim_header_names`] from each request as it arrives, before `jwt_authn` runs (the audit
//! filter goes first in the chain); whatever is there at the end of the stream was then set
//! by `jwt_authn` for a token it verified.

use crate::config::JwtClaimsConfig;
use crate::request::header_map::RequestHeaders;
use crate::request::metadata::ClaimValue;

/// The headers to remove from every arriving request: only `jwt_authn` may set them.
pub fn claim_header_names(jwt: &JwtClaimsConfig) -> impl Iterator<Item = &str> {
    jwt.claim_headers.values().map(String::as_str)
}

/// The claims in `headers` (the request as `jwt_authn` left it, without anything the host
/// removed), by claim name; None when none of the claim headers is there (no verified token).
pub fn claims_from_headers(headers: &RequestHeaders, jwt: &JwtClaimsConfig) -> Option<Vec<(String, ClaimValue)>> {
    let claims: Vec<(String, ClaimValue)> = jwt
        .claim_headers
        .iter()
        .filter_map(|(claim, header)| Some((claim.clone(), ClaimValue::Text(headers.get(header)?.to_string()))))
        .collect();
    (!claims.is_empty()).then_some(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt() -> JwtClaimsConfig {
        let mut jwt = JwtClaimsConfig::default();
        jwt.claim_headers.insert("email".into(), "x-jwt-email".into());
        jwt.claim_headers.insert("sub".into(), "x-jwt-sub".into());
        jwt
    }

    #[test]
    fn each_claim_header_there_is_a_claim_by_its_claim_name() {
        let headers = RequestHeaders::new(vec![("x-jwt-sub".into(), "4711".into()), ("x-other".into(), "x".into())]);
        assert_eq!(claims_from_headers(&headers, &jwt()), Some(vec![("sub".into(), ClaimValue::Text("4711".into()))]));
    }

    #[test]
    fn no_claim_header_is_no_verified_token() {
        let headers = RequestHeaders::new(vec![("x-forwarded-email".into(), "a@b.c".into())]);
        assert_eq!(claims_from_headers(&headers, &jwt()), None);
        assert_eq!(claims_from_headers(&headers, &JwtClaimsConfig::default()), None);
    }

    #[test]
    fn the_headers_to_remove_are_every_claim_header() {
        assert_eq!(claim_header_names(&jwt()).collect::<Vec<_>>(), ["x-jwt-email", "x-jwt-sub"]);
    }
}
