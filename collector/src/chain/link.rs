//! One link of the chain: `hash = SHA-256(prev_hash || seq as 8 bytes big-endian ||
//! canonical event)`, with the 32 zero bytes of [`GENESIS`] before the first event. The
//! canonical event is [`canonical_json`] of the event body as stored (what `GET /audit`
//! serves, without its `chain` key).

use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::canonical::canonical_json;

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// The `prev_hash` of the first event of a trail.
pub const GENESIS: Digest = [0; 32];

/// The chain hash of the event at `seq` whose canonical bytes are `canonical_event`.
pub fn link_hash(prev_hash: &Digest, seq: i64, canonical_event: &[u8]) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash);
    hasher.update(seq.to_be_bytes());
    hasher.update(canonical_event);
    hasher.finalize().into()
}

/// The chain hash of a stored event body (JSON text).
pub fn body_hash(prev_hash: &Digest, seq: i64, body: &str) -> Result<Digest, serde_json::Error> {
    Ok(link_hash(prev_hash, seq, &canonical_body(body)?))
}

/// The canonical bytes of a stored event body (JSON text): what its link hashes.
pub fn canonical_body(body: &str) -> Result<Vec<u8>, serde_json::Error> {
    let value: Value = serde_json::from_str(body)?;
    Ok(canonical_json(&value))
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

/// Lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Bytes from hex (either case); `None` when it is not hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |digit: u8| char::from(digit).to_digit(16).and_then(|value| u8::try_from(value).ok());
    text.chunks(2).map(|pair| Some(nibble(pair[0])? << 4 | nibble(pair[1])?)).collect()
}

/// A digest from 64 hex digits.
pub fn digest_from_hex(text: &str) -> Option<Digest> {
    from_hex(text)?.try_into().ok()
}

/// A digest from a BLOB column; `None` when it is not 32 bytes.
pub fn digest_from_blob(blob: &[u8]) -> Option<Digest> {
    blob.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector of the README ("The canonical form"): an independent implementation
    /// should reproduce these bytes and hashes.
    pub const VECTOR_BODY: &str = r#"{"uuid":"16WlpdLpDMzfMYxLTZYXYw","timestamp":"2019-12-10T09:15:24.864+11:00","type":"PactBroker::Api::Resources::Pact","db_user_id":2,"user_email":"someone@example.com","payload":{"path":"/pacts/provider/Bar/consumer/Foo/latest","queryString":"","method":"GET","userAgent":"curl/8.5.0","referer":null,"params":{"resource_name":"latest_pact","provider_name":"Bar","consumer_name":"Foo"},"clientIp":"203.0.113.7","requestId":"d540ece3","host":"broker.example"},"user_id":"2","user_name":null,"identity_source":"header:x-forwarded-email","token_fingerprint":null,"response":{"status":200,"durationMs":1.5,"outcome":"success"}}"#;

    #[test]
    fn the_readme_test_vector() {
        let value: Value = serde_json::from_str(VECTOR_BODY).expect("vector is JSON");
        let canonical = String::from_utf8(canonical_json(&value)).expect("UTF-8");
        assert_eq!(
            canonical,
            r#"{"db_user_id":2,"identity_source":"header:x-forwarded-email","payload":{"clientIp":"203.0.113.7","host":"broker.example","method":"GET","params":{"consumer_name":"Foo","provider_name":"Bar","resource_name":"latest_pact"},"path":"/pacts/provider/Bar/consumer/Foo/latest","queryString":"","referer":null,"requestId":"d540ece3","userAgent":"curl/8.5.0"},"response":{"durationMs":1.5,"outcome":"success","status":200},"timestamp":"2019-12-10T09:15:24.864+11:00","token_fingerprint":null,"type":"PactBroker::Api::Resources::Pact","user_email":"someone@example.com","user_id":"2","user_name":null,"uuid":"16WlpdLpDMzfMYxLTZYXYw"}"#
        );
        let first = body_hash(&GENESIS, 1, VECTOR_BODY).expect("hash");
        let second = body_hash(&first, 2, VECTOR_BODY).expect("hash");
        assert_eq!(to_hex(&first), "cecd53e072fbc7de120a3cd4e4e9f4a963f2e2313007784ea0dd55ea269525d5");
        assert_eq!(to_hex(&second), "61a5a2152693238d300549a28a52ac1bd01a685956f5daef6bea3470687e7859");
    }

    #[test]
    fn the_hash_covers_prev_hash_seq_and_content() {
        let base = link_hash(&GENESIS, 1, b"{}");
        assert_ne!(base, link_hash(&[1; 32], 1, b"{}"), "prev_hash");
        assert_ne!(base, link_hash(&GENESIS, 2, b"{}"), "seq");
        assert_ne!(base, link_hash(&GENESIS, 1, b"{\"a\":1}"), "content");
        let reordered = body_hash(&GENESIS, 1, r#"{ "b": 2, "a": 1 }"#).expect("hash");
        assert_eq!(
            reordered,
            body_hash(&GENESIS, 1, r#"{"a":1,"b":2}"#).expect("hash"),
            "key order and spacing do not matter"
        );
    }

    #[test]
    fn hex_round_trips_and_refuses_non_hex() {
        assert_eq!(to_hex(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(from_hex("00ABff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(from_hex("0g"), None);
        assert_eq!(from_hex("abc"), None);
        assert_eq!(digest_from_hex(&"00".repeat(32)), Some(GENESIS));
    }
}
