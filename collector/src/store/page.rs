//! How a page of the trail is read, once for every store: [`read_page`] runs the algorithm
//! over the few queries a store answers in its own SQL ([`PageQueries`]), inside one read
//! transaction so the cursor lookup and the rows agree.
//!
//! Every page is a keyset walk on `seq` (the commit order): `seq` between two bounds, the
//! filters' predicates, ordered by `seq`, one row more than the page (if it exists, it is
//! where the next page starts). The cost of a page does not grow with how far into the
//! trail it is, and no page ever counts rows. A numbered page (`pageNumber`) first finds its
//! start, `skip` events into the walk, on an index, reading `seq` values only.
//!
//! A `path_prefix` has no index: its page examines at most a bounded number of the walk's
//! events (the other filters still from their indexes), keeps those whose path matches,
//! and may be short, even empty. Its `next` is the first event it did not put on the page
//! (the next match, or the first event it did not examine), so following `next` still
//! visits every event of the walk once. Its numbered pages are refused: page N would need
//! every match before it counted, which is the unbounded scan this avoids.

use serde_json::value::RawValue;

use super::query::{EventFilters, TrailOrder, TrailQuery, PATH_PREFIX_EXAMINED};
use super::StoreError;
use crate::chain::served::with_chain_link;

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
    /// `from` names an event that was acknowledged and is not readable yet (PostgreSQL: it
    /// waits for the sealer to give it its place in the trail).
    NotYetReadableFrom,
}

/// A stored event as a page query returns it.
#[derive(Debug)]
pub struct StoredEvent {
    /// Its uuid (a cursor).
    pub uuid: String,
    /// Its body, as stored.
    pub body: String,
    /// Its place in the trail.
    pub seq: i64,
    /// The hash of the event before it in the chain.
    pub chain_prev: Vec<u8>,
    /// Its own chain hash.
    pub chain_hash: Vec<u8>,
    /// Whether its path starts with the query's `path_prefix` (true without one).
    pub path_matches: bool,
}

/// The part of the trail a walk covers: `seq` from `lower` to `upper`, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    /// The lowest seq.
    pub lower: i64,
    /// The highest seq.
    pub upper: i64,
}

/// The queries a page is made of; each store answers them in its own SQL, all in one read
/// transaction.
pub trait PageQueries {
    /// The seq of the event `uuid`, if the trail holds it.
    async fn seq_of(&mut self, uuid: &str) -> Result<Option<i64>, StoreError>;

    /// Whether retention purged the event `uuid` (as far as the trail remembers).
    async fn was_purged(&mut self, uuid: &str) -> Result<bool, StoreError>;

    /// Whether the event `uuid` was acknowledged and is not readable yet. Only a store that
    /// orders events after acknowledging them (PostgreSQL) has such events.
    async fn is_waiting(&mut self, _uuid: &str) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// The lowest seq of an event at or after `since_ms`, if any is that recent.
    async fn first_seq_since(&mut self, since_ms: i64) -> Result<Option<i64>, StoreError>;

    /// The seq of the event `skip` events after the first of the walk (`range`, `filters`,
    /// `order`), if the walk is that long.
    async fn seq_after(
        &mut self,
        range: SeqRange,
        filters: &EventFilters,
        order: TrailOrder,
        skip: i64,
    ) -> Result<Option<i64>, StoreError>;

    /// The first `limit` events of the walk, in its order.
    async fn events(
        &mut self,
        range: SeqRange,
        filters: &EventFilters,
        order: TrailOrder,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError>;
}

/// Reads the page `query` asks for through `store`'s queries.
pub async fn read_page(store: &mut impl PageQueries, query: &TrailQuery) -> Result<PageOutcome, StoreError> {
    let empty = || PageOutcome::Page(PageRows { events: Vec::new(), next: None });
    let cursor = match &query.from {
        None => None,
        Some(uuid) => match store.seq_of(uuid).await? {
            Some(seq) => Some(seq),
            None if store.was_purged(uuid).await? => return Ok(PageOutcome::ExpiredFrom),
            None if store.is_waiting(uuid).await? => return Ok(PageOutcome::NotYetReadableFrom),
            None => return Ok(PageOutcome::UnknownFrom),
        },
    };
    // Without a cursor, `since` also moves the lower bound to the first event that recent,
    // so a recent `since` does not walk the whole trail. With a cursor (a `next` link) the
    // cursor is already at or past it, and `since` stays a predicate.
    let first_since = match (cursor, query.filters.since_ms) {
        (None, Some(since)) => match store.first_seq_since(since).await? {
            Some(seq) => Some(seq),
            None => return Ok(empty()),
        },
        _ => None,
    };
    let (lower, upper) = query.order.walk_bounds(cursor, first_since);
    let mut range = SeqRange { lower, upper };
    if query.filters.path_prefix.is_some() {
        if query.skip > 0 {
            return Err(StoreError::Unsupported(
                "a numbered page (pageNumber) with path_prefix; follow `next` instead".to_owned(),
            ));
        }
        let examine = query.examine_at_most.unwrap_or(PATH_PREFIX_EXAMINED).max(1);
        let limit = i64::try_from(examine.saturating_add(1)).unwrap_or(i64::MAX);
        let rows = store.events(range, &query.filters, query.order, limit).await?;
        return examined_page(rows, examine, query.size);
    }
    // A numbered page starts `skip` events into the walk, so page N is exactly where
    // following `next` N-1 times would arrive.
    if query.skip > 0 {
        let skip = i64::try_from(query.skip).unwrap_or(i64::MAX);
        match (store.seq_after(range, &query.filters, query.order, skip).await?, query.order) {
            (None, _) => return Ok(empty()),
            (Some(seq), TrailOrder::Ascending) => range.lower = seq,
            (Some(seq), TrailOrder::Descending) => range.upper = seq,
        }
    }
    // One row more than the page: if it exists, it is where the next page starts.
    let limit = i64::try_from(query.size.saturating_add(1)).unwrap_or(i64::MAX);
    let mut rows = store.events(range, &query.filters, query.order, limit).await?;
    let next = if rows.len() > query.size { rows.pop().map(|row| row.uuid) } else { None };
    let events = rows.into_iter().map(served).collect::<Result<_, _>>()?;
    Ok(PageOutcome::Page(PageRows { events, next }))
}

/// The page of a `path_prefix` walk from its first `examine` events (and the one after
/// them, if any, where the next page resumes): the matches, up to `size`; `next` is the
/// match after them, else the first event not examined.
fn examined_page(rows: Vec<StoredEvent>, examine: usize, size: usize) -> Result<PageOutcome, StoreError> {
    let mut page = Vec::new();
    let mut next = None;
    for (position, row) in rows.into_iter().enumerate() {
        if position == examine || (row.path_matches && page.len() == size) {
            next = Some(row.uuid);
            break;
        }
        if row.path_matches {
            page.push(row);
        }
    }
    let events = page.into_iter().map(served).collect::<Result<_, _>>()?;
    Ok(PageOutcome::Page(PageRows { events, next }))
}

/// The event as a page serves it: with its chain link (`chain`) spliced in, unparsed.
fn served(row: StoredEvent) -> Result<Box<RawValue>, StoreError> {
    let StoredEvent { uuid, body, seq, chain_prev, chain_hash, .. } = row;
    let body = with_chain_link(&body, seq, &chain_prev, &chain_hash).ok_or_else(|| StoreError::CorruptEvent {
        uuid: uuid.clone(),
        reason: "its body or chain link is damaged".to_owned(),
    })?;
    RawValue::from_string(body).map_err(|error| StoreError::CorruptEvent { uuid, reason: error.to_string() })
}
