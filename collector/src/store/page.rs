//! What a store answers to a page request ([`PageOutcome`]), the same for every store.

use serde_json::value::RawValue;

/// One page of stored events.
#[derive(Debug)]
pub struct PageRows {
    /// The events, in the page's order, as stored.
    pub events: Vec<Box<RawValue>>,
    /// The uuid of the event after the last one, when there is one.
    pub next: Option<String>,
}

/// What a page request found.
#[derive(Debug)]
pub enum PageOutcome {
    /// The page (possibly empty).
    Page(PageRows),
    /// `from` names no event the trail has ever held (as far as it remembers).
    UnknownFrom,
    /// `from` names an event retention has purged.
    ExpiredFrom,
}
