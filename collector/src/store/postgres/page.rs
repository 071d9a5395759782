//! `GET /audit` pages on PostgreSQL: PostgreSQL's answers to the queries of the one page
//! algorithm (`store/page.rs`), over the sealed `events` table (a cursor's uuid found through
//! `trail_uuids`, which has its timestamp), in one read-only
//! REPEATABLE READ transaction so the cursor lookup and the rows see one snapshot. The SQL text is made of fixed fragments; every
//! value from the request is a bound parameter.

use deadpool_postgres::{Pool, Transaction};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::super::page::{self, PageOutcome, PageQueries, SeqRange, StoredEvent};
use super::super::query::{EventFilters, FilterValue, TrailOrder, TrailQuery};
use super::super::StoreError;

/// The SQL of a page and its parameters: `$1` and `$2` are the seq bounds, the last one
/// the limit.
fn page_sql(filters: &EventFilters, order: TrailOrder) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let (predicates, mut values) = filter_predicates(filters, 2);
    // The last column: whether the path starts with `path_prefix` (`starts_with`, not LIKE,
    // so `%`, `_` and case mean themselves).
    let path_matches = match &filters.path_prefix {
        Some(prefix) => {
            values.push(Box::new(prefix.clone()));
            let number = values.len() + 2;
            format!("coalesce(starts_with(body::json -> 'payload' ->> 'path', ${number}), false)")
        }
        None => "true".to_owned(),
    };
    let sql = format!(
        "SELECT uuid, body, seq, chain_prev, chain_hash, {path_matches} FROM events \
         WHERE seq BETWEEN $1 AND $2{predicates} ORDER BY seq {} LIMIT ${}",
        direction(order),
        values.len() + 3
    );
    (sql, values)
}

/// Where page N of a walk starts (`pageNumber`): the seq `$last` events after the walk's
/// first, between the same bounds, under the same filters, in the same order.
fn page_start_sql(filters: &EventFilters, order: TrailOrder) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let (predicates, values) = filter_predicates(filters, 2);
    let sql = format!(
        "SELECT seq FROM events WHERE seq BETWEEN $1 AND $2{predicates} ORDER BY seq {} LIMIT 1 OFFSET ${}",
        direction(order),
        values.len() + 3
    );
    (sql, values)
}

/// ` AND column = $n` for each of the filters' predicates, numbered after the
/// `bound_before` parameters the statement already has, and the values in that order.
/// Every store query that filters as `/audit` does (pages, activity) takes its predicates
/// from here.
pub(super) fn filter_predicates(
    filters: &EventFilters,
    bound_before: usize,
) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut sql = String::new();
    let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    for predicate in filters.predicates() {
        values.push(match predicate.value {
            FilterValue::Text(text) => Box::new(text),
            FilterValue::Status(status) => Box::new(i32::from(status)),
            FilterValue::Millis(millis) => Box::new(millis),
        });
        let (column, operator, number) =
            (predicate.column, predicate.comparison.operator(), values.len() + bound_before);
        sql.push_str(&format!(" AND {column} {operator} ${number}"));
    }
    (sql, values)
}

fn direction(order: TrailOrder) -> &'static str {
    match order {
        TrailOrder::Ascending => "ASC",
        TrailOrder::Descending => "DESC",
    }
}

/// The page `query` asks for ([`page::read_page`]).
pub async fn read_page(pool: &Pool, query: &TrailQuery) -> Result<PageOutcome, StoreError> {
    let mut client = pool.get().await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let outcome = page::read_page(&mut PgPage { tx: &tx }, query).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// The page's queries on PostgreSQL.
struct PgPage<'a> {
    tx: &'a Transaction<'a>,
}

impl PgPage<'_> {
    /// The rows of a walk's statement: the seq bounds, the filters' values, then `last`.
    async fn walk(
        &self,
        (sql, filter_values): (String, Vec<Box<dyn ToSql + Sync + Send>>),
        range: SeqRange,
        last: i64,
    ) -> Result<Vec<Row>, StoreError> {
        let mut parameters: Vec<&(dyn ToSql + Sync)> = vec![&range.lower, &range.upper];
        parameters.extend(filter_values.iter().map(|value| value.as_ref() as &(dyn ToSql + Sync)));
        parameters.push(&last);
        Ok(self.tx.query(&sql, &parameters).await?)
    }
}

/// The seq of a cursor's uuid: its timestamp from `trail_uuids`, then its row through the
/// timestamp index, keyed `(timestamp_ms, uuid)`.
const SEQ_OF_UUID_SQL: &str =
    "SELECT e.seq FROM trail_uuids t JOIN events e ON e.timestamp_ms = t.timestamp_ms AND e.uuid = t.uuid
                 WHERE t.uuid = $1";

impl PageQueries for PgPage<'_> {
    /// `events` has no index by uuid (version 9: `trail_uuids` keeps uuids unique): the
    /// uuid's timestamp, from `trail_uuids`, leads to its row through the timestamp index,
    /// whose key is `(timestamp_ms, uuid)`.
    /// Prepared once per connection: planning the join on every page cost more than its two
    /// index probes (a cursor page 12% slower than version 8's single probe, side by side).
    async fn seq_of(&mut self, uuid: &str) -> Result<Option<i64>, StoreError> {
        let statement = self.tx.prepare_cached(SEQ_OF_UUID_SQL).await?;
        let row = self.tx.query_opt(&statement, &[&uuid]).await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// A uuid the trail took (`trail_uuids`) that is no longer waiting to be sealed and is
    /// not in `events` went to retention.
    async fn was_purged(&mut self, uuid: &str) -> Result<bool, StoreError> {
        let found = self
            .tx
            .query_opt(
                "SELECT 1 FROM trail_uuids t WHERE t.uuid = $1
                   AND NOT EXISTS (SELECT 1 FROM unsequenced u WHERE u.uuid = t.uuid)",
                &[&uuid],
            )
            .await?;
        Ok(found.is_some())
    }

    /// Acknowledged and waiting in `unsequenced` for the sealer.
    async fn is_waiting(&mut self, uuid: &str) -> Result<bool, StoreError> {
        let found = self.tx.query_opt("SELECT 1 FROM unsequenced WHERE uuid = $1", &[&uuid]).await?;
        Ok(found.is_some())
    }

    async fn first_seq_since(&mut self, since_ms: i64) -> Result<Option<i64>, StoreError> {
        let row = self.tx.query_one("SELECT min(seq) FROM events WHERE timestamp_ms >= $1", &[&since_ms]).await?;
        Ok(row.try_get(0)?)
    }

    async fn seq_after(
        &mut self,
        range: SeqRange,
        filters: &EventFilters,
        order: TrailOrder,
        skip: i64,
    ) -> Result<Option<i64>, StoreError> {
        let rows = self.walk(page_start_sql(filters, order), range, skip).await?;
        Ok(rows.first().map(|row| row.try_get(0)).transpose()?)
    }

    async fn events(
        &mut self,
        range: SeqRange,
        filters: &EventFilters,
        order: TrailOrder,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = self.walk(page_sql(filters, order), range, limit).await?;
        rows.iter()
            .map(|row| {
                Ok(StoredEvent {
                    uuid: row.try_get(0)?,
                    body: row.try_get(1)?,
                    seq: row.try_get(2)?,
                    chain_prev: row.try_get(3)?,
                    chain_hash: row.try_get(4)?,
                    path_matches: row.try_get(5)?,
                })
            })
            .collect()
    }
}
