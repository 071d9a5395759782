//! Ingest on PostgreSQL, on any replica: a batch goes into `unsequenced`
//! ([`super::unsequenced`]), once the queue's bound let it in ([`super::backlog`]); a batch from a numbering sender is one transaction with its
//! sender's accounting ([`super::senders`]). The acknowledgement follows the commit.

use audit_event::IngestReceipt;
use deadpool_postgres::Pool;

use super::super::new_event::NewEvent;
use super::super::{now_millis, StoreError};
use super::senders;
use super::unsequenced::{insert_events, insert_records};
use crate::completeness::accounting::SenderActivity;

/// Stores the events of `events` whose uuid the trail has never taken and accounts for
/// `sender`'s numbers in the same transaction.
pub async fn ingest(
    pool: &Pool,
    events: &[NewEvent],
    sender: Option<&SenderActivity>,
) -> Result<IngestReceipt, StoreError> {
    let mut client = pool.get().await?;
    let now_ms = now_millis();
    let inserted = match sender {
        None => insert_events(&client, events, now_ms).await?,
        Some(activity) => {
            let tx = client.transaction().await?;
            // The sender first: its batches (a retry may reach another replica) and the
            // check account one after the other from here.
            senders::lock(&tx, &activity.id).await?;
            let inserted = insert_events(&tx, events, now_ms).await?;
            let records = senders::note_batch(&tx, activity, &inserted, now_ms).await?;
            insert_records(&tx, &records, now_ms).await?;
            tx.commit().await?;
            inserted
        }
    };
    let accepted = inserted.iter().filter(|stored| **stored).count();
    Ok(IngestReceipt { accepted, duplicates: events.len() - accepted })
}
