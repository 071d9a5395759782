//! The SQLite SQL that answers a [`TrailQuery`](super::super::query::TrailQuery) (what one `GET /audit` page asks for).
//! Every page is a keyset query on `seq`:
//! `seq BETWEEN lower AND upper` plus the filter predicates, ordered by `seq` (ascending or
//! descending), `LIMIT size + 1`. The equality filters each have an index `(column, seq)`,
//! so whichever one SQLite picks serves both the WHERE and the ORDER BY; time bounds are
//! written `+timestamp_ms` so SQLite never trades the seq order for the timestamp index
//! (that would need a temporary sort). A numbered page (`pageNumber`) first finds its
//! first event with [`page_start_sql`], which walks an index reading `seq` values only,
//! then reads its rows like any page. `tests::every_filter_combination_uses_an_index`
//! runs `EXPLAIN QUERY PLAN` on every combination.

use rusqlite::types::Value;

use super::super::query::{Comparison, EventFilters, FilterValue, TrailOrder};

/// The SQL of a page and its parameters; `?1` and `?2` are the seq bounds and the last
/// parameter is the limit.
pub fn page_sql(filters: &EventFilters, order: TrailOrder) -> (String, Vec<Value>) {
    let (predicates, mut values) = filter_predicates(filters);
    // The last column: whether the path starts with `path_prefix`, compared as text (not
    // LIKE, so `%`, `_` and case mean themselves).
    let path_matches = match &filters.path_prefix {
        Some(prefix) => {
            values.push(Value::Text(prefix.clone()));
            let number = values.len() + 2;
            format!("substr(json_extract(body, '$.payload.path'), 1, length(?{number})) IS ?{number}")
        }
        None => "1".to_owned(),
    };
    let sql = format!(
        "SELECT uuid, body, seq, chain_prev, chain_hash, {path_matches} FROM events \
         WHERE seq BETWEEN ?1 AND ?2{predicates} ORDER BY seq {} LIMIT ?{}",
        order.sql(),
        values.len() + 3
    );
    (sql, values)
}

/// The SQL that finds where page N of a walk starts: the seq of the event `?offset` places
/// after the walk's first, between the same bounds (`?1`, `?2`) and under the same filters,
/// in the same order; the last parameter is the offset. It selects `seq` alone, so SQLite
/// walks an index and never reads an event: a `(column, seq)` index for an equality filter,
/// or `events_by_seq_time` without one (it also holds the timestamp the time bounds test).
/// With two equality filters, or one and a time bound, the other predicates read the rows
/// the index names.
pub fn page_start_sql(filters: &EventFilters, order: TrailOrder) -> (String, Vec<Value>) {
    let (predicates, values) = filter_predicates(filters);
    let sql = format!(
        "SELECT seq FROM events WHERE seq BETWEEN ?1 AND ?2{predicates} ORDER BY seq {} LIMIT 1 OFFSET ?{}",
        order.sql(),
        values.len() + 3
    );
    (sql, values)
}

/// ` AND column = ?n` for each of the filters' predicates, numbered from `?3`, and the
/// values in that order. A range (the time bounds) is written `+column`, which SQLite cannot
/// answer from an index: the walk's seq order must come from `seq` or a `(column, seq)`
/// index, never from a sort.
fn filter_predicates(filters: &EventFilters) -> (String, Vec<Value>) {
    let mut sql = String::new();
    let mut values: Vec<Value> = Vec::new();
    for predicate in filters.predicates() {
        values.push(match predicate.value {
            FilterValue::Text(text) => Value::Text(text),
            FilterValue::Status(status) => Value::Integer(i64::from(status)),
            FilterValue::Millis(millis) => Value::Integer(millis),
        });
        let unindexed = if predicate.comparison == Comparison::Equals { "" } else { "+" };
        let (column, operator, number) = (predicate.column, predicate.comparison.operator(), values.len() + 2);
        sql.push_str(&format!(" AND {unindexed}{column} {operator} ?{number}"));
    }
    (sql, values)
}

impl TrailOrder {
    fn sql(self) -> &'static str {
        match self {
            TrailOrder::Ascending => "ASC",
            TrailOrder::Descending => "DESC",
        }
    }
}

/// The first seq whose timestamp is at or after `since` (through `events_by_timestamp`):
/// the lowest seq a `since` page can start at. `NULL` when no event is that recent.
/// Pinned to that index: SQLite would otherwise walk `events_by_seq_time` from the
/// start until it met a recent enough event, which for a recent `since` is most of it.
pub const FIRST_SEQ_SINCE_SQL: &str =
    "SELECT min(seq) FROM events INDEXED BY events_by_timestamp WHERE timestamp_ms >= ?1";

/// The seq of a cursor uuid (through the uuid's unique index).
pub const SEQ_OF_UUID_SQL: &str = "SELECT seq FROM events WHERE uuid = ?1";

/// Whether retention purged this uuid (see `expired_events`).
pub const EXPIRED_UUID_SQL: &str = "SELECT 1 FROM expired_events WHERE uuid = ?1";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::schema::open_for_writing;

    fn all_filter_combinations() -> Vec<EventFilters> {
        (0u32..512)
            .map(|mask| {
                let on = |bit: u32| mask & (1 << bit) != 0;
                EventFilters {
                    since_ms: on(0).then_some(1),
                    until_ms: on(1).then_some(2),
                    event_type: on(2).then(|| "T".to_owned()),
                    user_id: on(3).then(|| "u".to_owned()),
                    user_email: on(4).then(|| "e@x".to_owned()),
                    method: on(5).then(|| "GET".to_owned()),
                    status: on(6).then_some(200),
                    user_name: on(7).then(|| "mallory".to_owned()),
                    // Read from the rows the walk finds, so it must not change the plan.
                    path_prefix: on(8).then(|| "/pacticipants/Foo".to_owned()),
                }
            })
            .collect()
    }

    fn plan(conn: &rusqlite::Connection, sql: &str, parameters: usize) -> Vec<String> {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut statement = conn.prepare(&explain).expect("the query prepares");
        let nulls = vec![Value::Null; parameters];
        let rows = statement
            .query_map(rusqlite::params_from_iter(nulls), |row| row.get::<_, String>(3))
            .expect("explain runs");
        rows.collect::<Result<_, _>>().expect("plan rows")
    }

    fn assert_indexed(sql: &str, plan: &[String]) {
        for step in plan {
            let full_scan = step.starts_with("SCAN events") && !step.contains("USING");
            assert!(!full_scan, "full table scan in\n{sql}\nplan: {plan:?}");
            assert!(!step.contains("TEMP B-TREE"), "temporary sort in\n{sql}\nplan: {plan:?}");
        }
    }

    #[test]
    fn every_filter_combination_uses_an_index_in_both_directions() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = open_for_writing(&dir.path().join("audit.db")).expect("open");
        for filters in all_filter_combinations() {
            for order in [TrailOrder::Ascending, TrailOrder::Descending] {
                let (sql, values) = page_sql(&filters, order);
                let steps = plan(&conn, &sql, values.len() + 3);
                assert_indexed(&sql, &steps);
                assert!(
                    steps.iter().any(|step| step.starts_with("SEARCH events")),
                    "the seq bounds are not a range search in\n{sql}\nplan: {steps:?}"
                );
            }
        }
        for sql in [FIRST_SEQ_SINCE_SQL, SEQ_OF_UUID_SQL, EXPIRED_UUID_SQL] {
            let steps = plan(&conn, sql, 1);
            assert_indexed(sql, &steps);
        }
    }

    #[test]
    fn a_page_start_walks_a_covering_index_unless_a_second_predicate_needs_the_row() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = open_for_writing(&dir.path().join("audit.db")).expect("open");
        for filters in all_filter_combinations() {
            let equality_filters = [
                filters.event_type.is_some(),
                filters.user_id.is_some(),
                filters.user_email.is_some(),
                filters.user_name.is_some(),
                filters.method.is_some(),
                filters.status.is_some(),
            ]
            .into_iter()
            .filter(|on| *on)
            .count();
            let time_bounds = filters.since_ms.is_some() || filters.until_ms.is_some();
            // SQLite reads the rows behind `events_by_user_name` (its plan never calls it
            // covering): a numbered page filtered by user name reads the skipped events' rows.
            let reads_only_an_index =
                filters.user_name.is_none() && (equality_filters == 0 || (equality_filters == 1 && !time_bounds));
            for order in [TrailOrder::Ascending, TrailOrder::Descending] {
                let (sql, values) = page_start_sql(&filters, order);
                let steps = plan(&conn, &sql, values.len() + 3);
                assert_indexed(&sql, &steps);
                if reads_only_an_index {
                    assert!(
                        steps.iter().any(|step| step.starts_with("SEARCH events USING COVERING INDEX")),
                        "the page start reads rows in\n{sql}\nplan: {steps:?}"
                    );
                }
            }
        }
    }

    /// Each equality filter alone is a range of its own `(column, seq)` index, for the page
    /// and for a numbered page's start, so dropping or renaming one fails here.
    #[test]
    fn each_equality_filter_reads_its_own_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = open_for_writing(&dir.path().join("audit.db")).expect("open");
        let text = || Some("x".to_owned());
        let filters = [
            ("type", EventFilters { event_type: text(), ..EventFilters::default() }),
            ("user_id", EventFilters { user_id: text(), ..EventFilters::default() }),
            ("user_email", EventFilters { user_email: text(), ..EventFilters::default() }),
            ("user_name", EventFilters { user_name: text(), ..EventFilters::default() }),
            ("method", EventFilters { method: text(), ..EventFilters::default() }),
            ("status", EventFilters { status: Some(200), ..EventFilters::default() }),
            ("seq_time", EventFilters::default()),
        ];
        for (column, filters) in filters {
            for order in [TrailOrder::Ascending, TrailOrder::Descending] {
                let (sql, values) = page_start_sql(&filters, order);
                let steps = plan(&conn, &sql, values.len() + 3).join("; ");
                assert!(steps.contains(&format!("INDEX events_by_{column} (")), "{column}: {steps}");
                if column != "seq_time" {
                    let (sql, values) = page_sql(&filters, order);
                    let steps = plan(&conn, &sql, values.len() + 3).join("; ");
                    assert!(steps.contains(&format!("INDEX events_by_{column} (")), "{column}: {steps}");
                }
            }
        }
    }

    #[test]
    fn the_first_seq_since_is_found_on_the_timestamp_index() {
        let dir = tempfile::tempdir().expect("temp dir");
        let conn = open_for_writing(&dir.path().join("audit.db")).expect("open");
        let steps = plan(&conn, FIRST_SEQ_SINCE_SQL, 1);
        assert!(steps.iter().any(|step| step.contains("events_by_timestamp")), "plan: {steps:?}");
    }

    #[test]
    fn parameters_follow_the_bounds_and_the_limit_comes_last() {
        let filters = EventFilters { event_type: Some("T".into()), status: Some(201), ..EventFilters::default() };
        let (sql, values) = page_sql(&filters, TrailOrder::Descending);
        assert_eq!(
            sql,
            "SELECT uuid, body, seq, chain_prev, chain_hash, 1 FROM events WHERE seq BETWEEN ?1 AND ?2 AND type = ?3 AND status = ?4 \
             ORDER BY seq DESC LIMIT ?5"
        );
        assert_eq!(values, vec![Value::Text("T".into()), Value::Integer(201)]);
        let prefixed = EventFilters { path_prefix: Some("/p".into()), ..filters };
        let (sql, values) = page_sql(&prefixed, TrailOrder::Descending);
        assert!(sql.contains("length(?5)) IS ?5 FROM") && sql.ends_with("LIMIT ?6"), "{sql}");
        assert_eq!(values.last(), Some(&Value::Text("/p".into())));
    }
}
