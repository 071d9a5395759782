//! What each command does inside the writer's transaction, on whatever connection state the
//! thread gives it (the shared transaction, or a savepoint of its own when a command of the
//! group failed: `thread.rs`). Each step is all-or-nothing only together with that scope.

use audit_event::chain::Checkpoint;
use audit_event::{AuditEvent, IngestReceipt};
use rusqlite::Connection;

use crate::batch::event_row;
use crate::chain::signing::TrailSigner;
use crate::completeness::accounting::{SenderActivity, SenderPolicy};
use crate::store::new_event::NewEvent;
use crate::store::sqlite::chain_store::issue_checkpoint;
use crate::store::sqlite::senders::{check_senders, note_batch, note_refused};
use crate::store::sqlite::write_sql::{insert_rows, purge_batch};
use crate::store::{now_millis, StoreError};

/// Purges one batch and, when anything went and there is a key, signs the checkpoint that
/// records the new anchor, in the same scope: the anchor is never left unsigned.
pub(super) fn purge_and_checkpoint(
    conn: &Connection,
    older_than_ms: i64,
    limit: usize,
    signer: Option<&TrailSigner>,
) -> Result<usize, StoreError> {
    let deleted = purge_batch(conn, older_than_ms, limit)?;
    if let (true, Some(signer)) = (deleted > 0, signer) {
        issue_checkpoint(conn, signer, now_millis())?;
    }
    Ok(deleted)
}

pub(super) fn checkpoint_in(conn: &Connection, signer: Option<&TrailSigner>) -> Result<Option<Checkpoint>, StoreError> {
    let Some(signer) = signer else {
        return Ok(None);
    };
    issue_checkpoint(conn, signer, now_millis())
}

/// A batch and the accounting of its sender's numbers, in the same scope: the numbers are
/// accounted for exactly when the events are stored.
pub(super) fn ingest_accounted(
    conn: &Connection,
    events: &[NewEvent],
    sender: Option<&SenderActivity>,
    ingested_at_ms: i64,
) -> Result<IngestReceipt, StoreError> {
    let inserted = insert_rows(conn, events, ingested_at_ms)?;
    if let Some(activity) = sender {
        let records = note_batch(conn, activity, &inserted, ingested_at_ms)?;
        insert_records(conn, &records, ingested_at_ms)?;
    }
    let accepted = inserted.iter().filter(|stored| **stored).count();
    Ok(IngestReceipt { accepted, duplicates: events.len() - accepted })
}

pub(super) fn check_in(
    conn: &Connection,
    policy: SenderPolicy,
    refused: &[(String, i64)],
    now_ms: i64,
) -> Result<usize, StoreError> {
    for (sender, refused_at_ms) in refused {
        note_refused(conn, sender, *refused_at_ms)?;
    }
    let records = check_senders(conn, policy, now_ms)?;
    insert_records(conn, &records, now_ms)?;
    Ok(records.len())
}

/// The collector's own records go into the chain like any event.
fn insert_records(conn: &Connection, records: &[AuditEvent], now_ms: i64) -> Result<(), StoreError> {
    let rows = records
        .iter()
        .map(|record| {
            event_row(record).map_err(|error| StoreError::WriteFailed(format!("a collector record: {error}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    insert_rows(conn, &rows, now_ms)?;
    Ok(())
}
