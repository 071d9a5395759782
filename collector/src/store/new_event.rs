//! [`NewEvent`]: one validated event as every store inserts it (its indexed columns, the
//! body served as stored, and the canonical bytes its chain link hashes).

/// One validated event, ready to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The idempotency key.
    pub uuid: String,
    /// The event's timestamp, in milliseconds since the epoch.
    pub timestamp_ms: i64,
    /// The event `type`.
    pub event_type: String,
    /// PactFlow's numeric user id.
    pub db_user_id: Option<i64>,
    /// The user's email.
    pub user_email: Option<String>,
    /// What the `userUuid` filter matches: the event's `user_id`, else `db_user_id` as text.
    pub user_id: Option<String>,
    /// What the `user_name` filter matches: the event's top-level `user_name`.
    pub user_name: Option<String>,
    /// The request method.
    pub method: String,
    /// The response status, when known.
    pub status: Option<u16>,
    /// The event's canonical JSON, served as stored.
    pub body: String,
    /// The RFC 8785 form of `body` (`chain::canonical`), the bytes its chain link hashes.
    /// Built where the event was parsed, on the request's thread, so the one writer thread
    /// only runs SHA-256 over it.
    pub canonical: Vec<u8>,
}
