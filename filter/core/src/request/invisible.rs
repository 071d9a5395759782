//! Characters a reader cannot see, or that reorder what is read, in captured text: the test
//! behind the `invisible_characters` alert ([`ALERT_INVISIBLE_CHARACTERS`]). A client picks
//! every captured field, and `admin` U+202E `gnp.exe` shows as "admin…exe.png" wherever the
//! trail is read; the value is kept as sent, and the alert lets a SIEM rule see the attempt.
//!
//! The set is Unicode's Cc (C0 controls, DEL, C1 controls), Cf (format characters: bidi
//! embeddings, overrides, isolates and marks, zero-width space and joiners, the word joiner
//! and invisible operators, the BOM, the soft hyphen, tags, ...), Zl and Zp (line and
//! paragraph separators): the viewer's `collector/ui/text.js` shows the same set escaped.
//! Nearly every field is printable ASCII, so the scan is one pass of byte comparisons that
//! decodes characters only when a byte is not.

use audit_event::trust::ALERT_INVISIBLE_CHARACTERS;
use audit_event::AuditEvent;

/// True for a character of the set above (Unicode 15's Cc, Cf, Zl, Zp).
fn is_invisible(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00..=0x1F
            | 0x7F..=0x9F
            | 0xAD
            | 0x600..=0x605
            | 0x61C
            | 0x6DD
            | 0x70F
            | 0x890..=0x891
            | 0x8E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x2028..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

/// True when `text` holds an invisible or reordering character.
pub fn holds_invisible(text: &str) -> bool {
    !is_printable_ascii(text.as_bytes()) && text.chars().any(is_invisible)
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// True when every byte is printable ASCII (0x20 to 0x7E), which holds no invisible
/// character. Eight bytes a step (SWAR, the same on wasm32 as natively): a byte with its high
/// bit set, below 0x20 or equal to 0x7F sets a high bit in `suspect`; the test may flag a
/// printable word next to such a byte (the borrow), never miss one, and a flag only sends the
/// text to the exact check.
fn is_printable_ascii(bytes: &[u8]) -> bool {
    let word_at = |at: usize| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[at..at + 8]);
        unprintable_bits(u64::from_le_bytes(word))
    };
    if bytes.len() < 8 {
        return bytes.iter().all(|byte| (0x20..0x7F).contains(byte));
    }
    // Whole words, then the last eight bytes (overlapping the words before: the test is "any").
    let mut suspect = word_at(bytes.len() - 8);
    for at in (0..bytes.len() - 8).step_by(8) {
        suspect |= word_at(at);
    }
    suspect & HIGH_BITS == 0
}

/// A high bit set somewhere when a byte of `word` is not printable ASCII.
fn unprintable_bits(word: u64) -> u64 {
    let below_space = word.wrapping_sub(ONES * 0x20) & !word;
    let delete = word ^ (ONES * 0x7F);
    let is_delete = delete.wrapping_sub(ONES) & !delete;
    word | below_space | is_delete
}

/// Adds [`ALERT_INVISIBLE_CHARACTERS`] to `event` when a field a client controls holds such a
/// character. Run on the bounded event: the alert is about what the trail shows.
pub fn flag_invisible(event: &mut AuditEvent) {
    let payload = &event.payload;
    let optional = [
        &payload.user_agent,
        &payload.referer,
        &payload.client_ip,
        &payload.request_id,
        &payload.host,
        &event.user_email,
        &event.user_id,
        &event.user_name,
    ];
    let found = [&payload.path, &payload.query_string, &payload.method].into_iter().any(|text| holds_invisible(text))
        || optional.into_iter().flatten().any(|text| holds_invisible(text))
        || payload.params.values().any(|text| holds_invisible(text))
        || event.untrusted_identity.iter().any(|claim| holds_invisible(&claim.value));
    if found {
        event.alerts.push(ALERT_INVISIBLE_CHARACTERS.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_text_in_any_script_holds_none() {
        for text in ["", "alice", "/pacticipants/Foo?x=1", "Zoë", "日本語", "עברית", "😀 emoji", "a b\u{A0}c"]
        {
            assert!(!holds_invisible(text), "{text:?}");
        }
    }

    #[test]
    fn bidi_controls_zero_width_and_control_characters_are_found() {
        let invisible = [
            '\u{0}',
            '\t',
            '\n',
            '\u{1B}',
            '\u{7F}',
            '\u{85}',
            '\u{9F}',
            '\u{AD}',
            '\u{61C}',
            '\u{180E}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{200E}',
            '\u{200F}',
            '\u{2028}',
            '\u{2029}',
            '\u{202A}',
            '\u{202B}',
            '\u{202C}',
            '\u{202D}',
            '\u{202E}',
            '\u{2060}',
            '\u{2064}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{206F}',
            '\u{FEFF}',
            '\u{FFFB}',
            '\u{E0001}',
            '\u{E007F}',
        ];
        for c in invisible {
            assert!(holds_invisible(&format!("admin{c}gnp.exe")), "U+{:04X}", u32::from(c));
        }
        for c in ['\u{1F}', '\u{20}', '\u{7E}', '\u{A0}', '\u{2030}', '\u{2065}', '\u{FFFC}', '\u{E0080}'] {
            assert_eq!(holds_invisible(&c.to_string()), c == '\u{1F}', "U+{:04X}", u32::from(c));
        }
    }

    #[test]
    fn the_word_at_a_time_test_agrees_with_the_byte_at_a_time_one() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = usize::try_from(state % 24).unwrap_or(0);
            // Mostly printable bytes, with an edge value (0x1F, 0x20, 0x7E, 0x7F, 0x80, 0xFF) now and then.
            let bytes: Vec<u8> = (0..len)
                .map(|at| {
                    let pick = (state >> (at * 2 % 60)) & 0xFF;
                    match pick % 16 {
                        0 => [0x1F, 0x20, 0x7E, 0x7F, 0x80, 0xFF, 0x00, 0x21][usize::try_from(pick / 32).unwrap_or(0)],
                        _ => u8::try_from(0x20 + pick % 0x5F).unwrap_or(b'a'),
                    }
                })
                .collect();
            let expected = bytes.iter().all(|byte| (0x20..0x7F).contains(byte));
            assert_eq!(is_printable_ascii(&bytes), expected, "{bytes:?}");
        }
    }

    #[test]
    fn any_captured_field_raises_the_alert_once() {
        let mut event: AuditEvent = serde_json::from_str(
            r#"{"uuid":"u","timestamp":"t","type":"T","payload":{"path":"/","queryString":"","method":"GET","userAgent":null,"referer":null,"params":{}}}"#,
        )
        .expect("a minimal event");
        flag_invisible(&mut event);
        assert!(event.alerts.is_empty(), "nothing invisible, no alert");
        event.user_name = Some("admin\u{202E}gnp.exe".into());
        event.payload.params.insert("name".into(), "a\u{200B}b".into());
        flag_invisible(&mut event);
        assert_eq!(event.alerts, [ALERT_INVISIBLE_CHARACTERS]);
    }
}
