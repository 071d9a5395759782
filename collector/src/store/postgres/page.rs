//! `GET /audit` pages on PostgreSQL: the same keyset walk on `seq` as on SQLite, over the
//! sealed `events` table only, in one read-only REPEATABLE READ transaction so the cursor
//! lookup and the rows see one snapshot. The SQL text is made of fixed fragments; every
//! value from the request is a bound parameter.

use deadpool_postgres::Pool;
use serde_json::value::RawValue;
use tokio_postgres::types::ToSql;

use super::super::page::{PageOutcome, PageRows};
use super::super::query::{EventFilters, TrailOrder, TrailQuery};
use super::super::StoreError;
use crate::chain::served::with_chain_link;

/// The SQL of a page and its parameters: `$1` and `$2` are the seq bounds, the last one
/// the limit.
fn page_sql(filters: &EventFilters, order: TrailOrder) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let (predicates, values) = filter_predicates(filters, 2);
    let sql = format!(
        "SELECT uuid, body, seq, chain_prev, chain_hash FROM events WHERE seq BETWEEN $1 AND $2{predicates} \
         ORDER BY seq {} LIMIT ${}",
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

/// ` AND column = $n` for each filter, numbered after the `bound_before` parameters the
/// statement already has, and the values in that order. Every store query that filters as
/// `/audit` does (pages, activity) takes its predicates from here.
pub(super) fn filter_predicates(
    filters: &EventFilters,
    bound_before: usize,
) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut sql = String::new();
    let mut values: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut push = |clause: &str, value: Box<dyn ToSql + Sync + Send>| {
        values.push(value);
        sql.push_str(&format!(" AND {clause} ${}", values.len() + bound_before));
    };
    if let Some(event_type) = &filters.event_type {
        push("type =", Box::new(event_type.clone()));
    }
    if let Some(user_id) = &filters.user_id {
        push("user_id =", Box::new(user_id.clone()));
    }
    if let Some(email) = &filters.user_email {
        push("user_email =", Box::new(email.clone()));
    }
    if let Some(method) = &filters.method {
        push("method =", Box::new(method.clone()));
    }
    if let Some(status) = filters.status {
        push("status =", Box::new(i32::from(status)));
    }
    if let Some(since) = filters.since_ms {
        push("timestamp_ms >=", Box::new(since));
    }
    if let Some(until) = filters.until_ms {
        push("timestamp_ms <", Box::new(until));
    }
    (sql, values)
}

fn direction(order: TrailOrder) -> &'static str {
    match order {
        TrailOrder::Ascending => "ASC",
        TrailOrder::Descending => "DESC",
    }
}

/// The page `query` asks for.
pub async fn read_page(pool: &Pool, query: &TrailQuery) -> Result<PageOutcome, StoreError> {
    let mut client = pool.get().await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let cursor = match &query.from {
        None => None,
        Some(uuid) => match tx.query_opt("SELECT seq FROM events WHERE uuid = $1", &[uuid]).await? {
            Some(row) => Some(row.get::<_, i64>(0)),
            None => {
                let expired = tx
                    .query_opt(
                        "SELECT 1 FROM trail_uuids t WHERE t.uuid = $1
                           AND NOT EXISTS (SELECT 1 FROM unsequenced u WHERE u.uuid = t.uuid)",
                        &[uuid],
                    )
                    .await?
                    .is_some();
                return Ok(if expired { PageOutcome::ExpiredFrom } else { PageOutcome::UnknownFrom });
            }
        },
    };
    // As on SQLite: without a cursor, `since` moves the lower bound to the first event that
    // recent, so a recent `since` does not walk the whole trail.
    let first_since: Option<i64> = match (cursor, query.filters.since_ms) {
        (None, Some(since)) => {
            let row = tx.query_one("SELECT min(seq) FROM events WHERE timestamp_ms >= $1", &[&since]).await?;
            match row.get::<_, Option<i64>>(0) {
                Some(seq) => Some(seq),
                None => return Ok(PageOutcome::Page(PageRows { events: Vec::new(), next: None })),
            }
        }
        _ => None,
    };
    let (mut lower, mut upper) = query.order.walk_bounds(cursor, first_since);
    // As on SQLite: a numbered page starts `skip` events into the walk.
    if query.skip > 0 {
        let (sql, filter_values) = page_start_sql(&query.filters, query.order);
        let skip = i64::try_from(query.skip).unwrap_or(i64::MAX);
        let mut parameters: Vec<&(dyn ToSql + Sync)> = vec![&lower, &upper];
        parameters.extend(filter_values.iter().map(|value| value.as_ref() as &(dyn ToSql + Sync)));
        parameters.push(&skip);
        let start: Option<i64> = tx.query_opt(&sql, &parameters).await?.map(|row| row.get(0));
        match (start, query.order) {
            (None, _) => {
                tx.commit().await?;
                return Ok(PageOutcome::Page(PageRows { events: Vec::new(), next: None }));
            }
            (Some(seq), TrailOrder::Ascending) => lower = seq,
            (Some(seq), TrailOrder::Descending) => upper = seq,
        }
    }
    let limit = i64::try_from(query.size.saturating_add(1)).unwrap_or(i64::MAX);
    let (sql, filter_values) = page_sql(&query.filters, query.order);
    let mut parameters: Vec<&(dyn ToSql + Sync)> = vec![&lower, &upper];
    parameters.extend(filter_values.iter().map(|value| value.as_ref() as &(dyn ToSql + Sync)));
    parameters.push(&limit);
    let found = tx.query(&sql, &parameters).await?;
    tx.commit().await?;
    let mut rows = Vec::with_capacity(found.len());
    for row in &found {
        let uuid: String = row.get(0);
        let served = with_chain_link(row.get(1), row.get(2), row.get(3), row.get(4)).ok_or_else(|| {
            StoreError::CorruptEvent { uuid: uuid.clone(), reason: "its body or chain link is damaged".to_owned() }
        })?;
        rows.push((uuid, served));
    }
    let next = if rows.len() > query.size { rows.pop().map(|(uuid, _)| uuid) } else { None };
    let events = rows
        .into_iter()
        .map(|(uuid, body)| {
            RawValue::from_string(body).map_err(|error| StoreError::CorruptEvent { uuid, reason: error.to_string() })
        })
        .collect::<Result<_, _>>()?;
    Ok(PageOutcome::Page(PageRows { events, next }))
}
