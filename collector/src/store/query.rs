//! What one `GET /audit` page asks a store for ([`TrailQuery`]: filters, direction, cursor,
//! size, the skip of a numbered page), the same for every store. Each store renders it as
//! its own SQL (`sqlite/page_sql.rs`, `postgres/page.rs`).

/// Which way a page walks the trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrailOrder {
    /// Commit order, oldest first (PactFlow's `sort=+timestamp`, the default).
    #[default]
    Ascending,
    /// Reverse commit order, newest first (PactFlow's `sort=-timestamp`).
    Descending,
}

impl TrailOrder {
    /// The seq range a walk in this order covers, before a numbered page's skip: from the
    /// cursor (a `from` uuid's seq) on, or, without one, from the first event at or after
    /// `since`. Both stores page with it, so they walk the same range.
    pub fn walk_bounds(self, cursor: Option<i64>, first_since: Option<i64>) -> (i64, i64) {
        match self {
            TrailOrder::Ascending => (cursor.or(first_since).unwrap_or(i64::MIN), i64::MAX),
            TrailOrder::Descending => (first_since.unwrap_or(i64::MIN), cursor.unwrap_or(i64::MAX)),
        }
    }
}

/// Predicates an event must satisfy to be on a page. `None` means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilters {
    /// Only events whose timestamp is at or after this (ms since the epoch).
    pub since_ms: Option<i64>,
    /// Only events whose timestamp is before this (ms since the epoch, exclusive).
    pub until_ms: Option<i64>,
    /// Only events of this `type`.
    pub event_type: Option<String>,
    /// Only events of this user id (`user_id`, or `db_user_id` as text).
    pub user_id: Option<String>,
    /// Only events with this `user_email`.
    pub user_email: Option<String>,
    /// Only requests with this method (upper case).
    pub method: Option<String>,
    /// Only responses with this status.
    pub status: Option<u16>,
}

/// One page request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrailQuery {
    /// The uuid of the first event of the page (inclusive), or `None` for the start.
    pub from: Option<String>,
    /// The events to keep.
    pub filters: EventFilters,
    /// The direction of the walk.
    pub order: TrailOrder,
    /// Events per page.
    pub size: usize,
    /// Events of the walk that come before the page (`(pageNumber - 1) × size`).
    pub skip: usize,
}
