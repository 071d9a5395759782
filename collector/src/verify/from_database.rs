//! Verifying a database file (or any open connection to one, such as an in-memory copy):
//! the checkpoints table, then every event in seq order, then the retention anchor row.
//! Besides the chain, the columns `GET /audit` filters on (uuid, type, user, method,
//! status, timestamp) must agree with each event's body, since a page is selected by them.
//! Nothing is written: the file may be a read-only copy.

use audit_event::chain::Checkpoint;
use audit_event::AuditEvent;
use rusqlite::Connection;
use serde::Deserialize as _;

use super::problem::TrailProblem;
use super::report::TrailReport;
use super::walk::{check_checkpoints, ChainWalker, TrailEvent};
use super::VerifyError;
use crate::batch::indexed_columns;
use crate::chain::canonical::canonical_json;
use crate::chain::link::{digest_from_blob, to_hex};
use crate::chain::signing::TrailVerifier;
use crate::store::sqlite::chain_store::read_checkpoints;

/// Verifies the trail in `conn` against `key`.
pub fn verify_database(conn: &Connection, key: &TrailVerifier) -> Result<TrailReport, VerifyError> {
    let read = |error: crate::store::StoreError| VerifyError::Read(error.to_string());
    let checkpoints = read_checkpoints(conn, i64::MIN, usize::MAX).map_err(read)?;
    check_checkpoints(&checkpoints, key)?;
    let mut walker = ChainWalker::new(&checkpoints);
    let sql_error = |error: rusqlite::Error| VerifyError::Read(error.to_string());
    let mut select = conn
        .prepare(
            "SELECT seq, uuid, timestamp_ms, type, db_user_id, user_email, method, status, body, chain_prev, chain_hash,
                    user_id, user_name
             FROM events ORDER BY seq",
        )
        .map_err(sql_error)?;
    let mut rows = select.query([]).map_err(sql_error)?;
    while let Some(row) = rows.next().map_err(sql_error)? {
        let seq: i64 = row.get(0).map_err(sql_error)?;
        let body: String = row.get(8).map_err(sql_error)?;
        let blob = |index: usize| {
            row.get::<_, Option<Vec<u8>>>(index).ok().flatten().and_then(|bytes| digest_from_blob(&bytes))
        };
        let value: serde_json::Value = serde_json::from_str(&body)
            .map_err(|error| TrailProblem::Unreadable { seq, detail: format!("the body is not JSON: {error}") })?;
        let event = TrailEvent { seq, prev_hash: blob(9), hash: blob(10), canonical: canonical_json(&value) };
        walker.next(&event)?;
        check_columns(&|index| row.get::<_, rusqlite::types::Value>(index).ok(), seq, &value)?;
    }
    let report = walker.finish()?;
    check_anchor_row(conn, checkpoints.last())?;
    Ok(report)
}

/// The filtered-on columns must be what the body says. `stored(index)` is the value of
/// column `index` of `SELECT seq, uuid, timestamp_ms, type, db_user_id, user_email, method,
/// status, body, chain_prev, chain_hash, user_id, user_name` (as SQLite types, whichever the store).
pub fn check_columns(
    stored: &dyn Fn(usize) -> Option<rusqlite::types::Value>,
    seq: i64,
    body: &serde_json::Value,
) -> Result<(), TrailProblem> {
    let unreadable = |detail: String| TrailProblem::Unreadable { seq, detail };
    let event = AuditEvent::deserialize(body).map_err(|error| unreadable(format!("not an audit event: {error}")))?;
    let expected =
        indexed_columns(0, &event).map_err(|error| unreadable(format!("not a valid audit event: {error}")))?;
    let column = |index: usize| -> String {
        stored(index).map_or_else(|| "an unreadable value".to_owned(), |value| format!("{value:?}"))
    };
    use rusqlite::types::Value as Sql;
    let checks: [(&'static str, usize, Sql); 9] = [
        ("uuid", 1, Sql::Text(expected.uuid)),
        ("timestamp_ms", 2, Sql::Integer(expected.timestamp_ms)),
        ("type", 3, Sql::Text(expected.event_type)),
        ("db_user_id", 4, expected.db_user_id.map_or(Sql::Null, Sql::Integer)),
        ("user_email", 5, expected.user_email.map_or(Sql::Null, Sql::Text)),
        ("method", 6, Sql::Text(expected.method)),
        ("status", 7, expected.status.map_or(Sql::Null, |status| Sql::Integer(i64::from(status)))),
        ("user_id", 11, expected.user_id.map_or(Sql::Null, Sql::Text)),
        ("user_name", 12, expected.user_name.map_or(Sql::Null, Sql::Text)),
    ];
    for (name, index, body_value) in checks {
        if stored(index).as_ref() != Some(&body_value) {
            return Err(TrailProblem::ColumnChanged {
                seq,
                column: name,
                column_value: column(index),
                body_value: format!("{body_value:?}"),
            });
        }
    }
    Ok(())
}

/// The anchor row must be the anchor the newest checkpoint signed: a deleted row would let
/// the writer restart the chain, and an unsigned one would hide a truncation.
fn check_anchor_row(conn: &Connection, latest: Option<&Checkpoint>) -> Result<(), VerifyError> {
    let row: Option<(i64, Vec<u8>)> = conn
        .query_row("SELECT seq, hash FROM chain_anchor WHERE id = 1", [], |row| Ok((row.get(0)?, row.get(1)?)))
        .map(Some)
        .or_else(|error| match error {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            other => Err(VerifyError::Read(other.to_string())),
        })?;
    check_anchor(row, latest)
}

/// The stored anchor `row` (seq, hash) against the newest checkpoint, whichever the store.
pub fn check_anchor(row: Option<(i64, Vec<u8>)>, latest: Option<&Checkpoint>) -> Result<(), VerifyError> {
    let signed = latest.map_or(0, |latest| latest.anchor_seq);
    match row {
        None if signed > 0 => Err(TrailProblem::Anchor {
            seq: signed,
            detail: format!(
                "MISSING: checkpoints say events up to seq {signed} were purged, but the chain_anchor row is gone"
            ),
        }
        .into()),
        None => Ok(()),
        Some((seq, hash)) => {
            let signed_hash = latest.map(|latest| latest.anchor_hash.clone()).unwrap_or_default();
            if seq != signed || to_hex(&hash) != signed_hash {
                Err(TrailProblem::Anchor {
                    seq,
                    detail: format!("NOT SIGNED: the chain_anchor row says seq {seq}, hash {}; the newest checkpoint signed seq {signed}, hash {signed_hash}", to_hex(&hash)),
                }
                .into())
            } else {
                Ok(())
            }
        }
    }
}
