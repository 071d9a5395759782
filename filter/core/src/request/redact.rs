//! Masking secrets in query strings (the request's, and the one in a `Referer` URL) before
//! an event is built. Keys are kept (so the trail shows that a token was passed) and values
//! of sensitive parameters become `***`. Names are compared percent-decoded and
//! case-insensitively, so `Access%5FToken=` is masked like `access_token=`, and a nested
//! name matches by any of its parts, so `user[password]=` is masked like `password=`.
//! Both `&` and `;` separate parameters, as some servers (Rack before 3) split on either.

/// What a masked value is replaced with.
pub const MASK: &str = "***";

/// `query` without the leading `?`; `sensitive` are lowercase parameter names.
pub fn redact_query(query: &str, sensitive: &[String]) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut redacted = String::with_capacity(query.len());
    // split_inclusive keeps each separator with the pair before it, so it is put back as sent.
    for piece in query.split_inclusive(['&', ';']) {
        let (pair, separator) = match piece.char_indices().last() {
            Some((at, '&' | ';')) => piece.split_at(at),
            _ => (piece, ""),
        };
        match pair.split_once('=') {
            Some((key, _value)) if is_sensitive(key, sensitive) => {
                redacted.push_str(key);
                redacted.push('=');
                redacted.push_str(MASK);
            }
            _ => redacted.push_str(pair),
        }
        redacted.push_str(separator);
    }
    redacted
}

/// A URL (a `Referer`) with the sensitive values of its query string masked; the fragment
/// is dropped (browsers never send one, and it would be a place for a token to hide).
pub fn redact_url(url: &str, sensitive: &[String]) -> String {
    let without_fragment = url.split_once('#').map_or(url, |(before, _fragment)| before);
    match without_fragment.split_once('?') {
        Some((base, query)) => format!("{base}?{}", redact_query(query, sensitive)),
        None => without_fragment.to_string(),
    }
}

fn is_sensitive(raw_key: &str, sensitive: &[String]) -> bool {
    let key = percent_decode(raw_key).to_ascii_lowercase();
    sensitive.contains(&key)
        || key.split(['[', ']']).filter(|part| !part.is_empty()).any(|part| sensitive.iter().any(|name| name == part))
}

/// Decodes `%XX` and `+` (form encoding); invalid escapes are kept as they are.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while let Some(&byte) = bytes.get(index) {
        let escaped = match (byte, bytes.get(index + 1), bytes.get(index + 2)) {
            (b'%', Some(&high), Some(&low)) => hex_value(high).zip(hex_value(low)).map(|(h, l)| h * 16 + l),
            _ => None,
        };
        match (escaped, byte) {
            (Some(value), _) => {
                decoded.push(value);
                index += 3;
            }
            (None, b'+') => {
                decoded.push(b' ');
                index += 1;
            }
            (None, other) => {
                decoded.push(other);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit).to_digit(16).and_then(|value| u8::try_from(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> Vec<String> {
        crate::config::RedactionConfig::default().sensitive_query_params
    }

    #[test]
    fn masks_values_of_sensitive_parameters_and_keeps_their_keys() {
        assert_eq!(redact_query("page=2&token=abc&q=x", &defaults()), "page=2&token=***&q=x");
        assert_eq!(redact_query("access_token=a&client_secret=b", &defaults()), "access_token=***&client_secret=***");
    }

    #[test]
    fn compares_names_decoded_and_case_insensitively() {
        assert_eq!(redact_query("Access%5FToken=abc&PASSWORD=x", &defaults()), "Access%5FToken=***&PASSWORD=***");
    }

    #[test]
    fn leaves_other_parameters_and_shapes_untouched() {
        assert_eq!(redact_query("", &defaults()), "");
        assert_eq!(redact_query("token", &defaults()), "token", "a flag without a value has nothing to mask");
        assert_eq!(redact_query("a=1&&b=%zz", &defaults()), "a=1&&b=%zz");
        assert_eq!(redact_query("tokens=1&keyword=2", &defaults()), "tokens=1&keyword=2", "only exact names");
    }

    #[test]
    fn semicolons_separate_parameters_too_and_separators_are_kept() {
        assert_eq!(redact_query("a=1;token=abc&b=2", &defaults()), "a=1;token=***&b=2");
        assert_eq!(redact_query("token=abc;", &defaults()), "token=***;");
        assert_eq!(redact_query("&token=abc&", &defaults()), "&token=***&");
    }

    #[test]
    fn nested_names_match_by_any_part() {
        assert_eq!(redact_query("user[password]=pw&user[name]=ann", &defaults()), "user[password]=***&user[name]=ann");
        assert_eq!(redact_query("api_key[]=a&api_key[]=b", &defaults()), "api_key[]=***&api_key[]=***");
        assert_eq!(redact_query("user%5Bpassword%5D=pw", &defaults()), "user%5Bpassword%5D=***", "encoded brackets");
    }

    #[test]
    fn fully_percent_encoded_names_are_masked() {
        assert_eq!(redact_query("%74%6F%6B%65%6E=abc", &defaults()), "%74%6F%6B%65%6E=***", "%74%6F%6B%65%6E is token");
        assert_eq!(redact_query("api%5fkey=abc&pass+word=x", &defaults()), "api%5fkey=***&pass+word=x");
    }

    #[test]
    fn a_referer_keeps_its_url_with_secrets_masked() {
        assert_eq!(
            redact_url("https://ui.example/cb?code=abc&state=s#access_token=xyz", &defaults()),
            "https://ui.example/cb?code=***&state=s"
        );
        assert_eq!(redact_url("https://ui.example/page", &defaults()), "https://ui.example/page");
        assert_eq!(redact_url("https://ui.example/?", &defaults()), "https://ui.example/?");
    }

    #[test]
    fn masks_every_occurrence_and_values_containing_equals_signs() {
        assert_eq!(redact_query("sig=a==&sig=b", &defaults()), "sig=***&sig=***");
    }

    #[test]
    fn percent_decoding_handles_plus_multibyte_and_bad_escapes() {
        assert_eq!(percent_decode("a+b%20c"), "a b c");
        assert_eq!(percent_decode("caf%C3%A9"), "café");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%G1"), "%G1");
    }
}
