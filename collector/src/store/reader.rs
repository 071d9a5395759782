//! Reading the trail: a small pool of read-only connections, used from blocking tasks so
//! SQLite never stalls the async workers. Pages are keyset queries on `seq`: the cost of a
//! page does not grow with how far into the trail it is, and no page ever counts rows.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{params, Connection, OptionalExtension};
use serde_json::value::RawValue;
use tokio::sync::Semaphore;

use super::schema::open_for_reading;
use super::StoreError;
use crate::chain::served::with_chain_link;

/// Read queries running at once; more wait for a turn.
pub const MAX_READERS: usize = 4;

/// One page of stored events.
#[derive(Debug)]
pub struct PageRows {
    /// The events, in sequence order, as stored.
    pub events: Vec<Box<RawValue>>,
    /// The uuid of the event after the last one, when there is one.
    pub next: Option<String>,
}

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

    /// The page that starts at event `from` (or at the oldest event), at most `size` long;
    /// `None` when `from` is not in the trail.
    pub async fn page(&self, from: Option<String>, size: usize) -> Result<Option<PageRows>, StoreError> {
        self.with_connection(move |conn| read_page(conn, from.as_deref(), size)).await
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
pub fn read_page(conn: &mut Connection, from: Option<&str>, size: usize) -> Result<Option<PageRows>, StoreError> {
    let tx = conn.transaction()?;
    let start: i64 = match from {
        None => i64::MIN,
        Some(uuid) => {
            let seq = tx
                .prepare_cached("SELECT seq FROM events WHERE uuid = ?1")?
                .query_row([uuid], |row| row.get(0))
                .optional()?;
            match seq {
                Some(seq) => seq,
                None => return Ok(None),
            }
        }
    };
    // One row more than the page: if it exists, it is where the next page starts.
    let limit = i64::try_from(size.saturating_add(1)).unwrap_or(i64::MAX);
    let mut rows: Vec<(String, String)> = Vec::with_capacity(size.saturating_add(1).min(1024));
    {
        let mut select = tx.prepare_cached("SELECT uuid, body, seq, chain_prev, chain_hash FROM events WHERE seq >= ?1 ORDER BY seq LIMIT ?2")?;
        let mut found = select.query(params![start, limit])?;
        while let Some(row) = found.next()? {
            let (uuid, body): (String, String) = (row.get(0)?, row.get(1)?);
            // Each event is served with its chain link (`chain`), spliced in unparsed.
            let (seq, prev, hash): (i64, Option<Vec<u8>>, Option<Vec<u8>>) = (row.get(2)?, row.get(3)?, row.get(4)?);
            let served = match (prev, hash) {
                (Some(prev), Some(hash)) => with_chain_link(&body, seq, &prev, &hash).ok_or_else(|| {
                    StoreError::CorruptEvent { uuid: uuid.clone(), reason: "its body or chain link is damaged".to_owned() }
                })?,
                _ => body,
            };
            rows.push((uuid, served));
        }
    }
    tx.finish()?;
    let next = if rows.len() > size { rows.pop().map(|(uuid, _)| uuid) } else { None };
    let events = rows
        .into_iter()
        .map(|(uuid, body)| {
            RawValue::from_string(body).map_err(|error| StoreError::CorruptEvent { uuid, reason: error.to_string() })
        })
        .collect::<Result<_, _>>()?;
    Ok(Some(PageRows { events, next }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::open_for_writing;

    fn trail_of(count: usize) -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = open_for_writing(&dir.path().join("audit.db")).expect("open");
        for n in 0..count {
            conn.execute(
                "INSERT INTO events (uuid, timestamp_ms, type, method, ingested_at_ms, body)
                 VALUES (?1, 0, 'T', 'GET', 0, ?2)",
                params![format!("uuid-{n}"), format!(r#"{{"n":{n}}}"#)],
            )
            .expect("insert");
        }
        (dir, conn)
    }

    fn bodies(page: &PageRows) -> Vec<&str> {
        page.events.iter().map(|raw| raw.get()).collect()
    }

    #[test]
    fn a_full_page_names_the_event_that_starts_the_next() {
        let (_dir, mut conn) = trail_of(5);
        let page = read_page(&mut conn, None, 2).expect("read").expect("page");
        assert_eq!(bodies(&page), [r#"{"n":0}"#, r#"{"n":1}"#]);
        assert_eq!(page.next.as_deref(), Some("uuid-2"));
    }

    #[test]
    fn from_is_inclusive_and_the_last_page_has_no_next() {
        let (_dir, mut conn) = trail_of(5);
        let page = read_page(&mut conn, Some("uuid-3"), 2).expect("read").expect("page");
        assert_eq!(bodies(&page), [r#"{"n":3}"#, r#"{"n":4}"#]);
        assert_eq!(page.next, None);
    }

    #[test]
    fn an_unknown_from_is_not_an_empty_page() {
        let (_dir, mut conn) = trail_of(1);
        assert!(read_page(&mut conn, Some("missing"), 10).expect("read").is_none());
    }

    #[tokio::test]
    async fn the_pool_reads_through_read_only_connections() {
        let (dir, _conn) = trail_of(3);
        let readers = Readers::new(dir.path().join("audit.db"));
        readers.ping().await.expect("ping");
        let page = readers.page(Some("uuid-1".to_owned()), 100).await.expect("read").expect("page");
        assert_eq!(page.events.len(), 2);
    }
}
