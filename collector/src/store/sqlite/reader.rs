//! Reading the trail: a small pool of read-only connections, used from blocking tasks so
//! SQLite never stalls the async workers, and SQLite's answers to the queries of the one
//! page algorithm (`store/page.rs`), in the SQL of [`super::page_sql`].

use std::future::Future;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};

use rusqlite::types::Value;
use rusqlite::{params_from_iter, Connection, OptionalExtension, Transaction};
use tokio::sync::Semaphore;

use super::super::page::{self, PageOutcome, PageQueries, SeqRange, StoredEvent};
use super::super::query::{EventFilters, TrailOrder, TrailQuery};
use super::super::StoreError;
use super::page_sql::{page_sql, page_start_sql, EXPIRED_UUID_SQL, FIRST_SEQ_SINCE_SQL, SEQ_OF_UUID_SQL};
use super::schema::open_for_reading;

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

/// Reads one page ([`page::read_page`]) in one read transaction, so the cursor lookup and
/// the rows agree.
pub fn read_page(conn: &mut Connection, query: &TrailQuery) -> Result<PageOutcome, StoreError> {
    let tx = conn.transaction()?;
    let outcome = answered_at_once(page::read_page(&mut SqlitePage { tx: &tx }, query))?;
    tx.finish()?;
    Ok(outcome)
}

/// The result of a future that never waits. SQLite answers each of the page's queries on
/// this thread before it returns, so the shared (async) page algorithm completes on its
/// first poll; it never sees PostgreSQL's network waits.
fn answered_at_once<T>(work: impl Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    match pin!(work).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(StoreError::Task("a SQLite page query waited, which it never does".to_owned())),
    }
}

/// The page's queries on SQLite, in the SQL of [`super::page_sql`].
struct SqlitePage<'a> {
    tx: &'a Transaction<'a>,
}

/// The parameters of a walk's statement: the seq bounds, the filters' values, then `last`.
fn walk_parameters(range: SeqRange, filter_values: Vec<Value>, last: i64) -> Vec<Value> {
    let mut values = vec![Value::Integer(range.lower), Value::Integer(range.upper)];
    values.extend(filter_values);
    values.push(Value::Integer(last));
    values
}

impl PageQueries for SqlitePage<'_> {
    async fn seq_of(&mut self, uuid: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.tx.prepare_cached(SEQ_OF_UUID_SQL)?.query_row([uuid], |row| row.get(0)).optional()?)
    }

    async fn was_purged(&mut self, uuid: &str) -> Result<bool, StoreError> {
        Ok(self.tx.prepare_cached(EXPIRED_UUID_SQL)?.exists([uuid])?)
    }

    async fn first_seq_since(&mut self, since_ms: i64) -> Result<Option<i64>, StoreError> {
        Ok(self.tx.prepare_cached(FIRST_SEQ_SINCE_SQL)?.query_row([since_ms], |row| row.get(0))?)
    }

    async fn seq_after(
        &mut self,
        range: SeqRange,
        filters: &EventFilters,
        order: TrailOrder,
        skip: i64,
    ) -> Result<Option<i64>, StoreError> {
        let (sql, filter_values) = page_start_sql(filters, order);
        let values = walk_parameters(range, filter_values, skip);
        Ok(self.tx.prepare_cached(&sql)?.query_row(params_from_iter(values), |row| row.get(0)).optional()?)
    }

    async fn events(
        &mut self,
        range: SeqRange,
        filters: &EventFilters,
        order: TrailOrder,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let (sql, filter_values) = page_sql(filters, order);
        let values = walk_parameters(range, filter_values, limit);
        let mut select = self.tx.prepare_cached(&sql)?;
        let mut found = select.query(params_from_iter(values))?;
        let mut rows = Vec::with_capacity(usize::try_from(limit).unwrap_or(usize::MAX).min(1024));
        while let Some(row) = found.next()? {
            let uuid: String = row.get(0)?;
            // Every event is stored with its link (`schema.rs` refuses a trail that has one
            // without), so a missing one is damage, not an old event.
            let (Some(chain_prev), Some(chain_hash)) = (row.get(3)?, row.get(4)?) else {
                return Err(StoreError::CorruptEvent { uuid, reason: "it has no chain link".to_owned() });
            };
            let (body, seq, path_matches) = (row.get(1)?, row.get(2)?, row.get(5)?);
            rows.push(StoredEvent { uuid, body, seq, chain_prev, chain_hash, path_matches });
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::page::PageRows;
    use crate::store::test_support::trail;

    fn query(from: Option<&str>, size: usize) -> TrailQuery {
        TrailQuery { from: from.map(str::to_owned), size, ..TrailQuery::default() }
    }

    fn page_of(outcome: PageOutcome) -> PageRows {
        match outcome {
            PageOutcome::Page(rows) => rows,
            other => panic!("expected a page, got {other:?}"),
        }
    }

    /// The `n` of each event of the page, in its order.
    fn numbers(page: &PageRows) -> Vec<u64> {
        page.events
            .iter()
            .map(|raw| serde_json::from_str::<serde_json::Value>(raw.get()).expect("json")["n"].as_u64().expect("n"))
            .collect()
    }

    #[test]
    fn a_full_page_names_the_event_that_starts_the_next() {
        let (_dir, mut conn) = trail(5);
        let page = page_of(read_page(&mut conn, &query(None, 2)).expect("read"));
        assert_eq!(numbers(&page), [0, 1]);
        assert_eq!(page.next.as_deref(), Some("event-2"));
    }

    #[test]
    fn from_is_inclusive_and_the_last_page_has_no_next() {
        let (_dir, mut conn) = trail(5);
        let page = page_of(read_page(&mut conn, &query(Some("event-3"), 2)).expect("read"));
        assert_eq!(numbers(&page), [3, 4]);
        assert_eq!(page.next, None);
    }

    #[test]
    fn an_unknown_from_is_not_an_empty_page() {
        let (_dir, mut conn) = trail(1);
        let outcome = read_page(&mut conn, &query(Some("missing"), 10)).expect("read");
        assert!(matches!(outcome, PageOutcome::UnknownFrom), "{outcome:?}");
    }

    #[test]
    fn a_purged_from_is_expired_not_unknown() {
        let (_dir, mut conn) = trail(3);
        // As the retention purge does it: events can be deleted only while it runs.
        conn.execute_batch("UPDATE purge_guard SET purging = 1; DELETE FROM events WHERE uuid = 'event-0';")
            .expect("purge one");
        let outcome = read_page(&mut conn, &query(Some("event-0"), 10)).expect("read");
        assert!(matches!(outcome, PageOutcome::ExpiredFrom), "{outcome:?}");
    }

    #[test]
    fn descending_pages_walk_back_from_the_cursor() {
        let (_dir, mut conn) = trail(5);
        let mut newest_first = query(None, 2);
        newest_first.order = TrailOrder::Descending;
        let page = page_of(read_page(&mut conn, &newest_first).expect("read"));
        assert_eq!(numbers(&page), [4, 3]);
        assert_eq!(page.next.as_deref(), Some("event-2"));
        newest_first.from = page.next;
        let page = page_of(read_page(&mut conn, &newest_first).expect("read"));
        assert_eq!(numbers(&page), [2, 1]);
    }

    #[test]
    fn a_numbered_page_starts_where_the_walk_would_and_past_the_end_is_empty() {
        let (_dir, mut conn) = trail(7);
        for (order, from, expected) in [
            (TrailOrder::Ascending, None, [4, 5]),
            (TrailOrder::Descending, None, [2, 1]),
            (TrailOrder::Ascending, Some("event-1"), [5, 6]),
            (TrailOrder::Descending, Some("event-5"), [1, 0]),
        ] {
            let third = TrailQuery { order, skip: 4, ..query(from, 2) };
            let page = page_of(read_page(&mut conn, &third).expect("read"));
            assert_eq!(numbers(&page), expected, "{order:?} from {from:?}");
        }
        let past_the_end = TrailQuery { skip: 7, ..query(None, 2) };
        let page = page_of(read_page(&mut conn, &past_the_end).expect("read"));
        assert!(page.events.is_empty() && page.next.is_none(), "{page:?}");
    }

    /// Event `n` of [`mixed_trail`]: its method and status, some values frequent (GET, PUT,
    /// 200), some rare (DELETE, 404), some never stored (PATCH, 201).
    fn method_and_status(n: usize) -> (&'static str, Option<u16>) {
        let method = if n % 17 == 3 {
            "DELETE"
        } else if n.is_multiple_of(2) {
            "GET"
        } else {
            "PUT"
        };
        let status = if n % 13 == 5 {
            Some(404)
        } else if n.is_multiple_of(3) {
            None
        } else {
            Some(200)
        };
        (method, status)
    }

    /// A trail of `count` events with the methods and statuses of [`method_and_status`].
    fn mixed_trail(count: usize) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut conn = crate::store::sqlite::schema::open_for_writing(&dir.path().join("audit.db")).expect("open");
        let events: Vec<_> = (0..count)
            .map(|n| {
                let (method, status) = method_and_status(n);
                let event = crate::store::test_support::new_event(n, 0);
                crate::store::NewEvent { method: method.to_owned(), status, ..event }
            })
            .collect();
        let mut tx = conn.transaction().expect("begin");
        crate::store::sqlite::write_sql::insert_batch(&mut tx, &events, 0).expect("insert");
        tx.commit().expect("commit");
        (dir, conn)
    }

    /// Method and status filters, alone and together, frequent and rare values: following
    /// `next` across many pages, in both orders, and every numbered page, each filter visits
    /// exactly its events in seq order (a schema that serves these values differently, as
    /// the partial indexes measured on 2026-12-05 did, must keep this).
    #[test]
    fn frequent_and_rare_method_and_status_filters_page_through_exactly_their_events() {
        let count = 400;
        let (_dir, mut conn) = mixed_trail(count);
        let filters = [
            EventFilters { method: Some("GET".into()), ..EventFilters::default() },
            EventFilters { method: Some("DELETE".into()), ..EventFilters::default() },
            EventFilters { status: Some(200), ..EventFilters::default() },
            EventFilters { status: Some(404), ..EventFilters::default() },
            EventFilters { method: Some("PUT".into()), status: Some(200), ..EventFilters::default() },
            EventFilters { method: Some("DELETE".into()), status: Some(200), ..EventFilters::default() },
            EventFilters { method: Some("GET".into()), status: Some(404), ..EventFilters::default() },
            EventFilters { method: Some("PATCH".into()), ..EventFilters::default() },
            EventFilters { status: Some(201), ..EventFilters::default() },
        ];
        for filters in filters {
            let selected = |n: &usize| {
                let (method, status) = method_and_status(*n);
                filters.method.as_deref().is_none_or(|wanted| wanted == method)
                    && filters.status.is_none_or(|wanted| Some(wanted) == status)
            };
            let ascending: Vec<u64> = (0..count).filter(selected).map(|n| n as u64).collect();
            for order in [TrailOrder::Ascending, TrailOrder::Descending] {
                let mut expected = ascending.clone();
                if order == TrailOrder::Descending {
                    expected.reverse();
                }
                let size = 7;
                let walk = TrailQuery { filters: filters.clone(), order, ..query(None, size) };
                let (mut seen, mut next, mut pages) = (Vec::new(), None, 0);
                loop {
                    let page = page_of(read_page(&mut conn, &TrailQuery { from: next, ..walk.clone() }).expect("read"));
                    let numbered = TrailQuery { skip: pages * size, ..walk.clone() };
                    let by_number = page_of(read_page(&mut conn, &numbered).expect("read"));
                    assert_eq!(numbers(&by_number), numbers(&page), "{filters:?} {order:?} page {pages}");
                    seen.extend(numbers(&page));
                    pages += 1;
                    next = page.next;
                    if next.is_none() {
                        break;
                    }
                }
                assert_eq!(seen, expected, "{filters:?} {order:?}");
                assert!(expected.is_empty() || pages >= expected.len() / size, "{filters:?}: {pages} pages");
            }
        }
    }

    #[tokio::test]
    async fn the_pool_reads_through_read_only_connections() {
        let (dir, _conn) = trail(3);
        let readers = Readers::new(dir.path().join("audit.db"));
        readers.ping().await.expect("ping");
        let page = page_of(readers.page(query(Some("event-1"), 100)).await.expect("read"));
        assert_eq!(page.events.len(), 2);
    }
}
