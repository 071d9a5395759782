//! What an event says about the trust of its own inputs (audit-sidecar additions): identity
//! headers that came from a peer not trusted to set them, fields cut to their bound, and
//! the alerts a SOC can match on (an untrusted identity claim, invisible characters). A client can put anything in a request; these keys make
//! sure that what it tried is in the trail without ever becoming what the trail asserts.

use serde::{Deserialize, Serialize};

/// The alert of an event that carried identity headers from an untrusted peer: an attempt
/// to be recorded as someone else. The claims are in `untrusted_identity`.
pub const ALERT_UNTRUSTED_IDENTITY: &str = "untrusted_identity_header";

/// The alert of an event whose captured text holds a character a reader cannot see or that
/// reorders what is read: a control character, a bidi embedding, override, isolate or mark,
/// a zero-width or other format character, a line or paragraph separator. `admin` U+202E
/// `gnp.exe` reads as "admin" then "exe.png"; the value stays as sent (it is evidence), and
/// the viewer shows each such character as its code point.
pub const ALERT_INVISIBLE_CHARACTERS: &str = "invisible_characters";

/// The marker that ends a value cut to its bound: the value kept is a prefix of what was
/// sent, and the event lists the field in `truncated_fields`.
pub const TRUNCATION_MARKER: &str = "…[truncated]";

/// One identity header that arrived from a peer not trusted to set it: never the event's
/// identity, recorded so that the attempt, and whom it named, is visible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UntrustedClaim {
    /// The header name, lowercase (e.g. `x-forwarded-email`).
    pub header: String,
    /// The value it claimed, bounded like any captured field.
    pub value: String,
}

/// A field whose value was longer than its bound and was cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TruncatedField {
    /// The JSON path of the field in the event, e.g. `payload.userAgent`.
    pub field: String,
    /// How many bytes (UTF-8) the value had before it was cut.
    pub original_bytes: u64,
}
