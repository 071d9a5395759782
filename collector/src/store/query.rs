//! What one `GET /audit` page asks a store for ([`TrailQuery`]: filters, direction, cursor,
//! size, the skip of a numbered page), the same for every store. The filters are written
//! once, as [`Predicate`]s ([`EventFilters::predicates`]); each store renders them in its
//! own SQL (`sqlite/page_sql.rs`, `postgres/page.rs`) and the page is read by one
//! algorithm (`page.rs`).

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
    /// Only events with this `user_name` (the basic-auth name, or a verified token's).
    pub user_name: Option<String>,
    /// Only requests with this method (upper case).
    pub method: Option<String>,
    /// Only responses with this status.
    pub status: Option<u16>,
    /// Only requests whose path (`payload.path`) starts with this, compared character for
    /// character (no wildcards). No index serves it: the page algorithm examines a bounded
    /// number of the walk's events per page ([`TrailQuery::examine_at_most`]), so it is not
    /// among [`EventFilters::predicates`].
    pub path_prefix: Option<String>,
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
    /// With a `path_prefix`: how many events of the walk a page examines at most (`None`:
    /// [`PATH_PREFIX_EXAMINED`]). A page that finds fewer matches among them is short and
    /// its `next` resumes right after the last one examined.
    pub examine_at_most: Option<usize>,
}

/// How many events of the walk a `path_prefix` page examines at most: what bounds the
/// work of a page no index serves (each examined event's body is read and its path
/// compared).
pub const PATH_PREFIX_EXAMINED: usize = 2000;

/// How a predicate compares its column with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `column = value`.
    Equals,
    /// `column >= value`.
    AtLeast,
    /// `column < value`.
    Below,
}

impl Comparison {
    /// The SQL operator (the same in SQLite and PostgreSQL).
    pub fn operator(self) -> &'static str {
        match self {
            Comparison::Equals => "=",
            Comparison::AtLeast => ">=",
            Comparison::Below => "<",
        }
    }
}

/// The value a predicate compares with, typed as its column is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterValue {
    /// A text column.
    Text(String),
    /// The response status (a 32-bit column in PostgreSQL).
    Status(u16),
    /// A time in milliseconds since the epoch.
    Millis(i64),
}

/// One condition an event must meet to be selected: `column comparison value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Predicate {
    /// The column of `events` (the same name in every store).
    pub column: &'static str,
    /// How it is compared.
    pub comparison: Comparison,
    /// With what.
    pub value: FilterValue,
}

impl EventFilters {
    /// The predicates these filters make, in a fixed order (the order of their parameters):
    /// the equality filters, then the time bounds. Every store query that filters as
    /// `/audit` does (pages, numbered pages' starts, PostgreSQL's activity) renders these.
    pub fn predicates(&self) -> Vec<Predicate> {
        let text = |column, value: &Option<String>| {
            value.as_ref().map(|value| Predicate {
                column,
                comparison: Comparison::Equals,
                value: FilterValue::Text(value.clone()),
            })
        };
        let time = |comparison, value: Option<i64>| {
            value.map(|millis| Predicate { column: "timestamp_ms", comparison, value: FilterValue::Millis(millis) })
        };
        [
            text("type", &self.event_type),
            text("user_id", &self.user_id),
            text("user_email", &self.user_email),
            text("user_name", &self.user_name),
            text("method", &self.method),
            self.status.map(|status| Predicate {
                column: "status",
                comparison: Comparison::Equals,
                value: FilterValue::Status(status),
            }),
            time(Comparison::AtLeast, self.since_ms),
            time(Comparison::Below, self.until_ms),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}
