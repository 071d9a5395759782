//! Reading the claims `jwt_authn` verified out of Envoy's dynamic metadata.
//!
//! Measured in Envoy 1.40: `get_property(["metadata"])` returns the whole dynamic metadata
//! as a serialized `envoy.config.core.v3.Metadata` protobuf, the only form that keeps each
//! value's type. (A deeper path such as `[..., "<payload key>", "email"]` returns a string
//! claim's bytes, but a number as 8 bytes of a little-endian double and a struct or list
//! in proxy-wasm's pair encoding, none of them tagged, so a numeric `sub` could not be
//! told from an 8-byte string.) This module decodes just enough protobuf for that:
//! `Metadata.filter_metadata[namespace]` → `Struct.fields[payload key]` → a `Struct` of claims.

/// A claim's value, as far as an identity can use it.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimValue {
    Text(String),
    Number(f64),
    /// A bool, null, list or object: never an identity.
    Other,
}

impl ClaimValue {
    /// The claim as an identity field: a string as is, an integral number in decimal.
    pub fn as_identity_text(&self) -> Option<String> {
        match self {
            ClaimValue::Text(text) => Some(text.clone()),
            // Integers up to 2^53 survive a JSON number → double round trip exactly.
            ClaimValue::Number(number) if number.fract() == 0.0 && number.abs() <= 9_007_199_254_740_992.0 => {
                Some(format!("{number:.0}"))
            }
            _ => None,
        }
    }
}

/// The claims stored under `filter_metadata[namespace][payload_key]`, in `metadata` (the
/// serialized `Metadata`). None when there is no such struct: no verified token.
pub fn verified_claims(metadata: &[u8], namespace: &str, payload_key: &str) -> Option<Vec<(String, ClaimValue)>> {
    // Metadata { map<string, Struct> filter_metadata = 1; }
    let namespace_struct = map_entry(metadata, 1, namespace)?;
    // Struct { map<string, Value> fields = 1; } ; Value { Struct struct_value = 5; }
    let payload_value = map_entry(namespace_struct, 1, payload_key)?;
    let payload = fields(payload_value).find_map(|(number, value)| match (number, value) {
        (5, Wire::Bytes(bytes)) => Some(bytes),
        _ => None,
    })?;
    let mut claims = Vec::new();
    for (number, entry) in fields(payload) {
        if let (1, Wire::Bytes(entry)) = (number, entry) {
            if let Some((name, value)) = key_and_value(entry) {
                claims.push((name, decode_value(value)));
            }
        }
    }
    Some(claims)
}

/// `google.protobuf.Value`: `number_value = 2` (double), `string_value = 3`.
fn decode_value(value: &[u8]) -> ClaimValue {
    fields(value)
        .find_map(|(number, wire)| match (number, wire) {
            (2, Wire::Fixed64(bits)) => Some(ClaimValue::Number(f64::from_bits(bits))),
            (3, Wire::Bytes(bytes)) => std::str::from_utf8(bytes).ok().map(|text| ClaimValue::Text(text.to_string())),
            _ => None,
        })
        .unwrap_or(ClaimValue::Other)
}

/// The value bytes of the map entry with `key` in repeated field `field` of `message`.
fn map_entry<'a>(message: &'a [u8], field: u64, key: &str) -> Option<&'a [u8]> {
    fields(message).find_map(|(number, wire)| match (number, wire) {
        (number, Wire::Bytes(entry)) if number == field => {
            let (name, value) = key_and_value(entry)?;
            (name == key).then_some(value)
        }
        _ => None,
    })
}

/// A map entry: `key = 1` (string), `value = 2` (message).
fn key_and_value(entry: &[u8]) -> Option<(String, &[u8])> {
    let mut key = None;
    let mut value: &[u8] = &[];
    for (number, wire) in fields(entry) {
        match (number, wire) {
            (1, Wire::Bytes(bytes)) => key = std::str::from_utf8(bytes).ok().map(str::to_string),
            (2, Wire::Bytes(bytes)) => value = bytes,
            _ => {}
        }
    }
    key.map(|key| (key, value))
}

#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint,
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

/// The fields of a protobuf message, in order; stops at the first malformed byte.
fn fields(message: &[u8]) -> impl Iterator<Item = (u64, Wire<'_>)> {
    let mut rest = message;
    std::iter::from_fn(move || {
        let (tag, after_tag) = varint(rest)?;
        let (wire, after) = match tag & 7 {
            0 => (Wire::Varint, varint(after_tag)?.1),
            1 => {
                let (bytes, after) = split(after_tag, 8)?;
                (Wire::Fixed64(u64::from_le_bytes(bytes.try_into().ok()?)), after)
            }
            2 => {
                let (length, after_length) = varint(after_tag)?;
                let (bytes, after) = split(after_length, usize::try_from(length).ok()?)?;
                (Wire::Bytes(bytes), after)
            }
            5 => (Wire::Fixed32, split(after_tag, 4)?.1),
            _ => return None,
        };
        rest = after;
        Some((tag >> 3, wire))
    })
}

fn split(bytes: &[u8], at: usize) -> Option<(&[u8], &[u8])> {
    (bytes.len() >= at).then(|| bytes.split_at(at))
}

fn varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (index, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, bytes.get(index + 1..)?));
        }
    }
    None
}

/// Builds serialized `Metadata` for tests (the encoder mirror of the reader above).
/// Builds the metadata `jwt_authn` would leave, for tests and fuzz targets.
#[cfg(any(test, feature = "fuzzing"))]
pub mod encode {
    pub enum Claim<'a> {
        Text(&'a str),
        Number(f64),
        Bool(bool),
    }

    fn varint(mut value: u64, out: &mut Vec<u8>) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    fn bytes_field(number: u64, bytes: &[u8], out: &mut Vec<u8>) {
        varint(number << 3 | 2, out);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }

    fn entry(key: &str, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        bytes_field(1, key.as_bytes(), &mut out);
        bytes_field(2, value, &mut out);
        out
    }

    fn value(claim: &Claim<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        match claim {
            Claim::Text(text) => bytes_field(3, text.as_bytes(), &mut out),
            Claim::Number(number) => {
                varint(2 << 3 | 1, &mut out);
                out.extend_from_slice(&number.to_bits().to_le_bytes());
            }
            Claim::Bool(flag) => {
                varint(4 << 3, &mut out);
                varint(u64::from(*flag), &mut out);
            }
        }
        out
    }

    /// `Metadata` with `filter_metadata[namespace] = {payload_key: {claims...}}`.
    pub fn metadata(namespace: &str, payload_key: &str, claims: &[(&str, Claim<'_>)]) -> Vec<u8> {
        let mut payload = Vec::new();
        for (name, claim) in claims {
            bytes_field(1, &entry(name, &value(claim)), &mut payload);
        }
        let mut payload_value = Vec::new();
        bytes_field(5, &payload, &mut payload_value);
        let mut namespace_struct = Vec::new();
        bytes_field(1, &entry(payload_key, &payload_value), &mut namespace_struct);
        let mut out = Vec::new();
        bytes_field(1, &entry("other.filter", &[]), &mut out);
        bytes_field(1, &entry(namespace, &namespace_struct), &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::encode::{metadata, Claim};
    use super::*;

    const NAMESPACE: &str = "envoy.filters.http.jwt_authn";

    #[test]
    fn reads_string_and_number_claims_with_their_types() {
        let bytes = metadata(
            NAMESPACE,
            "jwt_payload",
            &[("sub", Claim::Text("4711")), ("uid", Claim::Number(42.0)), ("admin", Claim::Bool(true))],
        );
        let claims = verified_claims(&bytes, NAMESPACE, "jwt_payload").expect("the payload is there");
        assert_eq!(
            claims,
            vec![
                ("sub".to_string(), ClaimValue::Text("4711".into())),
                ("uid".to_string(), ClaimValue::Number(42.0)),
                ("admin".to_string(), ClaimValue::Other),
            ]
        );
    }

    #[test]
    fn another_namespace_or_payload_key_is_no_claims() {
        let bytes = metadata(NAMESPACE, "jwt_payload", &[("sub", Claim::Text("ann"))]);
        assert_eq!(verified_claims(&bytes, NAMESPACE, "other_key"), None);
        assert_eq!(verified_claims(&bytes, "envoy.filters.http.other", "jwt_payload"), None);
        assert_eq!(verified_claims(&[], NAMESPACE, "jwt_payload"), None, "no metadata");
    }

    #[test]
    fn malformed_bytes_give_nothing_rather_than_a_panic() {
        let bytes = metadata(NAMESPACE, "jwt_payload", &[("sub", Claim::Text("ann"))]);
        for cut in 0..bytes.len() {
            let _ = verified_claims(&bytes[..cut], NAMESPACE, "jwt_payload");
        }
        assert_eq!(verified_claims(&[0xff; 12], NAMESPACE, "jwt_payload"), None);
    }

    #[test]
    fn only_strings_and_integral_numbers_are_identity_text() {
        assert_eq!(ClaimValue::Text("ann".into()).as_identity_text().as_deref(), Some("ann"));
        assert_eq!(ClaimValue::Number(4711.0).as_identity_text().as_deref(), Some("4711"));
        assert_eq!(ClaimValue::Number(-3.0).as_identity_text().as_deref(), Some("-3"));
        assert_eq!(ClaimValue::Number(1.5).as_identity_text(), None);
        assert_eq!(ClaimValue::Number(1e300).as_identity_text(), None, "beyond 2^53 is not exact");
        assert_eq!(ClaimValue::Other.as_identity_text(), None);
    }
}
