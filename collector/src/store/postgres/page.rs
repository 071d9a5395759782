//! `GET /audit` pages on PostgreSQL: PostgreSQL's answers to the queries of the one page
//! algorithm (`store/page.rs`), over the sealed events only (`events` joined to their
//! `event_seals` row), in one read-only REPEATABLE READ transaction so the cursor lookup and
//! the rows see one snapshot. Seq order is position order (the sealer numbers positions in
//! order), so a walk between two seqs is a walk by position between theirs, through the
//! filters' `(column, position)` indexes; the positions above the last sealed one are not
//! walked. The SQL text is made of fixed fragments; every value from the request is a bound
//! parameter.

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
        "SELECT uuid, body, s.seq, s.chain_prev, s.chain_hash, {path_matches} \
         FROM events e JOIN event_seals s ON s.position = e.position \
         WHERE {POSITIONS_OF_SEQS}{predicates} ORDER BY e.position {} LIMIT ${}",
        direction(order),
        values.len() + 3
    );
    (sql, values)
}

/// The positions of the sealed events whose seq is between `$1` and `$2`: from the first
/// sealed at or after `$1` to the last sealed at or before `$2` (none when there is none).
const POSITIONS_OF_SEQS: &str = "e.position BETWEEN \
     (SELECT position FROM event_seals WHERE seq >= $1 ORDER BY seq LIMIT 1) \
     AND (SELECT position FROM event_seals WHERE seq <= $2 ORDER BY seq DESC LIMIT 1)";

/// Where page N of a walk starts (`pageNumber`): the seq `$last` events after the walk's
/// first, between the same bounds, under the same filters, in the same order.
fn page_start_sql(filters: &EventFilters, order: TrailOrder) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let (predicates, values) = filter_predicates(filters, 2);
    // The offset walks the filter's index alone; only the event found is looked up.
    let sql = format!(
        "SELECT seq FROM event_seals WHERE position = \
         (SELECT e.position FROM events e WHERE {POSITIONS_OF_SEQS}{predicates} \
          ORDER BY e.position {} LIMIT 1 OFFSET ${})",
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

impl PageQueries for PgPage<'_> {
    async fn seq_of(&mut self, uuid: &str) -> Result<Option<i64>, StoreError> {
        let row = self
            .tx
            .query_opt("SELECT s.seq FROM events e JOIN event_seals s USING (position) WHERE e.uuid = $1", &[&uuid])
            .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
    }

    /// A uuid the trail took (`trail_uuids`) that is not in `events` (sealed or waiting for
    /// its seal) went to retention.
    async fn was_purged(&mut self, uuid: &str) -> Result<bool, StoreError> {
        let found = self
            .tx
            .query_opt(
                "SELECT 1 FROM trail_uuids t WHERE t.uuid = $1
                   AND NOT EXISTS (SELECT 1 FROM events e WHERE e.uuid = t.uuid)",
                &[&uuid],
            )
            .await?;
        Ok(found.is_some())
    }

    async fn first_seq_since(&mut self, since_ms: i64) -> Result<Option<i64>, StoreError> {
        // The first sealed position that recent: every position up to the head's is sealed
        // (or a hole), none above it is.
        let row = self
            .tx
            .query_opt(
                "SELECT seq FROM event_seals WHERE position =
                   (SELECT min(position) FROM events
                    WHERE timestamp_ms >= $1 AND position <= (SELECT position FROM chain_head WHERE id = 1))",
                &[&since_ms],
            )
            .await?;
        Ok(row.map(|row| row.try_get(0)).transpose()?)
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
