//! Writing an [`AuditEvent`] as JSON, once per request, into the buffer the outbox keeps.
//!
//! The bytes are exactly what `serde_json::to_vec(&event)` writes (a test proves it on
//! thousands of events), so the wire shape keeps its one definition in `audit_event`. What
//! differs is speed: serde_json escapes strings byte by byte, which was ~20% of the filter's
//! instructions per event; here a string that needs no escaping (nearly every one) is
//! copied whole, and any other goes through serde_json itself. Numbers, the outcome and a
//! gap record are also serde_json's own output.

use audit_event::trust::UntrustedClaim;
use audit_event::{AuditEvent, RequestPayload, ResponseSummary, SenderSeq};
use serde::Serialize;

/// Appends `event` as compact JSON to `out`.
pub fn write_event(out: &mut Vec<u8>, event: &AuditEvent) -> Result<(), serde_json::Error> {
    // Destructured without `..`: a field added to the event fails to compile here until
    // it is written too.
    let AuditEvent {
        uuid,
        timestamp,
        event_type,
        db_user_id,
        user_email,
        payload,
        user_id,
        user_name,
        identity_source,
        token_fingerprint,
        response,
        gap,
        sender,
        untrusted_identity,
        truncated_fields,
        alerts,
    } = event;
    out.extend_from_slice(b"{\"uuid\":");
    write_str(out, uuid)?;
    out.extend_from_slice(b",\"timestamp\":");
    write_str(out, timestamp)?;
    out.extend_from_slice(b",\"type\":");
    write_str(out, event_type)?;
    out.extend_from_slice(b",\"db_user_id\":");
    write_serde(out, db_user_id)?;
    out.extend_from_slice(b",\"user_email\":");
    write_optional_str(out, user_email)?;
    out.extend_from_slice(b",\"payload\":");
    write_payload(out, payload)?;
    out.extend_from_slice(b",\"user_id\":");
    write_optional_str(out, user_id)?;
    out.extend_from_slice(b",\"user_name\":");
    write_optional_str(out, user_name)?;
    out.extend_from_slice(b",\"identity_source\":");
    write_optional_str(out, identity_source)?;
    out.extend_from_slice(b",\"token_fingerprint\":");
    write_optional_str(out, token_fingerprint)?;
    out.extend_from_slice(b",\"response\":");
    match response {
        Some(response) => write_response(out, response)?,
        None => out.extend_from_slice(b"null"),
    }
    if let Some(gap) = gap {
        out.extend_from_slice(b",\"gap\":");
        write_serde(out, gap)?;
    }
    if let Some(SenderSeq { id, seq }) = sender {
        out.extend_from_slice(b",\"sender\":{\"id\":");
        write_str(out, id)?;
        out.extend_from_slice(b",\"seq\":");
        write_serde(out, seq)?;
        out.push(b'}');
    }
    // Omitted when empty. An attempt (a forged identity header) is what the bench request
    // carries, so its claims and alert are written here too (serde_json's sequence writer
    // was ~1.2k instructions an event); a cut field is rare: serde_json's own output.
    if !untrusted_identity.is_empty() {
        out.extend_from_slice(b",\"untrusted_identity\":");
        write_claims(out, untrusted_identity)?;
    }
    if !truncated_fields.is_empty() {
        out.extend_from_slice(b",\"truncated_fields\":");
        write_serde(out, truncated_fields)?;
    }
    if !alerts.is_empty() {
        out.extend_from_slice(b",\"alerts\":");
        write_strs(out, alerts)?;
    }
    out.push(b'}');
    Ok(())
}

fn write_payload(out: &mut Vec<u8>, payload: &RequestPayload) -> Result<(), serde_json::Error> {
    let RequestPayload { path, query_string, method, user_agent, referer, params, client_ip, request_id, host } =
        payload;
    out.extend_from_slice(b"{\"path\":");
    write_str(out, path)?;
    out.extend_from_slice(b",\"queryString\":");
    write_str(out, query_string)?;
    out.extend_from_slice(b",\"method\":");
    write_str(out, method)?;
    out.extend_from_slice(b",\"userAgent\":");
    write_optional_str(out, user_agent)?;
    out.extend_from_slice(b",\"referer\":");
    write_optional_str(out, referer)?;
    out.extend_from_slice(b",\"params\":{");
    for (index, (name, value)) in params.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_str(out, name)?;
        out.push(b':');
        write_str(out, value)?;
    }
    out.extend_from_slice(b"},\"clientIp\":");
    write_optional_str(out, client_ip)?;
    out.extend_from_slice(b",\"requestId\":");
    write_optional_str(out, request_id)?;
    out.extend_from_slice(b",\"host\":");
    write_optional_str(out, host)?;
    out.push(b'}');
    Ok(())
}

fn write_response(out: &mut Vec<u8>, response: &ResponseSummary) -> Result<(), serde_json::Error> {
    let ResponseSummary { status, duration_ms, outcome } = response;
    out.extend_from_slice(b"{\"status\":");
    write_serde(out, status)?;
    out.extend_from_slice(b",\"durationMs\":");
    write_serde(out, duration_ms)?;
    out.extend_from_slice(b",\"outcome\":");
    write_serde(out, outcome)?;
    out.push(b'}');
    Ok(())
}

/// `[{"header":…,"value":…},…]`, as serde_json writes an [`UntrustedClaim`] list.
fn write_claims(out: &mut Vec<u8>, claims: &[UntrustedClaim]) -> Result<(), serde_json::Error> {
    out.push(b'[');
    for (index, UntrustedClaim { header, value }) in claims.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"header\":");
        write_str(out, header)?;
        out.extend_from_slice(b",\"value\":");
        write_str(out, value)?;
        out.push(b'}');
    }
    out.push(b']');
    Ok(())
}

/// `["…",…]`.
fn write_strs(out: &mut Vec<u8>, texts: &[String]) -> Result<(), serde_json::Error> {
    out.push(b'[');
    for (index, text) in texts.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        write_str(out, text)?;
    }
    out.push(b']');
    Ok(())
}

fn write_optional_str(out: &mut Vec<u8>, text: &Option<String>) -> Result<(), serde_json::Error> {
    match text {
        Some(text) => write_str(out, text),
        None => {
            out.extend_from_slice(b"null");
            Ok(())
        }
    }
}

/// A JSON string: copied whole when serde_json would not escape any of it (no control
/// character, quote or backslash; it leaves everything else, non-ASCII included, as is).
fn write_str(out: &mut Vec<u8>, text: &str) -> Result<(), serde_json::Error> {
    if needs_escape(text.as_bytes()) {
        return write_serde(out, text);
    }
    out.reserve(text.len() + 2);
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
    Ok(())
}

/// Whether any byte is below 0x20, a `"` or a `\\`, eight bytes at a time (a byte loop
/// was most of the cost of writing an event).
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    // Some byte of `word` is below `n` (n <= 0x80); exact for "any", which is all we ask.
    let any_below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS != 0;
    let any_equal = |word: u64, byte: u8| any_below(word ^ (ONES * u64::from(byte)), 1);
    let special = |byte: &u8| *byte < 0x20 || *byte == b'"' || *byte == b'\\';
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let Ok(eight) = <[u8; 8]>::try_from(chunk) else { return chunk.iter().any(special) };
        let word = u64::from_le_bytes(eight);
        if any_below(word, 0x20) || any_equal(word, b'"') || any_equal(word, b'\\') {
            return true;
        }
    }
    words.remainder().iter().any(special)
}

fn write_serde<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result<(), serde_json::Error> {
    serde_json::to_writer(&mut *out, value)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use audit_event::trust::TruncatedField;
    use audit_event::{DeliveryGap, DELIVERY_GAP_TYPE};

    use super::*;

    /// Strings that exercise every escaping rule and none: quotes, backslashes, each
    /// control character, DEL, non-ASCII, empty.
    fn text(seed: u64) -> String {
        const PIECES: &[&str] = &[
            "",
            "plain",
            "/pacticipants/Foo/versions/1.0.0",
            "say \"hi\"",
            "back\\slash",
            "tab\there",
            "new\nline\r",
            "\u{0}\u{1}\u{8}\u{b}\u{c}\u{1f}",
            "\u{7f}del",
            "é, 日本, 🦀",
            "</script>",
            "a=1&token=***",
        ];
        let mut text = String::new();
        let mut rest = seed;
        for _ in 0..(seed % 4) {
            text.push_str(PIECES[(rest % PIECES.len() as u64) as usize]);
            rest /= PIECES.len() as u64;
        }
        text
    }

    fn maybe(seed: u64, value: String) -> Option<String> {
        (!seed.is_multiple_of(3)).then_some(value)
    }

    /// A deterministic spread of events: every optional field absent and present, odd
    /// strings everywhere, numbers at their edges.
    fn event(n: u64) -> AuditEvent {
        let mix = |salt: u64| {
            n.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(salt.wrapping_mul(1_442_695_040_888_963_407)) >> 7
        };
        let params: BTreeMap<String, String> =
            (0..mix(1) % 4).map(|i| (text(mix(10 + i)), text(mix(20 + i)))).collect();
        let durations = [0.0, 1.5, 0.000_1, 12_345.678, 1e-9, 2.0, f64::NAN, 1e21, 0.1 + 0.2];
        let statuses = [0u16, 200, 201, 302, 401, 403, 404, 500, 503, 65_535];
        AuditEvent {
            uuid: text(mix(2)),
            timestamp: text(mix(3)),
            event_type: if n.is_multiple_of(17) { DELIVERY_GAP_TYPE.to_string() } else { text(mix(4)) },
            db_user_id: [None, Some(0), Some(2), Some(-7), Some(i64::MAX), Some(i64::MIN)][(mix(5) % 6) as usize],
            user_email: maybe(mix(6), text(mix(7))),
            payload: RequestPayload {
                path: text(mix(8)),
                query_string: text(mix(9)),
                method: text(mix(11)),
                user_agent: maybe(mix(12), text(mix(13))),
                referer: maybe(mix(14), text(mix(15))),
                params,
                client_ip: maybe(mix(16), text(mix(17))),
                request_id: maybe(mix(18), text(mix(19))),
                host: maybe(mix(21), text(mix(22))),
            },
            user_id: maybe(mix(23), text(mix(24))),
            user_name: maybe(mix(25), text(mix(26))),
            identity_source: maybe(mix(27), text(mix(28))),
            token_fingerprint: maybe(mix(29), text(mix(30))),
            response: (!mix(31).is_multiple_of(4)).then(|| {
                ResponseSummary::new(
                    statuses[(mix(32) % statuses.len() as u64) as usize],
                    durations[(mix(33) % durations.len() as u64) as usize],
                )
            }),
            gap: n.is_multiple_of(17).then(|| DeliveryGap::counted(mix(34), text(mix(35)), text(mix(36)))),
            sender: (!n.is_multiple_of(5)).then(|| SenderSeq { id: text(mix(37)), seq: mix(38) }),
            untrusted_identity: (0..mix(37) % 3)
                .map(|i| UntrustedClaim { header: text(mix(40 + i)), value: text(mix(50 + i)) })
                .collect(),
            truncated_fields: (0..mix(38) % 3)
                .map(|i| TruncatedField { field: text(mix(60 + i)), original_bytes: mix(70 + i) })
                .collect(),
            alerts: (0..mix(39) % 3).map(|i| text(mix(80 + i))).collect(),
        }
    }

    #[test]
    fn needs_escape_finds_every_special_byte_in_every_position() {
        for length in 1..=17 {
            for position in 0..length {
                for byte in 0..=255u8 {
                    let mut bytes = vec![b'a'; length];
                    bytes[position] = byte;
                    let expected = byte < 0x20 || byte == b'"' || byte == b'\\';
                    assert_eq!(needs_escape(&bytes), expected, "byte {byte:#04x} at {position} of {length}");
                }
            }
        }
        assert!(!needs_escape(b""), "the empty string");
    }

    #[test]
    fn writes_exactly_what_serde_json_writes_for_thousands_of_events() {
        for n in 0..5_000 {
            let event = event(n);
            let expected = serde_json::to_vec(&event).expect("serde_json serializes every event");
            let mut written = b"previous bytes are kept".to_vec();
            write_event(&mut written, &event).expect("writes");
            let written = written.strip_prefix(b"previous bytes are kept".as_slice()).expect("appends");
            if written != expected.as_slice() {
                let at = written.iter().zip(&expected).take_while(|(a, b)| a == b).count();
                panic!(
                    "event {n}: differs from serde_json at byte {at}:\n  written: {}\n  serde:   {}",
                    String::from_utf8_lossy(written),
                    String::from_utf8_lossy(&expected)
                );
            }
        }
    }
}
