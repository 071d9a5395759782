//! The times `since` and `until` accept, as PactFlow's clients and people send them: an
//! RFC 3339 date-time with an offset (`2026-11-30T00:49:37.123+01:00`), an ISO 8601
//! date-time without one (`2026-11-30T00:49:37`, read as UTC), and a date (`2026-11-30`,
//! midnight UTC). Minutes without seconds and offsets written `+0100` or `+01` are read too.
//! An unencoded `+` in a query string arrives as a space, so a space before the offset is
//! read as the `+` it was. Each form is rewritten into RFC 3339 and read by the one parser
//! of event timestamps, so there is one calendar.

use audit_event::timestamp::parse_rfc3339_millis;

/// Milliseconds since the epoch of a `since`/`until` value, or `None` when it is none of
/// the accepted forms.
pub fn parse_query_time(value: &str) -> Option<i64> {
    parse_rfc3339_millis(&as_rfc3339(value)?)
}

/// `value` rewritten as RFC 3339 with seconds and an offset.
fn as_rfc3339(value: &str) -> Option<String> {
    if !value.is_ascii() {
        return None;
    }
    let (date, rest) = value.split_at(value.len().min(10));
    if rest.is_empty() {
        return Some(format!("{date}T00:00:00Z"));
    }
    let time = rest.strip_prefix(['T', 't', ' '])?;
    // hh:mm, then :ss and a fraction when present; what follows is the offset.
    let clock_length = match time.as_bytes().get(5) {
        Some(b':') => 8 + fraction_length(time.get(8..)?),
        _ => 5,
    };
    let (clock, offset) = time.split_at(time.len().min(clock_length));
    let seconds = if clock.len() == 5 { ":00" } else { "" };
    Some(format!("{date}T{clock}{seconds}{}", rfc3339_offset(offset)?))
}

/// The length of a `.123` fraction at the start of `text` (0 when there is none).
fn fraction_length(text: &str) -> usize {
    match text.strip_prefix('.') {
        Some(digits) => 1 + digits.bytes().take_while(u8::is_ascii_digit).count(),
        None => 0,
    }
}

/// `Z`, `±hh:mm`, `±hhmm`, `±hh`, a space for `+`, or nothing (UTC), as RFC 3339 writes it.
fn rfc3339_offset(offset: &str) -> Option<String> {
    let (sign, digits) = match offset.as_bytes().first() {
        None => return Some("Z".to_owned()),
        Some(b'Z' | b'z') if offset.len() == 1 => return Some("Z".to_owned()),
        Some(b'+' | b' ') => ('+', &offset[1..]),
        Some(b'-') => ('-', &offset[1..]),
        Some(_) => return None,
    };
    let (hours, minutes) = match digits.len() {
        2 => (digits, "00"),
        4 => digits.split_at(2),
        5 if digits.as_bytes()[2] == b':' => (&digits[..2], &digits[3..]),
        _ => return None,
    };
    Some(format!("{sign}{hours}:{minutes}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIDNIGHT_2026_11_30: i64 = 1_795_996_800_000;

    #[test]
    fn every_accepted_form_reads_as_the_same_instant_where_it_should() {
        let later = MIDNIGHT_2026_11_30 + (49 * 60 + 37) * 1000;
        for (text, expected) in [
            ("2026-11-30", MIDNIGHT_2026_11_30),
            ("2026-11-30T00:49:37", later),
            ("2026-11-30t00:49:37", later),
            ("2026-11-30 00:49:37", later),
            ("2026-11-30T00:49:37Z", later),
            ("2026-11-30T00:49:37.250", later + 250),
            ("2026-11-30T00:49:37.250Z", later + 250),
            ("2026-11-30T00:49", MIDNIGHT_2026_11_30 + 49 * 60 * 1000),
            ("2026-11-30T01:49:37+01:00", later),
            ("2026-11-30T01:49:37 01:00", later),
            ("2026-11-30T01:49:37+0100", later),
            ("2026-11-30T01:49:37+01", later),
            ("2026-11-30T01:49:37.250 01:00", later + 250),
            ("2026-11-29T23:49:37-01:00", later),
            ("2026-11-30 01:49 01:00", later - 37_000),
        ] {
            assert_eq!(parse_query_time(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            "",
            "yesterday",
            "2026-11",
            "2026-11-31",
            "2026-13-01T00:00:00",
            "2026-11-30T",
            "2026-11-30T24:00:00",
            "2026-11-30T00:49:37.",
            "2026-11-30T00:49:37+1",
            "2026-11-30T00:49:37+01:0",
            "2026-11-30T00:49:37 Z",
            "2026-11-30T00:49:37UTC",
            "2026-11-30X00:49:37",
            "2026-11-30T00:4",
            "1796083200",
            "２０２６-11-30",
        ] {
            assert_eq!(parse_query_time(text), None, "{text}");
        }
    }
}
