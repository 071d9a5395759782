//! Who made the request, from the configured sources: identity headers set by an
//! authenticating proxy in front, and the user name of `Authorization: Basic`.
//! Only names and ids leave this module: never a password, a token or the header itself.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::config::IdentityConfig;
use crate::host::RequestHeaders;

/// The identity fields of an event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    pub user_email: Option<String>,
    pub user_id: Option<String>,
    /// `user_id` when it is an integer (PactFlow's `db_user_id` is one).
    pub db_user_id: Option<i64>,
    pub user_name: Option<String>,
    /// The sources that gave a value, comma-separated in the order above:
    /// `header:<name>` or `basic-auth`.
    pub identity_source: Option<String>,
}

/// Reads the identity of a request.
pub fn identify(headers: &RequestHeaders, config: &IdentityConfig) -> Identity {
    let mut sources = Vec::new();
    let first_header = |names: &[String]| -> Option<(String, String)> {
        names.iter().find_map(|name| headers.get_non_empty(name).map(|value| (name.clone(), value.to_string())))
    };

    let user_email = first_header(&config.email_headers).map(|(name, email)| {
        sources.push(format!("header:{name}"));
        email
    });
    let user_id = first_header(&config.user_id_headers).map(|(name, id)| {
        sources.push(format!("header:{name}"));
        id
    });
    let user_name = if config.basic_auth { basic_auth_user(headers) } else { None };
    if user_name.is_some() {
        sources.push("basic-auth".to_string());
    }

    Identity {
        db_user_id: user_id.as_deref().and_then(|id| id.parse().ok()),
        user_email,
        user_id,
        user_name,
        identity_source: (!sources.is_empty()).then(|| sources.join(",")),
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

    fn headers(pairs: &[(&str, &str)]) -> RequestHeaders {
        RequestHeaders::new(pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect())
    }

    fn basic(credentials: &str) -> String {
        format!("Basic {}", STANDARD.encode(credentials))
    }

    #[test]
    fn the_first_non_empty_email_header_wins() {
        let identity = identify(
            &headers(&[("x-forwarded-email", ""), ("x-auth-request-email", "ann@example.com")]),
            &IdentityConfig::default(),
        );
        assert_eq!(identity.user_email.as_deref(), Some("ann@example.com"), "user_email");
        assert_eq!(identity.identity_source.as_deref(), Some("header:x-auth-request-email"), "identity_source");
    }

    #[test]
    fn a_numeric_user_id_is_also_the_db_user_id() {
        let numeric = identify(&headers(&[("x-user-id", "42")]), &IdentityConfig::default());
        assert_eq!((numeric.user_id.as_deref(), numeric.db_user_id), (Some("42"), Some(42)));
        let named = identify(&headers(&[("x-auth-request-user", "ann")]), &IdentityConfig::default());
        assert_eq!((named.user_id.as_deref(), named.db_user_id), (Some("ann"), None), "a non-numeric id");
    }

    #[test]
    fn basic_auth_gives_the_user_name_and_never_the_password() {
        let identity = identify(&headers(&[("authorization", &basic("ann:s3cret:with:colons"))]), &IdentityConfig::default());
        assert_eq!(identity.user_name.as_deref(), Some("ann"), "user_name");
        assert_eq!(identity.identity_source.as_deref(), Some("basic-auth"));
        assert!(!format!("{identity:?}").contains("s3cret"), "the password leaked: {identity:?}");
    }

    #[test]
    fn basic_auth_is_ignored_when_disabled_or_malformed() {
        let off = IdentityConfig { basic_auth: false, ..IdentityConfig::default() };
        assert_eq!(identify(&headers(&[("authorization", &basic("ann:pw"))]), &off), Identity::default());
        for value in ["Bearer abc.def", "Basic !!!", &basic("no-colon-secret"), &basic(":pw"), "Basic"] {
            let identity = identify(&headers(&[("authorization", value)]), &IdentityConfig::default());
            assert_eq!(identity, Identity::default(), "for Authorization: {value}");
        }
    }

    #[test]
    fn every_source_that_gave_a_value_is_listed() {
        let identity = identify(
            &headers(&[("x-forwarded-email", "ann@example.com"), ("x-user-id", "7"), ("authorization", &basic("ann:pw"))]),
            &IdentityConfig::default(),
        );
        assert_eq!(identity.identity_source.as_deref(), Some("header:x-forwarded-email,header:x-user-id,basic-auth"));
    }

    #[test]
    fn no_source_means_no_identity() {
        assert_eq!(identify(&headers(&[("cookie", "session=1")]), &IdentityConfig::default()), Identity::default());
    }
}
