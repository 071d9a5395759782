//! Reading the trail: a small pool of read-only connections, used from blocking tasks so
//! SQLite never stalls the async workers. Pages are keyset queries on `seq` (the SQL is in
//! [`super::page_sql`]): the cost of a page does not grow with how far into the trail
//! it is, and no page ever counts rows. A numbered page (`pageNumber`) adds one walk over
//! an index to find its start, which grows with its number and never reads an event.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OptionalExtension};
use serde_json::value::RawValue;
use tokio::sync::Semaphore;

use super::super::page::{PageOutcome, PageRows};
use super::super::query::{TrailOrder, TrailQuery};
use super::super::StoreError;
use super::page_sql::{page_sql, page_start_sql, EXPIRED_UUID_SQL, FIRST_SEQ_SINCE_SQL, SEQ_OF_UUID_SQL};
use super::schema::open_for_reading;
use crate::chain::served::with_chain_link;

/// Read queries running at once; more wait for a turn.
pub const MAX_READERS: usize = 4;

/// The pool of read connections; cheap to clone.
#[derive(Clone)]
pub struct Readers {
    inner: Arc<Pool>,
}

struct Pool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    turns: Semaphore,
}

impl Readers {
    /// A pool for the database at `path` (prepared by the writer before any read).
    pub fn new(path: PathBuf) -> Readers {
        let pool = Pool { path, idle: Mutex::new(Vec::new()), turns: Semaphore::new(MAX_READERS) };
        Readers { inner: Arc::new(pool) }
    }

    /// The page `query` asks for.
    pub async fn page(&self, query: TrailQuery) -> Result<PageOutcome, StoreError> {
        self.with_connection(move |conn| read_page(conn, &query)).await
    }

    /// Runs `work` on a read connection (for the token lookup and other small reads).
    pub async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.with_connection(move |conn| work(conn)).await
    }

    /// Succeeds when the database answers a query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.with_connection(|conn| {
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
            Ok(())
        })
        .await
    }

    async fn with_connection<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let _turn = self.inner.turns.acquire().await.map_err(|error| StoreError::Task(error.to_string()))?;
        let pool = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let idle = pool.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let mut conn = match idle {
                Some(conn) => conn,
                None => open_for_reading(&pool.path)?,
            };
            let result = work(&mut conn);
            // A connection whose query failed is dropped rather than reused, in case it is
            // the connection that is broken.
            if result.is_ok() {
                pool.idle.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
            }
            result
        })
        .await
        .map_err(|error| StoreError::Task(error.to_string()))?
    }
}

/// Reads one page in one read transaction, so the cursor lookup and the rows agree.
pub fn read_page(conn: &mut Connection, query: &TrailQuery) -> Result<PageOutcome, StoreError> {
    let tx = conn.transaction()?;
    let cursor = match &query.from {
        None => None,
        Some(uuid) => {
            let seq: Option<i64> =
                tx.prepare_cached(SEQ_OF_UUID_SQL)?.query_row([uuid], |row| row.get(0)).optional()?;
            match seq {
                Some(seq) => Some(seq),
                None => {
                    let expired = tx.prepare_cached(EXPIRED_UUID_SQL)?.exists([uuid])?;
                    return Ok(if expired { PageOutcome::ExpiredFrom } else { PageOutcome::UnknownFrom });
                }
            }
        }
    };
    // Without a cursor, `since` also moves the lower bound to the first event that recent,
    // so a recent `since` does not walk the whole trail. With a cursor (a `next` link) the
    // cursor is already at or past it, and `since` stays a predicate.
    let first_since: Option<i64> = match (cursor, query.filters.since_ms) {
        (None, Some(since)) => {
            match tx.prepare_cached(FIRST_SEQ_SINCE_SQL)?.query_row([since], |row| row.get::<_, Option<i64>>(0))? {
                Some(seq) => Some(seq),
                None => return Ok(PageOutcome::Page(PageRows { events: Vec::new(), next: None })),
            }
        }
        _ => None,
    };
    let (mut lower, mut upper) = query.order.walk_bounds(cursor, first_since);
    // A numbered page starts `skip` events into the walk: found on an index, reading seq
    // values only, so page N is exactly where following `next` N-1 times would arrive.
    if query.skip > 0 {
        let (sql, filter_values) = page_start_sql(&query.filters, query.order);
        let mut values = vec![Value::Integer(lower), Value::Integer(upper)];
        values.extend(filter_values);
        values.push(Value::Integer(i64::try_from(query.skip).unwrap_or(i64::MAX)));
        let start: Option<i64> =
            tx.prepare_cached(&sql)?.query_row(params_from_iter(values), |row| row.get(0)).optional()?;
        match (start, query.order) {
            (None, _) => return Ok(PageOutcome::Page(PageRows { events: Vec::new(), next: None })),
            (Some(seq), TrailOrder::Ascending) => lower = seq,
            (Some(seq), TrailOrder::Descending) => upper = seq,
        }
    }
    // One row more than the page: if it exists, it is where the next page starts.
    let limit = i64::try_from(query.size.saturating_add(1)).unwrap_or(i64::MAX);
    let (sql, filter_values) = page_sql(&query.filters, query.order);
    let mut values = vec![Value::Integer(lower), Value::Integer(upper)];
    values.extend(filter_values);
    values.push(Value::Integer(limit));
    let mut rows: Vec<(String, String)> = Vec::with_capacity(query.size.saturating_add(1).min(1024));
    {
        let mut select = tx.prepare_cached(&sql)?;
        let mut found = select.query(params_from_iter(values))?;
        while let Some(row) = found.next()? {
            let (uuid, body): (String, String) = (row.get(0)?, row.get(1)?);
            // Each event is served with its chain link (`chain`), spliced in unparsed.
            let (seq, prev, hash): (i64, Option<Vec<u8>>, Option<Vec<u8>>) = (row.get(2)?, row.get(3)?, row.get(4)?);
            let served = match (prev, hash) {
                (Some(prev), Some(hash)) => {
                    with_chain_link(&body, seq, &prev, &hash).ok_or_else(|| StoreError::CorruptEvent {
                        uuid: uuid.clone(),
                        reason: "its body or chain link is damaged".to_owned(),
                    })?
                }
                _ => body,
            };
            rows.push((uuid, served));
        }
    }
    tx.finish()?;
    let next = if rows.len() > query.size { rows.pop().map(|(uuid, _)| uuid) } else { None };
    let events = rows
        .into_iter()
        .map(|(uuid, body)| {
            RawValue::from_string(body).map_err(|error| StoreError::CorruptEvent { uuid, reason: error.to_string() })
        })
        .collect::<Result<_, _>>()?;
    Ok(PageOutcome::Page(PageRows { events, next }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_support::unlinked_trail;

    fn query(from: Option<&str>, size: usize) -> TrailQuery {
        TrailQuery { from: from.map(str::to_owned), size, ..TrailQuery::default() }
    }

    fn page_of(outcome: PageOutcome) -> PageRows {
        match outcome {
            PageOutcome::Page(rows) => rows,
            other => panic!("expected a page, got {other:?}"),
        }
    }

    fn bodies(page: &PageRows) -> Vec<&str> {
        page.events.iter().map(|raw| raw.get()).collect()
    }

    #[test]
    fn a_full_page_names_the_event_that_starts_the_next() {
        let (_dir, mut conn) = unlinked_trail(5);
        let page = page_of(read_page(&mut conn, &query(None, 2)).expect("read"));
        assert_eq!(bodies(&page), [r#"{"n":0}"#, r#"{"n":1}"#]);
        assert_eq!(page.next.as_deref(), Some("uuid-2"));
    }

    #[test]
    fn from_is_inclusive_and_the_last_page_has_no_next() {
        let (_dir, mut conn) = unlinked_trail(5);
        let page = page_of(read_page(&mut conn, &query(Some("uuid-3"), 2)).expect("read"));
        assert_eq!(bodies(&page), [r#"{"n":3}"#, r#"{"n":4}"#]);
        assert_eq!(page.next, None);
    }

    #[test]
    fn an_unknown_from_is_not_an_empty_page() {
        let (_dir, mut conn) = unlinked_trail(1);
        let outcome = read_page(&mut conn, &query(Some("missing"), 10)).expect("read");
        assert!(matches!(outcome, PageOutcome::UnknownFrom), "{outcome:?}");
    }

    #[test]
    fn a_purged_from_is_expired_not_unknown() {
        let (_dir, mut conn) = unlinked_trail(3);
        // As the retention purge does it: events can be deleted only while it runs.
        conn.execute_batch("UPDATE purge_guard SET purging = 1; DELETE FROM events WHERE uuid = 'uuid-0';")
            .expect("purge one");
        let outcome = read_page(&mut conn, &query(Some("uuid-0"), 10)).expect("read");
        assert!(matches!(outcome, PageOutcome::ExpiredFrom), "{outcome:?}");
    }

    #[test]
    fn descending_pages_walk_back_from_the_cursor() {
        let (_dir, mut conn) = unlinked_trail(5);
        let mut newest_first = query(None, 2);
        newest_first.order = TrailOrder::Descending;
        let page = page_of(read_page(&mut conn, &newest_first).expect("read"));
        assert_eq!(bodies(&page), [r#"{"n":4}"#, r#"{"n":3}"#]);
        assert_eq!(page.next.as_deref(), Some("uuid-2"));
        newest_first.from = page.next;
        let page = page_of(read_page(&mut conn, &newest_first).expect("read"));
        assert_eq!(bodies(&page), [r#"{"n":2}"#, r#"{"n":1}"#]);
    }

    #[test]
    fn a_numbered_page_starts_where_the_walk_would_and_past_the_end_is_empty() {
        let (_dir, mut conn) = unlinked_trail(7);
        for (order, from, expected) in [
            (TrailOrder::Ascending, None, [r#"{"n":4}"#, r#"{"n":5}"#]),
            (TrailOrder::Descending, None, [r#"{"n":2}"#, r#"{"n":1}"#]),
            (TrailOrder::Ascending, Some("uuid-1"), [r#"{"n":5}"#, r#"{"n":6}"#]),
            (TrailOrder::Descending, Some("uuid-5"), [r#"{"n":1}"#, r#"{"n":0}"#]),
        ] {
            let third = TrailQuery { order, skip: 4, ..query(from, 2) };
            let page = page_of(read_page(&mut conn, &third).expect("read"));
            assert_eq!(bodies(&page), expected, "{order:?} from {from:?}");
        }
        let past_the_end = TrailQuery { skip: 7, ..query(None, 2) };
        let page = page_of(read_page(&mut conn, &past_the_end).expect("read"));
        assert!(page.events.is_empty() && page.next.is_none(), "{page:?}");
    }

    #[tokio::test]
    async fn the_pool_reads_through_read_only_connections() {
        let (dir, _conn) = unlinked_trail(3);
        let readers = Readers::new(dir.path().join("audit.db"));
        readers.ping().await.expect("ping");
        let page = page_of(readers.page(query(Some("uuid-1"), 100)).await.expect("read"));
        assert_eq!(page.events.len(), 2);
    }
}
