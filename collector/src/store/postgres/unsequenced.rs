//! The queue of acknowledged events, on any replica. The events' uuids go into
//! `trail_uuids` (`ON CONFLICT DO NOTHING`); only the events whose uuid was new there go
//! into `unsequenced`, in their order, in one statement, for the sealer to order. A uuid
//! seen before, by any replica, sealed or not, is a duplicate, because `trail_uuids` is one
//! unique index over the whole trail.

use std::collections::HashSet;

use audit_event::AuditEvent;
use deadpool_postgres::GenericClient;

use super::super::new_event::NewEvent;
use super::super::StoreError;
use crate::batch::event_row;

const INSERT_NEW_EVENTS: &str = "
WITH fresh AS (
    INSERT INTO trail_uuids (uuid, timestamp_ms)
    SELECT * FROM unnest($1::text[], $2::bigint[])
    ON CONFLICT (uuid) DO NOTHING
    RETURNING uuid
)
INSERT INTO unsequenced
    (uuid, timestamp_ms, type, db_user_id, user_email, user_id, method, status, body, canonical, ingested_at_ms,
     user_name)
SELECT e.uuid, e.timestamp_ms, e.type, e.db_user_id, e.user_email, e.user_id, e.method, e.status, e.body,
       e.canonical, $11, e.user_name
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::int4[],
            $9::text[], $10::bytea[], $12::text[])
     WITH ORDINALITY AS e(uuid, timestamp_ms, type, db_user_id, user_email, user_id, method, status, body,
                          canonical, user_name, position)
JOIN fresh USING (uuid)
ORDER BY e.position
RETURNING uuid";

/// The collector's own records, waiting for the sealer like any acknowledged event.
pub async fn insert_records(
    client: &impl GenericClient,
    records: &[AuditEvent],
    now_ms: i64,
) -> Result<(), StoreError> {
    let rows = records
        .iter()
        .map(|record| {
            event_row(record).map_err(|error| StoreError::WriteFailed(format!("a collector record: {error}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    insert_events(client, &rows, now_ms).await?;
    Ok(())
}

/// Inserts the new events of `events`; for each, whether it was newly stored (a uuid the
/// trail had taken, or a repeat inside the batch, was not).
pub async fn insert_events(
    client: &impl GenericClient,
    events: &[NewEvent],
    now_ms: i64,
) -> Result<Vec<bool>, StoreError> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    // A uuid repeated inside the batch would meet itself in the join: keep its first.
    let mut seen = HashSet::with_capacity(events.len());
    let first_of_uuid: Vec<bool> = events.iter().map(|event| seen.insert(event.uuid.as_str())).collect();
    let unique: Vec<&NewEvent> =
        events.iter().zip(&first_of_uuid).filter(|(_, first)| **first).map(|(e, _)| e).collect();
    let uuids: Vec<&str> = unique.iter().map(|event| event.uuid.as_str()).collect();
    let timestamps: Vec<i64> = unique.iter().map(|event| event.timestamp_ms).collect();
    let types: Vec<&str> = unique.iter().map(|event| event.event_type.as_str()).collect();
    let db_user_ids: Vec<Option<i64>> = unique.iter().map(|event| event.db_user_id).collect();
    let emails: Vec<Option<&str>> = unique.iter().map(|event| event.user_email.as_deref()).collect();
    let user_ids: Vec<Option<&str>> = unique.iter().map(|event| event.user_id.as_deref()).collect();
    let user_names: Vec<Option<&str>> = unique.iter().map(|event| event.user_name.as_deref()).collect();
    let methods: Vec<&str> = unique.iter().map(|event| event.method.as_str()).collect();
    let statuses: Vec<Option<i32>> = unique.iter().map(|event| event.status.map(i32::from)).collect();
    let bodies: Vec<&str> = unique.iter().map(|event| event.body.as_str()).collect();
    let canonicals: Vec<&[u8]> = unique.iter().map(|event| event.canonical.as_slice()).collect();
    let statement = client.prepare_cached(INSERT_NEW_EVENTS).await?;
    let stored = client
        .query(
            &statement,
            &[
                &uuids,
                &timestamps,
                &types,
                &db_user_ids,
                &emails,
                &user_ids,
                &methods,
                &statuses,
                &bodies,
                &canonicals,
                &now_ms,
                &user_names,
            ],
        )
        .await?;
    let stored: HashSet<&str> = stored.iter().map(|row| row.try_get::<_, &str>(0)).collect::<Result<_, _>>()?;
    Ok(events.iter().zip(first_of_uuid).map(|(event, first)| first && stored.contains(event.uuid.as_str())).collect())
}
