//! Every text field a client controls has a bound (`limits.maxFieldBytes`, 4 KiB by
//! default): a longer value is cut at a UTF-8 character boundary and ends with
//! [`TRUNCATION_MARKER`], and the event lists the field in `truncated_fields` with its
//! size before the cut. So a 50,000-character `User-Agent` costs the trail 4 KiB, and the
//! trail still says it was longer.
//!
//! A bounded event can still be too large for the collector when many fields are long
//! and full of characters JSON escapes; [`write_within_limit`] then cuts every field to
//! [`FALLBACK_FIELD_BYTES`] rather than lose the event.

use audit_event::event::MAX_EVENT_BYTES;
use audit_event::trust::{TruncatedField, TRUNCATION_MARKER};
use audit_event::AuditEvent;

use crate::request::event_json::write_event;

/// The default bound of one field, in bytes.
pub const DEFAULT_MAX_FIELD_BYTES: usize = 4096;

/// The smallest bound the configuration accepts: room for the marker and a useful prefix.
pub const MIN_MAX_FIELD_BYTES: usize = 64;

/// The bound used for an event that is too large at the configured one. Even with every
/// character escaped six-fold, a few dozen fields of this size fit in [`MAX_EVENT_BYTES`].
pub const FALLBACK_FIELD_BYTES: usize = 256;

/// `value` cut to at most `max_bytes` bytes, marker included, at a character boundary;
/// `None` when it fits as it is.
pub fn cut(value: &str, max_bytes: usize) -> Option<String> {
    if value.len() <= max_bytes {
        return None;
    }
    let mut end = max_bytes.saturating_sub(TRUNCATION_MARKER.len());
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    let mut kept = String::with_capacity(end + TRUNCATION_MARKER.len());
    kept.push_str(&value[..end]);
    kept.push_str(TRUNCATION_MARKER);
    Some(kept)
}

/// Cuts every client-controlled text field of `event` to `max_bytes` and records each cut
/// in `event.truncated_fields` (a field cut again keeps its first, original size).
pub fn bound_event(event: &mut AuditEvent, max_bytes: usize) {
    let mut cuts = std::mem::take(&mut event.truncated_fields);
    // The field's name is made only for a value that is cut: formatting the names of the
    // params and claims for every event was ~10% of capture's instructions.
    let mut bound = |value: &mut String, field: &dyn Fn() -> String| {
        if let Some(kept) = cut(value, max_bytes) {
            let field = field();
            if !cuts.iter().any(|cut| cut.field == field) {
                cuts.push(TruncatedField { field, original_bytes: value.len() as u64 });
            }
            *value = kept;
        }
    };
    let payload = &mut event.payload;
    bound(&mut payload.path, &|| "payload.path".to_string());
    bound(&mut payload.query_string, &|| "payload.queryString".to_string());
    bound(&mut payload.method, &|| "payload.method".to_string());
    for (field, value) in [
        ("payload.userAgent", &mut payload.user_agent),
        ("payload.referer", &mut payload.referer),
        ("payload.clientIp", &mut payload.client_ip),
        ("payload.requestId", &mut payload.request_id),
        ("payload.host", &mut payload.host),
        ("user_email", &mut event.user_email),
        ("user_id", &mut event.user_id),
        ("user_name", &mut event.user_name),
    ] {
        if let Some(value) = value {
            bound(value, &|| field.to_string());
        }
    }
    for (name, value) in payload.params.iter_mut() {
        bound(value, &|| format!("payload.params.{name}"));
    }
    for (index, claim) in event.untrusted_identity.iter_mut().enumerate() {
        bound(&mut claim.value, &|| format!("untrusted_identity[{index}].value"));
    }
    event.truncated_fields = cuts;
}

/// Appends `event` as JSON to `out`, cutting its fields to [`FALLBACK_FIELD_BYTES`] first
/// if the JSON would be larger than the collector accepts. What is written can still be
/// too large only if the configuration makes it so (hundreds of identity headers).
pub fn write_within_limit(out: &mut Vec<u8>, event: &mut AuditEvent) -> Result<(), serde_json::Error> {
    let start = out.len();
    write_event(out, event)?;
    if out.len() - start <= MAX_EVENT_BYTES {
        return Ok(());
    }
    out.truncate(start);
    bound_event(event, FALLBACK_FIELD_BYTES);
    write_event(out, event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use audit_event::trust::UntrustedClaim;
    use audit_event::RequestPayload;

    fn event() -> AuditEvent {
        serde_json::from_value(serde_json::json!({
            "uuid": "16WlpdLpDMzfMYxLTZYXYw", "timestamp": "2019-12-10T09:15:24.864+11:00",
            "type": "T", "db_user_id": null, "user_email": null,
            "payload": {"path": "/", "queryString": "", "method": "GET", "userAgent": null,
                        "referer": null, "params": {}}
        }))
        .unwrap_or_else(|err| panic!("the fixture parses: {err}"))
    }

    #[test]
    fn a_value_that_fits_is_not_cut() {
        assert_eq!(cut("short", 64), None);
        assert_eq!(cut(&"a".repeat(64), 64), None, "exactly the bound");
    }

    #[test]
    fn a_long_value_keeps_a_prefix_and_ends_with_the_marker_within_the_bound() {
        let kept = cut(&"a".repeat(100), 64).unwrap_or_default();
        assert_eq!(kept.len(), 64, "marker included");
        assert!(kept.ends_with(TRUNCATION_MARKER), "{kept}");
        assert_eq!(kept.trim_end_matches(TRUNCATION_MARKER), "a".repeat(64 - TRUNCATION_MARKER.len()));
    }

    #[test]
    fn the_cut_never_splits_a_character() {
        // 2-, 3- and 4-byte characters, the cut falling at every offset inside them.
        for filler in ["é", "日", "🦀"] {
            for lead in 0..4 {
                let value = format!("{}{}", "a".repeat(lead), filler.repeat(60));
                for max in MIN_MAX_FIELD_BYTES..MIN_MAX_FIELD_BYTES + 5 {
                    let kept = cut(&value, max).unwrap_or_default();
                    assert!(kept.len() <= max, "{filler} lead {lead} max {max}: {} bytes", kept.len());
                    assert!(kept.len() + filler.len() > max, "{filler} lead {lead} max {max}: cut more than needed");
                    let prefix = kept.trim_end_matches(TRUNCATION_MARKER);
                    assert!(value.starts_with(prefix), "{filler} lead {lead} max {max}: not a prefix");
                }
            }
        }
    }

    #[test]
    fn bound_event_cuts_each_long_field_and_lists_it_with_its_size() {
        let mut event = event();
        event.payload = RequestPayload {
            path: format!("/{}", "p".repeat(99)),
            user_agent: Some("u".repeat(5000)),
            params: [("name".to_string(), "n".repeat(70))].into_iter().collect(),
            ..event.payload
        };
        event.untrusted_identity = vec![UntrustedClaim { header: "x-forwarded-email".into(), value: "e".repeat(65) }];
        event.user_name = Some("short".into());
        bound_event(&mut event, 64);
        let listed: Vec<(&str, u64)> =
            event.truncated_fields.iter().map(|cut| (cut.field.as_str(), cut.original_bytes)).collect();
        assert_eq!(
            listed,
            [
                ("payload.path", 100),
                ("payload.userAgent", 5000),
                ("payload.params.name", 70),
                ("untrusted_identity[0].value", 65)
            ]
        );
        assert!(event.payload.path.starts_with("/pp") && event.payload.path.len() <= 64, "path");
        assert_eq!(event.user_name.as_deref(), Some("short"), "a short field is kept whole");
        assert_eq!(event.validate(), Ok(()), "a cut event is still valid");
    }

    #[test]
    fn cutting_again_keeps_the_first_original_size() {
        let mut event = event();
        event.payload.user_agent = Some("u".repeat(5000));
        bound_event(&mut event, 4096);
        bound_event(&mut event, 256);
        assert_eq!(
            event.truncated_fields,
            [TruncatedField { field: "payload.userAgent".into(), original_bytes: 5000 }]
        );
        assert!(event.payload.user_agent.as_deref().is_some_and(|agent| agent.len() <= 256));
    }

    #[test]
    fn an_event_too_large_for_the_collector_is_cut_further_instead_of_lost() {
        let mut event = event();
        // Quotes escape to two bytes: 4 KiB fields that serialize to 8 KiB each.
        let quoted = "\"".repeat(4000);
        event.payload.user_agent = Some(quoted.clone());
        event.payload.referer = Some(quoted.clone());
        event.payload.host = Some(quoted.clone());
        event.payload.request_id = Some(quoted.clone());
        event.user_email = Some(quoted.clone());
        event.user_id = Some(quoted.clone());
        event.user_name = Some(quoted.clone());
        event.payload.query_string = quoted.clone();
        event.payload.method = quoted;
        let mut out = Vec::new();
        write_within_limit(&mut out, &mut event).unwrap_or_else(|err| panic!("writes: {err}"));
        assert!(out.len() <= MAX_EVENT_BYTES, "{} bytes", out.len());
        assert_eq!(event.truncated_fields.len(), 9, "every long field is listed: {:?}", event.truncated_fields);
        let parsed: AuditEvent = serde_json::from_slice(&out).unwrap_or_else(|err| panic!("parses: {err}"));
        assert_eq!(parsed, event, "what was written is the cut event");
    }
}
