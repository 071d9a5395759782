//! Percent-decoding of one path parameter. `%XX` escapes are decoded; `+` stays a `+`
//! (it is a literal in a path, and common in version numbers like `1.0.0+build.7`). A
//! segment with an invalid escape or that does not decode to UTF-8 is kept raw: the event
//! still records what was sent, and nothing on the request path can panic.

use std::borrow::Cow;

/// `raw` with its `%XX` escapes decoded, or `raw` itself when it has none or cannot decode.
pub(crate) fn decode_path_segment(raw: &str) -> Cow<'_, str> {
    if !raw.contains('%') {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut position = 0;
    while let Some(&byte) = bytes.get(position) {
        if byte == b'%' {
            let high = bytes.get(position + 1).copied().and_then(hex_value);
            let low = bytes.get(position + 2).copied().and_then(hex_value);
            let (Some(high), Some(low)) = (high, low) else {
                return Cow::Borrowed(raw);
            };
            decoded.push(high << 4 | low);
            position += 3;
        } else {
            decoded.push(byte);
            position += 1;
        }
    }
    match String::from_utf8(decoded) {
        Ok(text) => Cow::Owned(text),
        Err(_) => Cow::Borrowed(raw),
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}
