//! Masking secrets in the query string before an event is built. Keys are kept (so the
//! trail shows that a token was passed) and values of sensitive parameters become `***`.
//! Names are compared percent-decoded and case-insensitively, so `Access%5FToken=` is
//! masked like `access_token=`.

/// What a masked value is replaced with.
pub const MASK: &str = "***";

/// `query` without the leading `?`; `sensitive` are lowercase parameter names.
pub fn redact_query(query: &str, sensitive: &[String]) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut redacted = String::with_capacity(query.len());
    for (index, pair) in query.split('&').enumerate() {
        if index > 0 {
            redacted.push('&');
        }
        match pair.split_once('=') {
            Some((key, _value)) if is_sensitive(key, sensitive) => {
                redacted.push_str(key);
                redacted.push('=');
                redacted.push_str(MASK);
            }
            _ => redacted.push_str(pair),
        }
    }
    redacted
}

fn is_sensitive(raw_key: &str, sensitive: &[String]) -> bool {
    let key = percent_decode(raw_key).to_ascii_lowercase();
    sensitive.contains(&key)
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
