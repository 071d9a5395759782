//! Who made the request, and what the client merely claimed. Three kinds of claim:
//! - claims that Envoy's `jwt_authn` filter verified: trusted;
//! - identity headers (`identity.emailHeaders`, `identity.userIdHeaders`): trusted only when
//!   the request's immediate peer is a configured trusted proxy ([`crate::request::trusted_proxies`]);
//!   from any other peer they are recorded as [`UntrustedClaim`]s and are never the identity;
//! - the basic-auth user name: what the client presented, recorded as `user_name` whenever
//!   present, whatever else the request carries.
//!
//! `user_email`, `user_id` and `db_user_id` come from the first trusted source (in
//! `identity.sources` order) that gives any of them; sources are not mixed for them.
//! Only names and ids leave this module: never a password, a token or the header itself.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use audit_event::trust::UntrustedClaim;

use crate::config::{IdentityConfig, IdentitySource, JwtClaimsConfig};
use crate::request::host::{RequestHeaders, RequestView};
use crate::request::trusted_proxies::peer_is_trusted;

/// At most this many untrusted claims are recorded per request (each is also bounded in
/// size), so a request with a thousand forged headers costs the trail a few lines.
pub const MAX_UNTRUSTED_CLAIMS: usize = 8;

/// The identity fields of an event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub user_email: Option<String>,
    pub user_id: Option<String>,
    /// `user_id` when it is an integer (PactFlow's `db_user_id` is one).
    pub db_user_id: Option<i64>,
    pub user_name: Option<String>,
    /// The sources that gave the identity, comma-separated: `jwt`, or the identity headers
    /// that gave a value as `header:<name>`, then `basic-auth` when it gave `user_name`.
    pub identity_source: Option<String>,
    /// Identity headers from a peer not trusted to set them, in the order configured.
    pub untrusted_claims: Vec<UntrustedClaim>,
}

impl Identity {
    fn is_empty(&self) -> bool {
        self.user_email.is_none() && self.user_id.is_none() && self.user_name.is_none()
    }
}

/// Reads the identity of a request: `headers` are the request's as they arrived, `view`
/// gives the dynamic metadata the JWT claims are in, `peer` is `source.address`.
pub fn identify(
    view: &dyn RequestView,
    headers: &RequestHeaders,
    config: &IdentityConfig,
    peer: Option<&str>,
) -> Identity {
    let headers_trusted = peer_is_trusted(peer, &config.trusted_proxies);
    let mut identity = config
        .sources
        .iter()
        .filter_map(|source| match source {
            IdentitySource::Jwt => Some(from_jwt_claims(view, &config.jwt)),
            IdentitySource::Headers if headers_trusted => Some(from_headers(headers, config)),
            IdentitySource::Headers | IdentitySource::BasicAuth => None,
        })
        .find(|identity| !identity.is_empty())
        .unwrap_or_default();
    identity.db_user_id = identity.user_id.as_deref().and_then(|id| id.parse().ok());
    if config.sources.contains(&IdentitySource::BasicAuth) {
        if let Some(user) = basic_auth_user(headers) {
            identity.user_name = Some(user);
            let source = identity.identity_source.get_or_insert_with(String::new);
            if !source.is_empty() {
                source.push(',');
            }
            source.push_str("basic-auth");
        }
    }
    if !headers_trusted {
        identity.untrusted_claims = identity_header_claims(headers, config);
    }
    identity
}

/// Every header name that can carry an identity claim, email headers first.
pub fn identity_header_names(config: &IdentityConfig) -> impl Iterator<Item = &str> {
    config.email_headers.iter().chain(&config.user_id_headers).map(String::as_str)
}

/// The non-blank values of the identity headers, as claims, at most
/// [`MAX_UNTRUSTED_CLAIMS`]. A header listed twice in the configuration counts once.
fn identity_header_claims(headers: &RequestHeaders, config: &IdentityConfig) -> Vec<UntrustedClaim> {
    let mut claims: Vec<UntrustedClaim> = Vec::new();
    for (index, name) in identity_header_names(config).enumerate() {
        if identity_header_names(config).take(index).any(|earlier| earlier == name) {
            continue;
        }
        let values = headers.get_all(name).map(str::trim).filter(|value| !value.is_empty());
        for value in values {
            if claims.len() == MAX_UNTRUSTED_CLAIMS {
                return claims;
            }
            claims.push(UntrustedClaim { header: name.to_string(), value: value.to_string() });
        }
    }
    claims
}

/// The claims `jwt_authn` verified, as the host gives them ([`RequestView::verified_jwt_claims`]:
/// `metadata.filter_metadata[<namespace>][<payload key>]`, its `payload_in_metadata`, or the
/// headers its `claim_to_headers` wrote). They exist only for a token that passed
/// verification, so a forged or expired token gives nothing here. A claim that is a string
/// or an integral number is used.
fn from_jwt_claims(view: &dyn RequestView, jwt: &JwtClaimsConfig) -> Identity {
    let Some(claims) = view.verified_jwt_claims(jwt) else { return Identity::default() };
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
    use crate::request::host::FakeRequest;
    use crate::request::metadata::encode::{metadata, Claim};
    use crate::request::trusted_proxies::Cidr;

    const NAMESPACE: &str = "envoy.filters.http.jwt_authn";
    /// A peer inside [`proxy_config`]'s trusted network, and one outside it.
    const PROXY_PEER: Option<&str> = Some("10.0.0.5:41000");
    const CLIENT_PEER: Option<&str> = Some("203.0.113.66:52000");

    /// A request with these headers, and these verified (string) claims in the metadata.
    fn request(pairs: &[(&str, &str)], claims: &[(&str, &str)]) -> FakeRequest {
        let with_headers = pairs.iter().fold(FakeRequest::default(), |request, (k, v)| request.header(k, v));
        if claims.is_empty() {
            return with_headers;
        }
        let claims: Vec<(&str, Claim<'_>)> = claims.iter().map(|(name, value)| (*name, Claim::Text(value))).collect();
        with_headers.property("metadata", &metadata(NAMESPACE, "jwt_payload", &claims))
    }

    /// The defaults, with 10.0.0.0/24 as the trusted proxies.
    fn proxy_config() -> IdentityConfig {
        let proxies = vec![Cidr::try_from("10.0.0.0/24".to_string()).expect("a CIDR")];
        IdentityConfig { trusted_proxies: proxies, ..IdentityConfig::default() }
    }

    fn identify_with(request: &FakeRequest, config: &IdentityConfig, peer: Option<&str>) -> Identity {
        identify(request, &request.request_headers(), config, peer)
    }

    /// Through the trusted proxy: identity headers count.
    fn via_proxy(request: &FakeRequest) -> Identity {
        identify_with(request, &proxy_config(), PROXY_PEER)
    }

    /// Straight from a client, default configuration (no trusted proxies).
    fn from_client(request: &FakeRequest) -> Identity {
        identify_with(request, &IdentityConfig::default(), CLIENT_PEER)
    }

    fn basic(credentials: &str) -> String {
        format!("Basic {}", STANDARD.encode(credentials))
    }

    fn claim(header: &str, value: &str) -> UntrustedClaim {
        UntrustedClaim { header: header.into(), value: value.into() }
    }

    #[test]
    fn the_mallory_request_is_mallory_with_the_attempt_on_alice_recorded() {
        let mallory = request(
            &[("authorization", &basic("mallory:pw")), ("x-forwarded-email", "alice@corp.example"), ("x-user-id", "1")],
            &[],
        );
        let identity = from_client(&mallory);
        assert_eq!(
            identity,
            Identity {
                user_name: Some("mallory".into()),
                identity_source: Some("basic-auth".into()),
                untrusted_claims: vec![claim("x-forwarded-email", "alice@corp.example"), claim("x-user-id", "1")],
                ..Identity::default()
            }
        );
    }

    #[test]
    fn identity_headers_count_only_from_a_peer_inside_the_trusted_proxies() {
        let fake = request(&[("x-forwarded-email", "ann@example.com"), ("x-user-id", "7")], &[]);
        let trusted = via_proxy(&fake);
        assert_eq!(trusted.user_email.as_deref(), Some("ann@example.com"), "from 10.0.0.5, inside 10.0.0.0/24");
        assert_eq!(trusted.db_user_id, Some(7));
        assert_eq!(trusted.identity_source.as_deref(), Some("header:x-forwarded-email,header:x-user-id"));
        assert_eq!(trusted.untrusted_claims, [], "nothing untrusted");

        for peer in [Some("10.0.1.5:41000"), CLIENT_PEER, None, Some("/run/envoy.sock")] {
            let outside = identify_with(&fake, &proxy_config(), peer);
            assert_eq!((&outside.user_email, &outside.user_id, outside.db_user_id), (&None, &None, None), "{peer:?}");
            assert_eq!(outside.identity_source, None, "{peer:?}");
            assert_eq!(
                outside.untrusted_claims,
                [claim("x-forwarded-email", "ann@example.com"), claim("x-user-id", "7")],
                "{peer:?}"
            );
        }
    }

    #[test]
    fn with_no_trusted_proxies_configured_no_peer_is_trusted() {
        let fake = request(&[("x-auth-request-email", "ann@example.com")], &[]);
        let identity = identify_with(&fake, &IdentityConfig::default(), PROXY_PEER);
        assert_eq!(identity.user_email, None);
        assert_eq!(identity.untrusted_claims, [claim("x-auth-request-email", "ann@example.com")]);
    }

    #[test]
    fn the_first_non_empty_email_header_wins() {
        let identity =
            via_proxy(&request(&[("x-forwarded-email", ""), ("x-auth-request-email", "ann@example.com")], &[]));
        assert_eq!(identity.user_email.as_deref(), Some("ann@example.com"), "user_email");
        assert_eq!(identity.identity_source.as_deref(), Some("header:x-auth-request-email"), "identity_source");
    }

    #[test]
    fn a_numeric_user_id_is_also_the_db_user_id() {
        let numeric = via_proxy(&request(&[("x-user-id", "42")], &[]));
        assert_eq!((numeric.user_id.as_deref(), numeric.db_user_id), (Some("42"), Some(42)));
        let named = via_proxy(&request(&[("x-auth-request-user", "ann")], &[]));
        assert_eq!((named.user_id.as_deref(), named.db_user_id), (Some("ann"), None), "a non-numeric id");
    }

    #[test]
    fn basic_auth_gives_the_user_name_and_never_the_password() {
        let identity = from_client(&request(&[("authorization", &basic("ann:s3cret:with:colons"))], &[]));
        assert_eq!(identity.user_name.as_deref(), Some("ann"), "user_name");
        assert_eq!(identity.identity_source.as_deref(), Some("basic-auth"));
        assert!(!format!("{identity:?}").contains("s3cret"), "the password leaked: {identity:?}");
    }

    #[test]
    fn basic_auth_is_kept_beside_a_trusted_identity_and_never_hidden() {
        let fake = request(
            &[("authorization", &basic("svc-user:pw")), ("x-forwarded-email", "ann@example.com")],
            &[("sub", "jwt-user"), ("preferred_username", "jwt-name")],
        );
        let jwt = via_proxy(&fake);
        assert_eq!(jwt.user_id.as_deref(), Some("jwt-user"), "the verified token is the identity");
        assert_eq!(jwt.user_name.as_deref(), Some("svc-user"), "the presented basic-auth name is kept");
        assert_eq!(jwt.identity_source.as_deref(), Some("jwt,basic-auth"));
        assert_eq!(jwt.user_email, None, "headers are not mixed into a jwt identity");

        let headers_only =
            request(&[("authorization", &basic("svc-user:pw")), ("x-forwarded-email", "ann@x.org")], &[]);
        let proxied = via_proxy(&headers_only);
        assert_eq!(
            (proxied.user_email.as_deref(), proxied.user_name.as_deref()),
            (Some("ann@x.org"), Some("svc-user")),
            "the proxy's user and the presented name, both recorded"
        );
        assert_eq!(proxied.identity_source.as_deref(), Some("header:x-forwarded-email,basic-auth"));
    }

    #[test]
    fn basic_auth_is_ignored_when_not_a_source_or_malformed() {
        let no_basic =
            IdentityConfig { sources: vec![IdentitySource::Jwt, IdentitySource::Headers], ..IdentityConfig::default() };
        assert_eq!(
            identify_with(&request(&[("authorization", &basic("ann:pw"))], &[]), &no_basic, CLIENT_PEER),
            Identity::default()
        );
        for value in ["Bearer abc.def", "Basic !!!", &basic("no-colon-secret"), &basic(":pw"), "Basic"] {
            let identity = from_client(&request(&[("authorization", value)], &[]));
            assert_eq!(identity, Identity::default(), "for Authorization: {value}");
        }
    }

    #[test]
    fn verified_jwt_claims_give_the_identity_from_any_peer() {
        let fake = request(
            &[("authorization", "Bearer eyJ.the.token")],
            &[("email", "ann@example.com"), ("sub", "1234"), ("preferred_username", "ann")],
        );
        let identity = from_client(&fake);
        assert_eq!(
            identity,
            Identity {
                user_email: Some("ann@example.com".into()),
                user_id: Some("1234".into()),
                db_user_id: Some(1234),
                user_name: Some("ann".into()),
                identity_source: Some("jwt".into()),
                untrusted_claims: Vec::new(),
            }
        );
        assert!(!format!("{identity:?}").contains("eyJ"), "the token leaked: {identity:?}");
    }

    #[test]
    fn a_verified_token_with_a_forged_header_keeps_the_token_and_records_the_header() {
        let fake = request(&[("x-forwarded-email", "alice@corp.example")], &[("email", "bob@example.com")]);
        let identity = from_client(&fake);
        assert_eq!(identity.user_email.as_deref(), Some("bob@example.com"));
        assert_eq!(identity.untrusted_claims, [claim("x-forwarded-email", "alice@corp.example")]);
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
        let identity = identify_with(&fake, &config, CLIENT_PEER);
        assert_eq!(identity.user_email.as_deref(), Some("bob@example.com"), "user_email from `mail`");
        assert_eq!((identity.user_id.as_deref(), identity.db_user_id), (Some("auth0|bob"), None), "user_id from `sub`");
        assert_eq!(identity.user_name, None, "userNameClaim: null reads nothing");
    }

    #[test]
    fn trusted_sources_are_tried_in_order_and_the_first_that_identifies_wins() {
        let fake = request(&[("x-forwarded-email", "header@example.com")], &[("sub", "jwt-user")]);
        let jwt = via_proxy(&fake);
        assert_eq!((jwt.user_id.as_deref(), jwt.user_email.as_deref()), (Some("jwt-user"), None), "jwt first");
        assert_eq!(jwt.identity_source.as_deref(), Some("jwt"));

        let headers_first = IdentityConfig {
            sources: vec![IdentitySource::Headers, IdentitySource::Jwt, IdentitySource::BasicAuth],
            ..proxy_config()
        };
        let headers = identify_with(&fake, &headers_first, PROXY_PEER);
        assert_eq!(headers.identity_source.as_deref(), Some("header:x-forwarded-email"));
        let untrusted = identify_with(&fake, &headers_first, CLIENT_PEER);
        assert_eq!(untrusted.identity_source.as_deref(), Some("jwt"), "untrusted headers are skipped, not first");

        let without_claims = request(&[("x-forwarded-email", "header@example.com")], &[]);
        assert_eq!(
            via_proxy(&without_claims).identity_source.as_deref(),
            Some("header:x-forwarded-email"),
            "no verified token: the next source"
        );
    }

    #[test]
    fn every_value_of_an_identity_header_is_a_claim_up_to_the_limit() {
        let mut fake = request(&[("x-user-id", "1"), ("x-user-id", " "), ("x-user-id", "2")], &[]);
        let identity = from_client(&fake);
        assert_eq!(identity.untrusted_claims, [claim("x-user-id", "1"), claim("x-user-id", "2")], "blank skipped");
        for n in 0..50 {
            fake = fake.header("x-forwarded-email", &format!("user{n}@example.com"));
        }
        assert_eq!(from_client(&fake).untrusted_claims.len(), MAX_UNTRUSTED_CLAIMS);
        let twice = IdentityConfig { user_id_headers: vec!["x-user-id".into(), "x-user-id".into()], ..proxy_config() };
        let once = identify_with(&request(&[("x-user-id", "1")], &[]), &twice, CLIENT_PEER);
        assert_eq!(once.untrusted_claims, [claim("x-user-id", "1")], "a header configured twice counts once");
    }

    #[test]
    fn a_numeric_claim_is_an_integer_id_and_other_types_are_ignored() {
        let fake = FakeRequest::default().property(
            "metadata",
            &metadata(NAMESPACE, "jwt_payload", &[("sub", Claim::Number(4711.0)), ("email", Claim::Bool(true))]),
        );
        let identity = from_client(&fake);
        assert_eq!((identity.user_id.as_deref(), identity.db_user_id), (Some("4711"), Some(4711)));
        assert_eq!(identity.user_email, None, "a boolean is not an email");
    }

    #[test]
    fn blank_claims_are_no_identity() {
        assert_eq!(from_client(&request(&[], &[("sub", " "), ("email", "")])), Identity::default());
    }

    #[test]
    fn no_source_means_no_identity() {
        assert_eq!(from_client(&request(&[("cookie", "session=1")], &[])), Identity::default());
    }
}
