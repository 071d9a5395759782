//! The canonical form of a JSON value, the bytes the chain hashes: RFC 8785 (JSON
//! Canonicalization Scheme). Object keys sorted by their UTF-16 code units, no whitespace,
//! strings with only the escapes JSON requires, numbers as ECMAScript prints them. So any
//! JCS library recomputes the same bytes from the parsed event, whatever its key order.
//!
//! One deliberate difference: an integer outside ±2^53 (only `db_user_id` could be one)
//! is written with all its digits, where JCS would round it to a double; two different ids
//! must not hash alike.

use serde_json::{Number, Value};

/// The canonical bytes of `value` (UTF-8).
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => write_number(out, number),
        Value::String(text) => write_string(out, text),
        Value::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|(a, _), (b, _)| utf16_order(a, b));
            out.push(b'{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_string(out, key);
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// RFC 8785's key order: by UTF-16 code units. For ASCII (every key of an audit event)
/// that is plain byte order, without transcoding each key at each comparison.
pub(super) fn utf16_order(a: &str, b: &str) -> std::cmp::Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.cmp(b)
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

pub(super) fn write_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    // Runs of bytes that need no escape are copied whole: every byte of a multi-byte UTF-8
    // character is >= 0x80, so only ASCII `"`, `\` and controls ever need one.
    let mut rest = text.as_bytes();
    while let Some(at) = rest.iter().position(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\') {
        out.extend_from_slice(&rest[..at]);
        match rest[at] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x09 => out.extend_from_slice(b"\\t"),
            0x0a => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            0x0d => out.extend_from_slice(b"\\r"),
            control => out.extend_from_slice(format!("\\u{control:04x}").as_bytes()),
        }
        rest = &rest[at + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

fn write_number(out: &mut Vec<u8>, number: &Number) {
    if let Some(integer) = number.as_i64() {
        out.extend_from_slice(integer.to_string().as_bytes());
    } else if let Some(integer) = number.as_u64() {
        out.extend_from_slice(integer.to_string().as_bytes());
    } else if let Some(float) = number.as_f64() {
        write_float(out, float);
    }
}

/// A finite double as ECMAScript prints it.
pub(super) fn write_float(out: &mut Vec<u8>, value: f64) {
    out.extend_from_slice(ecmascript_number(value).as_bytes());
}

/// ECMAScript's `Number.prototype.toString()` for a finite double (JSON has no others):
/// the shortest digits that read back as the same double, placed as ECMA-262 says.
fn ecmascript_number(value: f64) -> String {
    if value == 0.0 {
        return "0".to_owned(); // also -0
    }
    let sign = if value < 0.0 { "-" } else { "" };
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. `1.11823e0`, `5e-7`.
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((scientific.as_str(), "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exponent: i64 = exponent.parse().unwrap_or(0);
    let k = i64::try_from(digits.len()).unwrap_or(i64::MAX);
    let n = exponent + 1; // the decimal point sits after the n-th digit
    let zeros = |count: i64| "0".repeat(usize::try_from(count).unwrap_or(0));
    let body = if k <= n && n <= 21 {
        format!("{digits}{}", zeros(n - k))
    } else if 0 < n && n <= 21 {
        let (whole, fraction) = digits.split_at(usize::try_from(n).unwrap_or(0));
        format!("{whole}.{fraction}")
    } else if -6 < n && n <= 0 {
        format!("0.{}{digits}", zeros(-n))
    } else {
        let exponent_sign = if n - 1 < 0 { '-' } else { '+' };
        let (first, rest) = digits.split_at(1);
        let fraction = if rest.is_empty() { String::new() } else { format!(".{rest}") };
        format!("{first}{fraction}e{exponent_sign}{}", (n - 1).abs())
    };
    format!("{sign}{body}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canonical(value: Value) -> String {
        String::from_utf8(canonical_json(&value)).expect("canonical JSON is UTF-8")
    }

    #[test]
    fn keys_are_sorted_at_every_level_without_whitespace() {
        let value = json!({"b": 1, "a": {"z": [3, {"y": null, "x": true}], "c": "d"}});
        assert_eq!(canonical(value), r#"{"a":{"c":"d","z":[3,{"x":true,"y":null}]},"b":1}"#);
    }

    #[test]
    fn keys_sort_by_utf16_code_units_as_rfc_8785_says() {
        // U+FB01 sorts after U+1F600 in UTF-16 (0xD83D < 0xFB01) but before it in UTF-8.
        let value = json!({"\u{fb01}": 1, "\u{1f600}": 2, "a": 3});
        assert_eq!(canonical(value), "{\"a\":3,\"\u{1f600}\":2,\"\u{fb01}\":1}");
    }

    #[test]
    fn strings_escape_only_what_json_requires() {
        let value = json!("quote\" back\\ nl\n tab\t bell\u{07} slash/ é \u{2028}");
        assert_eq!(canonical(value), "\"quote\\\" back\\\\ nl\\n tab\\t bell\\u0007 slash/ é \u{2028}\"");
    }

    #[test]
    fn numbers_print_as_ecmascript_does() {
        let cases = [
            (json!(0.0), "0"),
            (json!(-0.0), "0"),
            (json!(1.0), "1"),
            (json!(1.5), "1.5"),
            (json!(1.11823), "1.11823"),
            (json!(0.000001), "0.000001"),
            (json!(0.0000001), "1e-7"),
            (json!(123456789012345680000.0), "123456789012345680000"),
            (json!(1e21), "1e+21"),
            (json!(-2.5e-8), "-2.5e-8"),
            (json!(333333333.3333333), "333333333.3333333"),
            (json!(42), "42"),
            (json!(-7), "-7"),
            (json!(9_007_199_254_740_993_i64), "9007199254740993"),
        ];
        for (value, expected) in cases {
            assert_eq!(canonical(value.clone()), expected, "{value}");
        }
    }
}
