//! The event identity: 16 random bytes as 22 characters of unpadded base64url, as
//! PactFlow's Audit API uses (not a hyphenated UUID). It is the idempotency key end to end.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Length of an encoded event uuid.
pub const EVENT_UUID_LEN: usize = 22;

/// Encodes 16 random bytes as an event uuid.
pub fn encode_event_uuid(random: [u8; 16]) -> String {
    URL_SAFE_NO_PAD.encode(random)
}

/// True when `candidate` is 22 characters of base64url that decode to 16 bytes.
pub fn is_event_uuid(candidate: &str) -> bool {
    candidate.len() == EVENT_UUID_LEN && URL_SAFE_NO_PAD.decode(candidate).is_ok_and(|bytes| bytes.len() == 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_sixteen_bytes_as_twenty_two_url_safe_characters() {
        let encoded = encode_event_uuid([0xfb; 16]);
        assert_eq!(encoded.len(), EVENT_UUID_LEN);
        assert!(!encoded.contains(['+', '/', '=']), "not url-safe: {encoded}");
        assert!(is_event_uuid(&encoded));
    }

    #[test]
    fn accepts_pactflows_published_example() {
        assert!(is_event_uuid("16WlpdLpDMzfMYxLTZYXYw"));
    }

    #[test]
    fn rejects_hyphenated_uuids_and_wrong_lengths() {
        assert!(!is_event_uuid("0b7e5bd8-5a2e-4b55-9d1c-1f0f2f3a4b5c"));
        assert!(!is_event_uuid("16WlpdLpDMzfMYxLTZYXY"));
        assert!(!is_event_uuid("16WlpdLpDMzfMYxLTZYXY+"));
        assert!(!is_event_uuid(""));
    }
}
