//! Verifying a trail on PostgreSQL: the same checks as a SQLite file
//! ([`super::from_database`]): the checkpoints, every sealed event in seq order (chain and
//! filtered-on columns), the anchor row. It reads in one REPEATABLE READ snapshot, so
//! replicas may keep sealing meanwhile; events not yet sealed are not part of the trail and
//! are not checked. Nothing is written.

use rusqlite::types::Value as Sql;
use tokio_postgres::{IsolationLevel, NoTls, Row};

use super::from_database::{check_anchor, check_columns};
use super::problem::TrailProblem;
use super::report::TrailReport;
use super::walk::{check_checkpoints, ChainWalker, TrailEvent};
use super::VerifyError;
use crate::chain::canonical::canonical_json;
use crate::chain::link::digest_from_blob;
use crate::chain::signing::TrailVerifier;
use crate::store::postgres::chain::checkpoint_of_row;
use crate::store::postgres::tls::target;

/// Events read per round trip.
const CHUNK: i64 = 5000;

/// Verifies the trail in the PostgreSQL database at `url` against `key`.
pub async fn verify_postgres(url: &str, key: &TrailVerifier) -> Result<TrailReport, VerifyError> {
    let read = |error: tokio_postgres::Error| VerifyError::Read(format!("PostgreSQL: {error}"));
    let target = target(url).map_err(|error| VerifyError::Read(error.to_string()))?;
    let (mut client, connection) = match target.tls {
        Some(tls) => {
            let (client, connection) = target.config.connect(tls).await.map_err(read)?;
            (client, tokio::spawn(connection))
        }
        None => {
            let (client, connection) = target.config.connect(NoTls).await.map_err(read)?;
            (client, tokio::spawn(connection))
        }
    };
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(read)?;
    let checkpoints: Vec<_> = tx
        .query(
            "SELECT number, last_seq, last_hash, anchor_seq, anchor_hash, issued_at_ms, prev_checkpoint_hash, key_id,
                    signature, next_public_key
             FROM checkpoints ORDER BY number",
            &[],
        )
        .await
        .map_err(read)?
        .iter()
        .map(checkpoint_of_row)
        .collect::<Result<_, _>>()
        .map_err(|error| VerifyError::Read(format!("PostgreSQL: a checkpoint row: {error}")))?;
    check_checkpoints(&checkpoints, key)?;
    let mut walker = ChainWalker::new(&checkpoints);
    let select = tx
        .prepare(
            "SELECT seq, uuid, timestamp_ms, type, db_user_id, user_email, method, status, body, chain_prev, chain_hash,
                    user_id, user_name
             FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .await
        .map_err(read)?;
    let mut after = i64::MIN;
    loop {
        let rows = tx.query(&select, &[&after, &CHUNK]).await.map_err(read)?;
        let Some(last) = rows.last() else { break };
        after = last.try_get(0).map_err(read)?;
        for row in &rows {
            let seq: i64 = row.try_get(0).map_err(read)?;
            let value: serde_json::Value = serde_json::from_str(row.try_get(8).map_err(read)?)
                .map_err(|error| TrailProblem::Unreadable { seq, detail: format!("the body is not JSON: {error}") })?;
            // A column that is not bytes is a link that is not there: the walk reports it.
            let blob = |index: usize| row.try_get(index).ok().and_then(digest_from_blob);
            let event = TrailEvent { seq, prev_hash: blob(9), hash: blob(10), canonical: canonical_json(&value) };
            walker.next(&event)?;
            check_columns(&|index| as_sqlite_value(row, index), seq, &value)?;
        }
    }
    let report = walker.finish()?;
    let anchor = tx.query_opt("SELECT seq, hash FROM chain_anchor WHERE id = 1", &[]).await.map_err(read)?;
    let anchor = anchor.map(|row| Ok::<_, VerifyError>((row.try_get(0).map_err(read)?, row.try_get(1).map_err(read)?)));
    check_anchor(anchor.transpose()?, checkpoints.last())?;
    drop(tx);
    drop(client);
    let _ = connection.await;
    Ok(report)
}

/// Column `index` in SQLite's terms, so both stores' columns are compared by one check.
fn as_sqlite_value(row: &Row, index: usize) -> Option<Sql> {
    let text = |index| row.try_get::<_, Option<String>>(index).ok().map(|value| value.map_or(Sql::Null, Sql::Text));
    match index {
        1 | 3 | 5 | 6 | 11 | 12 => text(index),
        2 | 4 => row.try_get::<_, Option<i64>>(index).ok().map(|value| value.map_or(Sql::Null, Sql::Integer)),
        7 => row
            .try_get::<_, Option<i32>>(index)
            .ok()
            .map(|value| value.map_or(Sql::Null, |status| Sql::Integer(i64::from(status)))),
        _ => None,
    }
}
