//! Event timestamps: RFC 3339, millisecond precision, with an explicit `+00:00` offset,
//! as PactFlow writes them. Formatting is pure arithmetic (no clock, no time zone data),
//! so the filter can run it inside the wasm VM on every request.

/// Formats nanoseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmm+00:00`.
pub fn format_rfc3339_millis(unix_nanos: i64) -> String {
    let millis_total = unix_nanos.div_euclid(1_000_000);
    let seconds_total = millis_total.div_euclid(1000);
    let millis = millis_total.rem_euclid(1000);
    let days = seconds_total.div_euclid(86_400);
    let second_of_day = seconds_total.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (second_of_day / 3600, second_of_day % 3600 / 60, second_of_day % 60);
    // Digits written in place (`format!` was ~10% of the filter's instructions per event).
    // An i64 of nanoseconds spans the years 1677 to 2262: always four digits.
    let mut text = *b"0000-00-00T00:00:00.000+00:00";
    let mut put = |at: usize, value: i64, width: usize| {
        let mut rest = value;
        for slot in text.iter_mut().skip(at).take(width).rev() {
            *slot = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
    };
    put(0, year, 4);
    put(5, month, 2);
    put(8, day, 2);
    put(11, hour, 2);
    put(14, minute, 2);
    put(17, second, 2);
    put(20, millis, 3);
    String::from_utf8_lossy(&text).into_owned()
}

/// Parses a timestamp in the shape [`format_rfc3339_millis`] writes, or any RFC 3339
/// date-time with an offset, into milliseconds since the Unix epoch.
pub fn parse_rfc3339_millis(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't' | b' ')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes().all(|b| b.is_ascii_digit()).then(|| part.parse().ok())?
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0i64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        for (i, digit) in fraction[..digits].bytes().take(3).enumerate() {
            millis += i64::from(digit - b'0') * 10i64.pow(2 - i as u32);
        }
        rest = &fraction[digits..];
    }
    let offset_minutes = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let digits = [*h1, *h2, *m1, *m2];
            if !digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let value = |a: u8, b: u8| i64::from(a - b'0') * 10 + i64::from(b - b'0');
            let minutes = value(digits[0], digits[1]) * 60 + value(digits[2], digits[3]);
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1000 + millis)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's days-from-civil algorithms (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_written_in_place_match_the_formatted_shape() {
        let mut nanos = i64::MIN;
        while let Some(next) = nanos.checked_add(7_777_777_777_777_777) {
            let (days, second_of_day, millis) = (
                nanos.div_euclid(86_400_000_000_000),
                nanos.rem_euclid(86_400_000_000_000) / 1_000_000_000,
                nanos.rem_euclid(1_000_000_000) / 1_000_000,
            );
            let (year, month, day) = civil_from_days(days);
            let expected = format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}+00:00",
                second_of_day / 3600,
                second_of_day % 3600 / 60,
                second_of_day % 60
            );
            assert_eq!(format_rfc3339_millis(nanos), expected, "at {nanos} ns");
            nanos = next; // ~90 days: every month, odd hours, minutes, seconds and millis
        }
    }

    #[test]
    fn formats_the_epoch_and_a_known_instant() {
        assert_eq!(format_rfc3339_millis(0), "1970-01-01T00:00:00.000+00:00");
        // 2019-12-09T22:15:24.864Z is PactFlow's example instant (09:15:24.864+11:00).
        assert_eq!(format_rfc3339_millis(1_575_929_724_864_123_456), "2019-12-09T22:15:24.864+00:00");
    }

    #[test]
    fn formats_leap_days_and_year_ends() {
        assert_eq!(format_rfc3339_millis(951_782_400_000_000_000), "2000-02-29T00:00:00.000+00:00");
        assert_eq!(format_rfc3339_millis(1_798_761_599_999_000_000), "2026-12-31T23:59:59.999+00:00");
    }

    #[test]
    fn parse_reads_back_what_format_writes_over_many_instants() {
        let mut nanos: i64 = -2_000_000_000_000_000_000;
        while nanos < 4_000_000_000_000_000_000 {
            let text = format_rfc3339_millis(nanos);
            assert_eq!(parse_rfc3339_millis(&text), Some(nanos.div_euclid(1_000_000)), "round trip of {text}");
            nanos += 7_777_777_777_777_777;
        }
    }

    #[test]
    fn parse_honours_offsets_and_z() {
        let utc = parse_rfc3339_millis("2019-12-09T22:15:24.864Z");
        assert_eq!(parse_rfc3339_millis("2019-12-10T09:15:24.864+11:00"), utc);
        assert_eq!(parse_rfc3339_millis("2019-12-09T22:15:24.864+00:00"), utc);
        assert_eq!(parse_rfc3339_millis("2019-12-09T22:15:24Z"), utc.map(|m| m - 864));
    }

    #[test]
    fn parse_rejects_what_is_not_rfc3339() {
        for bad in [
            "",
            "yesterday",
            "2019-12-09",
            "2019-12-09T22:15:24",
            "2019-13-09T22:15:24Z",
            "2019-02-30T00:00:00Z",
            "2019-12-09T22:15:24.Z",
            "2019-12-09T22:15:24+1100",
        ] {
            assert_eq!(parse_rfc3339_millis(bad), None, "accepted {bad:?}");
        }
    }
}
