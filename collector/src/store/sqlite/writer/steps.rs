//! What each command does inside the writer's shared transaction, each in its own
//! savepoint, so one failing command is rolled back alone and the others still commit.

use audit_event::chain::Checkpoint;
use audit_event::{AuditEvent, IngestReceipt};
use rusqlite::{Connection, Transaction};

use crate::batch::event_row;
use crate::chain::signing::TrailSigner;
use crate::completeness::accounting::{SenderActivity, SenderPolicy};
use crate::store::new_event::NewEvent;
use crate::store::sqlite::chain_store::issue_checkpoint;
use crate::store::sqlite::senders::{check_senders, note_batch};
use crate::store::sqlite::write_sql::{insert_rows, purge_batch};
use crate::store::{now_millis, StoreError};

/// Purges one batch and, when anything went and there is a key, signs the checkpoint that
/// records the new anchor, in one savepoint: the anchor is never left unsigned.
pub(super) fn purge_and_checkpoint(
    tx: &mut Transaction<'_>,
    older_than_ms: i64,
    limit: usize,
    signer: Option<&TrailSigner>,
) -> Result<usize, StoreError> {
    let savepoint = tx.savepoint()?;
    let deleted = purge_batch(&savepoint, older_than_ms, limit)?;
    if let (true, Some(signer)) = (deleted > 0, signer) {
        issue_checkpoint(&savepoint, signer, now_millis())?;
    }
    savepoint.commit()?;
    Ok(deleted)
}

pub(super) fn checkpoint_in(
    tx: &mut Transaction<'_>,
    signer: Option<&TrailSigner>,
) -> Result<Option<Checkpoint>, StoreError> {
    let Some(signer) = signer else {
        return Ok(None);
    };
    let savepoint = tx.savepoint()?;
    let issued = issue_checkpoint(&savepoint, signer, now_millis())?;
    savepoint.commit()?;
    Ok(issued)
}

/// A batch and the accounting of its sender's numbers, in one savepoint: the numbers are
/// accounted for exactly when the events are stored.
pub(super) fn ingest_accounted(
    tx: &mut Transaction<'_>,
    events: &[NewEvent],
    sender: Option<&SenderActivity>,
    ingested_at_ms: i64,
) -> Result<IngestReceipt, StoreError> {
    let savepoint = tx.savepoint()?;
    let inserted = insert_rows(&savepoint, events, ingested_at_ms)?;
    if let Some(activity) = sender {
        let records = note_batch(&savepoint, activity, &inserted, ingested_at_ms)?;
        insert_records(&savepoint, &records, ingested_at_ms)?;
    }
    savepoint.commit()?;
    let accepted = inserted.iter().filter(|stored| **stored).count();
    Ok(IngestReceipt { accepted, duplicates: events.len() - accepted })
}

pub(super) fn check_in(tx: &mut Transaction<'_>, policy: SenderPolicy, now_ms: i64) -> Result<usize, StoreError> {
    let savepoint = tx.savepoint()?;
    let records = check_senders(&savepoint, policy, now_ms)?;
    insert_records(&savepoint, &records, now_ms)?;
    savepoint.commit()?;
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
