//! Reading a served event for the SIEM mappings ([`super::ocsf`], [`super::ecs`], and any
//! record `tail` writes): typed looks at untyped JSON, the checks a schema type needs before
//! a value may go into a standard field, the gap details of any gap-like event, and
//! [`leftovers`], what a mapping did not place in a standard field, so nothing the native
//! event says is dropped on the way to the SIEM.

use audit_event::sender::SENDER_FINISHED_TYPE;
use serde_json::{Map, Value};

/// A path into the native event, e.g. `&["payload", "method"]`.
pub type FieldPath = &'static [&'static str];

/// The value at `path` in `event`, when present and not null.
pub fn at<'a>(event: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(event, |value, key| value.get(key)).filter(|value| !value.is_null())
}

/// The string at `path`, when it is a non-empty string.
pub fn text(event: &Value, path: &[&str]) -> Option<String> {
    at(event, path).and_then(Value::as_str).filter(|text| !text.is_empty()).map(str::to_owned)
}

/// The user id: `user_id`, or else PactFlow's numeric `db_user_id`, as text.
pub fn user_id(event: &Value) -> Option<String> {
    text(event, &["user_id"]).or_else(|| at(event, &["db_user_id"]).and_then(Value::as_i64).map(|id| id.to_string()))
}

/// The HTTP status the client got. A request that ended without a response (status 0) has
/// none: its `response.outcome` (`no_response`) says so.
pub fn status(event: &Value) -> Option<u64> {
    at(event, &["response", "status"]).and_then(Value::as_u64).filter(|status| *status > 0)
}

/// The event's `alerts` (markers a SOC matches on, e.g. `untrusted_identity_header`), when
/// it has any: all of them strings, or `None` so that the array stays in the leftovers.
pub fn alerts(event: &Value) -> Option<Vec<String>> {
    let alerts = at(event, &["alerts"])?.as_array()?;
    let texts: Option<Vec<String>> = alerts.iter().map(|alert| alert.as_str().map(str::to_owned)).collect();
    texts.filter(|texts| !texts.is_empty())
}

/// `true` for an IPv4 or IPv6 address, as OCSF `ip_t` and ECS `ip` require.
pub fn is_ip(text: &str) -> bool {
    text.parse::<std::net::IpAddr>().is_ok()
}

/// `true` when `text` passes OCSF's `email_t` pattern (a conservative reading of it, so a
/// value accepted here is accepted there): `local@label.label...`.
pub fn is_email(text: &str) -> bool {
    const LOCAL_SPECIALS: &str = "!#$%&'*+,-./=?^_`{|}~";
    let Some((local, domain)) = text.split_once('@') else { return false };
    let label = |part: &str| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    let Some((first, rest)) = domain.split_once('.') else { return false };
    !local.is_empty()
        && local.chars().all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c))
        && label(first)
        && !rest.is_empty()
        && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// A `Host` header split into the host name (or address) and the port, as both schemas
/// keep them apart: `broker:8080` → (`broker`, 8080), `[::1]:80` → (`::1`, 80).
pub fn host_and_port(host: &str) -> (String, Option<u16>) {
    if let Some(bracketed) = host.strip_prefix('[') {
        if let Some((address, rest)) = bracketed.split_once(']') {
            return (address.to_owned(), rest.strip_prefix(':').and_then(|port| port.parse().ok()));
        }
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => match port.parse() {
            Ok(port) => (name.to_owned(), Some(port)),
            Err(_) => (host.to_owned(), None),
        },
        _ => (host.to_owned(), None),
    }
}

/// The offset of an RFC 3339 timestamp in minutes east of UTC (`Z` is 0).
pub fn utc_offset_minutes(timestamp: &str) -> Option<i64> {
    if timestamp.ends_with('Z') || timestamp.ends_with('z') {
        return Some(0);
    }
    let split = timestamp.len().checked_sub(6)?;
    let offset = timestamp.get(split..)?;
    let sign = match offset.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = offset.get(1..)?.split_once(':')?;
    Some(sign * (hours.parse::<i64>().ok()? * 60 + minutes.parse::<i64>().ok()?))
}

/// What a gap-like event says was lost. Any event with a `gap` object is one: the filter's
/// `AuditSidecar::DeliveryGap` and the records the collector writes itself (a sender's
/// numbers it never received, a sender that stopped or resumed). The count and the windows
/// are read from the fields they share; the whole `gap` object also goes to the mapping's
/// extension fields through [`leftovers`], whatever else it holds (sender, numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapSummary {
    /// How many events were lost, when the gap can count them.
    pub lost_events: Option<u64>,
    /// When the first lost event was captured or dropped (RFC 3339).
    pub first_lost_at: Option<String>,
    /// When the last lost event was captured or dropped (RFC 3339).
    pub last_lost_at: Option<String>,
    /// A stopped sender's last heartbeat: after it, an unknown number of events may be lost.
    pub last_heard_at: Option<String>,
    /// The end of that unknown window.
    pub unknown_until: Option<String>,
    /// On a sender's stop: the events it captured.
    pub captured: Option<u64>,
}

impl GapSummary {
    /// The gap of `event`, `None` for an event that is not gap-like.
    pub fn of(event: &Value) -> Option<GapSummary> {
        at(event, &["gap"]).filter(|gap| gap.is_object())?;
        Some(GapSummary {
            lost_events: at(event, &["gap", "lostEvents"]).and_then(Value::as_u64),
            first_lost_at: text(event, &["gap", "firstLostAt"]),
            last_lost_at: text(event, &["gap", "lastLostAt"]),
            last_heard_at: text(event, &["gap", "lastHeardAt"]),
            unknown_until: text(event, &["gap", "unknownUntil"]),
            captured: at(event, &["gap", "captured"]).and_then(Value::as_u64),
        })
    }

    /// `true` unless the record says that nothing was lost (e.g. a sender that resumed).
    pub fn is_loss(&self) -> bool {
        self.lost_events != Some(0) || self.unknown_until.is_some()
    }

    /// One sentence for a SIEM analyst: how many events were lost, and when.
    pub fn describe(&self, event_type: &str) -> String {
        if event_type == SENDER_FINISHED_TYPE && !self.is_loss() {
            let captured = self.captured.map_or(String::new(), |count| format!(": all {count} of its events stored"));
            return format!("the sender stopped cleanly{captured}, nothing lost and nothing unknown ({event_type})");
        }
        let count = match self.lost_events {
            Some(0) => "no audit event was counted as lost".to_owned(),
            Some(1) => "1 audit event was lost".to_owned(),
            Some(count) => format!("{count} audit events were lost"),
            None => "audit events were lost".to_owned(),
        };
        let window = match (&self.first_lost_at, &self.last_lost_at) {
            (Some(first), Some(last)) if self.lost_events != Some(0) => format!(" between {first} and {last}"),
            _ => String::new(),
        };
        let unknown = match (&self.last_heard_at, &self.unknown_until) {
            (Some(heard), Some(until)) => format!(", and an unknown number after {heard} until {until}"),
            (None, Some(until)) => format!(", and an unknown number until {until}"),
            _ => String::new(),
        };
        format!("{count}{window}{unknown} ({event_type})")
    }
}

/// `event` without the `mapped` paths, and without nulls, empty strings and the objects
/// left empty: what a mapping must still carry in its extension fields (OCSF `unmapped`,
/// our ECS namespace) so that no information of the native event is lost.
pub fn leftovers(event: &Value, mapped: &[FieldPath]) -> Value {
    let mut rest = event.clone();
    for path in mapped {
        if let Some((last, parents)) = path.split_last() {
            let parent = parents.iter().try_fold(&mut rest, |value, key| value.get_mut(*key));
            if let Some(Value::Object(parent)) = parent {
                parent.remove(*last);
            }
        }
    }
    without_empty(rest).unwrap_or_else(|| Value::Object(Map::new()))
}

/// Drops nulls, empty strings and objects left empty, so absent fields are absent, not
/// `null` or `""` (which schemas read as a value).
pub fn without_empty(value: Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::String(text) if text.is_empty() => None,
        Value::Object(map) => {
            let kept: Map<String, Value> =
                map.into_iter().filter_map(|(key, value)| without_empty(value).map(|value| (key, value))).collect();
            (!kept.is_empty()).then_some(Value::Object(kept))
        }
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hosts_split_into_name_and_port() {
        assert_eq!(host_and_port("broker"), ("broker".to_owned(), None));
        assert_eq!(host_and_port("broker:8080"), ("broker".to_owned(), Some(8080)));
        assert_eq!(host_and_port("127.0.0.1:10000"), ("127.0.0.1".to_owned(), Some(10000)));
        assert_eq!(host_and_port("[::1]:80"), ("::1".to_owned(), Some(80)));
        assert_eq!(host_and_port("[::1]"), ("::1".to_owned(), None));
        assert_eq!(host_and_port("::1"), ("::1".to_owned(), None));
        assert_eq!(host_and_port("broker:http"), ("broker:http".to_owned(), None));
    }

    #[test]
    fn offsets_are_minutes_east_of_utc() {
        assert_eq!(utc_offset_minutes("2019-12-10T09:15:24.864+11:00"), Some(660));
        assert_eq!(utc_offset_minutes("2019-12-10T09:15:24.864-05:30"), Some(-330));
        assert_eq!(utc_offset_minutes("2019-12-10T09:15:24.864Z"), Some(0));
        assert_eq!(utc_offset_minutes("yesterday"), None);
    }

    #[test]
    fn emails_and_addresses_are_checked_before_they_go_into_typed_fields() {
        assert!(is_email("bob@example.com") && is_email("a.b+c@mail.example.org"));
        assert!(!is_email("bob") && !is_email("bob@localhost") && !is_email("@example.com") && !is_email("b b@x.io"));
        assert!(is_ip("10.0.0.7") && is_ip("2001:db8::1"));
        assert!(!is_ip("unknown") && !is_ip("10.0.0.7:80"));
    }

    #[test]
    fn leftovers_are_what_was_not_mapped_without_empty_values() {
        let event = json!({"a": 1, "b": {"c": "x", "d": ""}, "e": null, "f": {"g": 2}});
        assert_eq!(leftovers(&event, &[&["a"], &["f", "g"]]), json!({"b": {"c": "x"}}));
        assert_eq!(leftovers(&event, &[&["a"], &["b"], &["f"]]), json!({}));
    }

    #[test]
    fn any_event_with_a_gap_object_is_gap_like_and_says_what_it_lost() {
        assert_eq!(GapSummary::of(&json!({"type": "T", "gap": null})), None);
        let gap = GapSummary::of(&json!({"gap": {"lostEvents": 7, "firstLostAt": "t1", "lastLostAt": "t2"}}));
        let gap = gap.expect("gap-like");
        assert_eq!(gap.lost_events, Some(7));
        assert_eq!(gap.describe("G"), "7 audit events were lost between t1 and t2 (G)");
        let stopped = json!({"gap": {"lostEvents": 0, "firstLostAt": "t1", "lastLostAt": "t1",
                                      "lastHeardAt": "t3", "unknownUntil": "t4", "sender": "s1"}});
        let stopped = GapSummary::of(&stopped).expect("gap-like");
        assert!(stopped.is_loss(), "an unknown number may be lost");
        assert_eq!(
            stopped.describe("S"),
            "no audit event was counted as lost, and an unknown number after t3 until t4 (S)"
        );
        let resumed = GapSummary::of(&json!({"gap": {"lostEvents": 0, "firstLostAt": "t1", "lastLostAt": "t1"}}));
        assert!(!resumed.expect("gap-like").is_loss());
    }
}
