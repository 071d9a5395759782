//! Who made the request, from the configured sources, tried in order: claims that Envoy's
//! `jwt_authn` filter verified, identity headers set by an authenticating proxy in front,
//! and the user name of `Authorization: Basic`. The first source that gives any identity
//! field is the identity; the others are not mixed in.
//! Only names and ids leave this module: never a password, a token or the header itself.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::config::{IdentityConfig, IdentitySource, JwtClaimsConfig};
use crate::host::{RequestHeaders, RequestView};
use crate::metadata::verified_claims;

/// The identity fields of an event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub user_email: Option<String>,
    pub user_id: Option<String>,
    /// `user_id` when it is an integer (PactFlow's `db_user_id` is one).
    pub db_user_id: Option<i64>,
    pub user_name: Option<String>,
    /// The source that gave the identity: `jwt`, `basic-auth`, or the identity headers
    /// that gave a value as `header:<name>`, comma-separated.
    pub identity_source: Option<String>,
}

impl Identity {
    fn is_empty(&self) -> bool {
        self.user_email.is_none() && self.user_id.is_none() && self.user_name.is_none()
    }
}

/// Reads the identity of a request: `headers` are the request's, `view` gives the
/// dynamic metadata the JWT claims are in.
pub fn identify(view: &dyn RequestView, headers: &RequestHeaders, config: &IdentityConfig) -> Identity {
    config
        .sources
        .iter()
        .map(|source| match source {
            IdentitySource::Jwt => from_jwt_claims(view, &config.jwt),
            IdentitySource::Headers => from_headers(headers, config),
            IdentitySource::BasicAuth => from_basic_auth(headers),
        })
        .find(|identity| !identity.is_empty())
        .map(|mut identity| {
            identity.db_user_id = identity.user_id.as_deref().and_then(|id| id.parse().ok());
            identity
        })
        .unwrap_or_default()
}

/// The claims `jwt_authn` verified and stored under
/// `metadata.filter_metadata[<namespace>][<payload key>]` (its `payload_in_metadata`).
/// That metadata exists only for a token that passed verification, so a forged or
/// expired token gives nothing here. One property read (the whole dynamic metadata, see
/// [`crate::metadata`]); a claim that is a string or an integral number is used.
fn from_jwt_claims(view: &dyn RequestView, jwt: &JwtClaimsConfig) -> Identity {
    let Some(metadata) = view.property(&["metadata"]) else { return Identity::default() };
    let Some(claims) = verified_claims(&metadata, &jwt.metadata_namespace, &jwt.payload_key) else {
        return Identity::default();
    };
    let claim = |name: &Option<String>| {
        let name = name.as_deref()?;
        let (_, value) = claims.iter().find(|(claim, _)| claim == name)?;
        value.as_identity_text().filter(|text| !text.trim().is_empty())
    };
    let identity = Identity {
        user_email: claim(&jwt.email_claim),
        user_id: claim(&jwt.user_id_claim),
        user_name: claim(&jwt.user_name_claim),
        ..Identity::default()
    };
    if identity.is_empty() {
        return identity;
    }
    Identity { identity_source: Some("jwt".into()), ..identity }
}

fn from_headers(headers: &RequestHeaders, config: &IdentityConfig) -> Identity {
    // `header:<name>` of each header that gave a value, comma-separated, built in place
    // (this runs on every request).
    let mut sources = String::new();
    let mut first_header = |names: &[String]| -> Option<String> {
        let (name, value) = names.iter().find_map(|name| headers.get_non_empty(name).map(|value| (name, value)))?;
        if !sources.is_empty() {
            sources.push(',');
        }
        sources.push_str("header:");
        sources.push_str(name);
        Some(value.to_string())
    };
    let user_email = first_header(&config.email_headers);
    let user_id = first_header(&config.user_id_headers);
    Identity { user_email, user_id, identity_source: (!sources.is_empty()).then_some(sources), ..Identity::default() }
}

fn from_basic_auth(headers: &RequestHeaders) -> Identity {
    match basic_auth_user(headers) {
        Some(user) => {
            Identity { user_name: Some(user), identity_source: Some("basic-auth".into()), ..Identity::default() }
        }
        None => Identity::default(),
    }
}

/// The user name of `Authorization: Basic base64(user:password)`: the part before the
/// first `:`. Anything that is not well-formed basic auth gives nothing, so that a secret
/// without a `:` can never be mistaken for a name.
fn basic_auth_user(headers: &RequestHeaders) -> Option<String> {
    let value = headers.get("authorization")?.trim();
    let (scheme, credentials) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(credentials.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, _password) = text.split_once(':')?;
    (!user.is_empty()).then(|| user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::FakeRequest;
    use crate::metadata::encode::{metadata, Claim};

    const NAMESPACE: &str = "envoy.filters.http.jwt_authn";

    /// A request with these headers, and these verified (string) claims in the metadata.
    fn request(pairs: &[(&str, &str)], claims: &[(&str, &str)]) -> FakeRequest {
        let with_headers = pairs.iter().fold(FakeRequest::default(), |request, (k, v)| request.header(k, v));
        if claims.is_empty() {
            return with_headers;
        }
        let claims: Vec<(&str, Claim<'_>)> = claims.iter().map(|(name, value)| (*name, Claim::Text(value))).collect();
        with_headers.property("metadata", &metadata(NAMESPACE, "jwt_payload", &claims))
    }

    fn identify_with(request: &FakeRequest, config: &IdentityConfig) -> Identity {
        identify(request, &request.request_headers(), config)
    }

    fn identify_default(request: &FakeRequest) -> Identity {
        identify_with(request, &IdentityConfig::default())
    }

    fn basic(credentials: &str) -> String {
        format!("Basic {}", STANDARD.encode(credentials))
    }

    #[test]
    fn the_first_non_empty_email_header_wins() {
        let identity =
            identify_default(&request(&[("x-forwarded-email", ""), ("x-auth-request-email", "ann@example.com")], &[]));
        assert_eq!(identity.user_email.as_deref(), Some("ann@example.com"), "user_email");
        assert_eq!(identity.identity_source.as_deref(), Some("header:x-auth-request-email"), "identity_source");
    }

    #[test]
    fn a_numeric_user_id_is_also_the_db_user_id() {
        let numeric = identify_default(&request(&[("x-user-id", "42")], &[]));
        assert_eq!((numeric.user_id.as_deref(), numeric.db_user_id), (Some("42"), Some(42)));
        let named = identify_default(&request(&[("x-auth-request-user", "ann")], &[]));
        assert_eq!((named.user_id.as_deref(), named.db_user_id), (Some("ann"), None), "a non-numeric id");
    }

    #[test]
    fn both_identity_headers_are_one_source() {
        let identity = identify_default(&request(&[("x-forwarded-email", "ann@example.com"), ("x-user-id", "7")], &[]));
        assert_eq!(identity.identity_source.as_deref(), Some("header:x-forwarded-email,header:x-user-id"));
        assert_eq!(identity.db_user_id, Some(7));
    }

    #[test]
    fn basic_auth_gives_the_user_name_and_never_the_password() {
        let identity = identify_default(&request(&[("authorization", &basic("ann:s3cret:with:colons"))], &[]));
        assert_eq!(identity.user_name.as_deref(), Some("ann"), "user_name");
        assert_eq!(identity.identity_source.as_deref(), Some("basic-auth"));
        assert!(!format!("{identity:?}").contains("s3cret"), "the password leaked: {identity:?}");
    }

    #[test]
    fn basic_auth_is_ignored_when_not_a_source_or_malformed() {
        let no_basic =
            IdentityConfig { sources: vec![IdentitySource::Jwt, IdentitySource::Headers], ..IdentityConfig::default() };
        assert_eq!(
            identify_with(&request(&[("authorization", &basic("ann:pw"))], &[]), &no_basic),
            Identity::default()
        );
        for value in ["Bearer abc.def", "Basic !!!", &basic("no-colon-secret"), &basic(":pw"), "Basic"] {
            let identity = identify_default(&request(&[("authorization", value)], &[]));
            assert_eq!(identity, Identity::default(), "for Authorization: {value}");
        }
    }

    #[test]
    fn verified_jwt_claims_give_the_identity() {
        let identity = identify_default(&request(
            &[("authorization", "Bearer eyJ.the.token")],
            &[("email", "ann@example.com"), ("sub", "1234"), ("preferred_username", "ann")],
        ));
        assert_eq!(
            identity,
            Identity {
                user_email: Some("ann@example.com".into()),
                user_id: Some("1234".into()),
                db_user_id: Some(1234),
                user_name: Some("ann".into()),
                identity_source: Some("jwt".into()),
            }
        );
        assert!(!format!("{identity:?}").contains("eyJ"), "the token leaked: {identity:?}");
    }

    #[test]
    fn the_claims_read_follow_the_configuration() {
        let mut config = IdentityConfig::default();
        config.jwt.payload_key = "claims".into();
        config.jwt.email_claim = Some("mail".into());
        config.jwt.user_name_claim = None;
        let fake = FakeRequest::default().property(
            "metadata",
            &metadata(
                NAMESPACE,
                "claims",
                &[
                    ("mail", Claim::Text("bob@example.com")),
                    ("preferred_username", Claim::Text("bob")),
                    ("sub", Claim::Text("auth0|bob")),
                ],
            ),
        );
        let identity = identify_with(&fake, &config);
        assert_eq!(identity.user_email.as_deref(), Some("bob@example.com"), "user_email from `mail`");
        assert_eq!((identity.user_id.as_deref(), identity.db_user_id), (Some("auth0|bob"), None), "user_id from `sub`");
        assert_eq!(identity.user_name, None, "userNameClaim: null reads nothing");
    }

    #[test]
    fn sources_are_tried_in_order_and_the_first_that_identifies_wins() {
        let fake = request(
            &[("x-forwarded-email", "header@example.com"), ("authorization", &basic("basic-user:pw"))],
            &[("sub", "jwt-user")],
        );
        let jwt = identify_default(&fake);
        assert_eq!(
            (jwt.user_id.as_deref(), jwt.user_email.as_deref()),
            (Some("jwt-user"), None),
            "jwt first; nothing mixed in"
        );
        assert_eq!(jwt.identity_source.as_deref(), Some("jwt"));

        let basic_first = IdentityConfig {
            sources: vec![IdentitySource::BasicAuth, IdentitySource::Jwt, IdentitySource::Headers],
            ..IdentityConfig::default()
        };
        assert_eq!(identify_with(&fake, &basic_first).identity_source.as_deref(), Some("basic-auth"));

        let without_claims = request(&[("x-forwarded-email", "header@example.com")], &[]);
        assert_eq!(
            identify_default(&without_claims).identity_source.as_deref(),
            Some("header:x-forwarded-email"),
            "no verified token: the next source"
        );
    }

    #[test]
    fn a_numeric_claim_is_an_integer_id_and_other_types_are_ignored() {
        let fake = FakeRequest::default().property(
            "metadata",
            &metadata(NAMESPACE, "jwt_payload", &[("sub", Claim::Number(4711.0)), ("email", Claim::Bool(true))]),
        );
        let identity = identify_default(&fake);
        assert_eq!((identity.user_id.as_deref(), identity.db_user_id), (Some("4711"), Some(4711)));
        assert_eq!(identity.user_email, None, "a boolean is not an email");
    }

    #[test]
    fn blank_claims_are_no_identity() {
        assert_eq!(identify_default(&request(&[], &[("sub", " "), ("email", "")])), Identity::default());
    }

    #[test]
    fn no_source_means_no_identity() {
        assert_eq!(identify_default(&request(&[("cookie", "session=1")], &[])), Identity::default());
    }
}
