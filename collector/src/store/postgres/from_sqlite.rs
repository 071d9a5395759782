//! `audit-collector migrate --from <sqlite> --to postgres://…`: moves a trail up from SQLite
//! with everything that makes it the same trail: each event with its `seq`, body and chain
//! link; the head; the retention anchor; the signed checkpoints, key handovers included;
//! the uuids retention purged (so a saved cursor is still "expired", not "unknown"); the
//! purge count; the tokens; the sender accounting (so a hole or a silent sender is still
//! recorded, once, after the move). It all goes in ONE PostgreSQL transaction, so the
//! target holds the whole trail or nothing, and it refuses a target that already holds
//! anything. `verify` on the copy proves it. SQLite's hourly activity rollup is not
//! copied as such: PostgreSQL's triggers rebuild its own as the events go in.

use std::path::Path;

use deadpool_postgres::Transaction;
use rusqlite::Connection;

use super::super::sqlite::chain_store::chain_head;
use super::super::sqlite::schema::{current_version, open_for_reading};
use super::super::StoreError;
use super::schema;

/// Events copied per round trip.
const CHUNK: i64 = 5000;

/// What a migration copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Migrated {
    /// Events, with their seqs and links.
    pub events: u64,
    /// Signed checkpoints.
    pub checkpoints: u64,
    /// Tokens (active and revoked).
    pub tokens: u64,
    /// Senders (filter workers) with their accounting.
    pub senders: u64,
    /// The head seq of the copy.
    pub head_seq: i64,
    /// The anchor seq (0 when nothing was ever purged).
    pub anchor_seq: i64,
}

/// Why a migration did not happen.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// Either database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The target already holds a trail (or tokens).
    #[error("the PostgreSQL database already holds audit data ({0}); migrate only into an empty database, e.g. a new one made with CREATE DATABASE")]
    TargetNotEmpty(String),
    /// The SQLite file is from another collector version.
    #[error("{path} has schema version {found}; this collector migrates version {known}: run this collector's `serve` on it once (it upgrades the file), then migrate")]
    SourceVersion {
        /// The file.
        path: String,
        /// Its `user_version`.
        found: i64,
        /// What this binary writes.
        known: i64,
    },
}

impl From<rusqlite::Error> for MigrateError {
    fn from(error: rusqlite::Error) -> MigrateError {
        MigrateError::Store(StoreError::Sqlite(error))
    }
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(error: tokio_postgres::Error) -> MigrateError {
        MigrateError::Store(StoreError::Postgres(error))
    }
}

/// Copies the trail in the SQLite file `from` into the empty PostgreSQL database `to`.
pub async fn migrate(from: &Path, to: &str) -> Result<Migrated, MigrateError> {
    let sqlite = open_for_reading(from)?;
    let found: i64 = sqlite.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found != current_version() {
        return Err(MigrateError::SourceVersion { path: from.display().to_string(), found, known: current_version() });
    }
    let pool = schema::pool(to)?;
    schema::migrate(&pool).await?;
    let mut client = pool.get().await.map_err(StoreError::from)?;
    let tx = client.transaction().await?;
    // Locking the head keeps a replica started by mistake from sealing into the copy.
    let head: i64 = tx.query_one("SELECT seq FROM chain_head WHERE id = 1 FOR UPDATE", &[]).await?.try_get(0)?;
    let held: i64 = tx
        .query_one(
            "SELECT (SELECT count(*) FROM trail_uuids) + (SELECT count(*) FROM checkpoints)
                  + (SELECT count(*) FROM api_tokens) + (SELECT count(*) FROM chain_anchor)
                  + (SELECT count(*) FROM senders)",
            &[],
        )
        .await?
        .try_get(0)?;
    if head != 0 || held != 0 {
        return Err(MigrateError::TargetNotEmpty(format!(
            "head seq {head}, {held} rows of uuids, checkpoints, tokens, anchor or senders"
        )));
    }
    // One read transaction on SQLite too, so the copy is of one moment of the file.
    sqlite.execute_batch("BEGIN")?;
    let mut migrated = Migrated { events: copy_events(&sqlite, &tx).await?, ..Migrated::default() };
    copy_expired_uuids(&sqlite, &tx).await?;
    migrated.anchor_seq = copy_anchor(&sqlite, &tx).await?;
    let source_head = chain_head(&sqlite)?;
    tx.execute(
        "UPDATE chain_head SET seq = $1, hash = $2 WHERE id = 1",
        &[&source_head.seq, &source_head.hash.as_slice()],
    )
    .await?;
    migrated.head_seq = source_head.seq;
    migrated.checkpoints = copy_checkpoints(&sqlite, &tx).await?;
    migrated.tokens = copy_tokens(&sqlite, &tx).await?;
    migrated.senders = copy_senders(&sqlite, &tx).await?;
    let purged: i64 = sqlite.query_row("SELECT events FROM purge_count", [], |row| row.get(0))?;
    tx.execute("UPDATE purge_count SET events = $1 WHERE id = 1", &[&purged]).await?;
    sqlite.execute_batch("COMMIT")?;
    tx.commit().await?;
    Ok(migrated)
}

async fn copy_events(sqlite: &Connection, tx: &Transaction<'_>) -> Result<u64, MigrateError> {
    let mut select = sqlite.prepare(
        "SELECT seq, uuid, timestamp_ms, type, db_user_id, user_email, user_id, method, status, ingested_at_ms, body,
                chain_prev, chain_hash, user_name
         FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let insert = tx
        .prepare(
            "WITH copied AS (
                 INSERT INTO events (seq, uuid, timestamp_ms, type, db_user_id, user_email, user_id, method, status,
                                     ingested_at_ms, body, chain_prev, chain_hash, user_name)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[],
                                      $7::text[], $8::text[], $9::int4[], $10::bigint[], $11::text[], $12::bytea[],
                                      $13::bytea[], $14::text[])
                 RETURNING uuid, timestamp_ms
             )
             INSERT INTO trail_uuids (uuid, timestamp_ms) SELECT uuid, timestamp_ms FROM copied",
        )
        .await?;
    let mut after = i64::MIN;
    let mut copied = 0;
    loop {
        let mut columns = EventColumns::default();
        let mut rows = select.query(rusqlite::params![after, CHUNK])?;
        while let Some(row) = rows.next()? {
            columns.push(row)?;
        }
        let Some(&last) = columns.seq.last() else {
            return Ok(copied);
        };
        after = last;
        copied += tx
            .execute(
                &insert,
                &[
                    &columns.seq,
                    &columns.uuid,
                    &columns.timestamp_ms,
                    &columns.event_type,
                    &columns.db_user_id,
                    &columns.user_email,
                    &columns.user_id,
                    &columns.method,
                    &columns.status,
                    &columns.ingested_at_ms,
                    &columns.body,
                    &columns.chain_prev,
                    &columns.chain_hash,
                    &columns.user_name,
                ],
            )
            .await?;
    }
}

/// One chunk of events, column by column, as `unnest` takes them.
#[derive(Default)]
struct EventColumns {
    seq: Vec<i64>,
    uuid: Vec<String>,
    timestamp_ms: Vec<i64>,
    event_type: Vec<String>,
    db_user_id: Vec<Option<i64>>,
    user_email: Vec<Option<String>>,
    user_id: Vec<Option<String>>,
    method: Vec<String>,
    status: Vec<Option<i32>>,
    ingested_at_ms: Vec<i64>,
    body: Vec<String>,
    chain_prev: Vec<Vec<u8>>,
    chain_hash: Vec<Vec<u8>>,
    user_name: Vec<Option<String>>,
}

impl EventColumns {
    fn push(&mut self, row: &rusqlite::Row<'_>) -> Result<(), MigrateError> {
        let seq: i64 = row.get(0)?;
        let link = |index: usize| -> Result<Vec<u8>, MigrateError> {
            row.get::<_, Option<Vec<u8>>>(index)?.ok_or_else(|| {
                MigrateError::Store(StoreError::Chain(format!(
                    "seq {seq} has no chain link; run `audit-collector serve` built from commit {} on the file once to link it",
                    super::super::sqlite::schema::LAST_MIGRATING_BUILD
                )))
            })
        };
        let status: Option<i64> = row.get(8)?;
        self.chain_prev.push(link(11)?);
        self.chain_hash.push(link(12)?);
        self.seq.push(seq);
        self.uuid.push(row.get(1)?);
        self.timestamp_ms.push(row.get(2)?);
        self.event_type.push(row.get(3)?);
        self.db_user_id.push(row.get(4)?);
        self.user_email.push(row.get(5)?);
        self.user_id.push(row.get(6)?);
        self.method.push(row.get(7)?);
        self.status.push(status.and_then(|status| i32::try_from(status).ok()));
        self.ingested_at_ms.push(row.get(9)?);
        self.body.push(row.get(10)?);
        self.user_name.push(row.get(13)?);
        Ok(())
    }
}

async fn copy_expired_uuids(sqlite: &Connection, tx: &Transaction<'_>) -> Result<(), MigrateError> {
    let mut select = sqlite.prepare("SELECT uuid, timestamp_ms FROM expired_events")?;
    let rows = select.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?)))?;
    let (mut uuids, mut timestamps) = (Vec::new(), Vec::new());
    for row in rows {
        let (uuid, timestamp) = row?;
        uuids.push(uuid);
        timestamps.push(timestamp);
    }
    tx.execute(
        "INSERT INTO trail_uuids (uuid, timestamp_ms) SELECT * FROM unnest($1::text[], $2::bigint[])
         ON CONFLICT (uuid) DO NOTHING",
        &[&uuids, &timestamps],
    )
    .await?;
    Ok(())
}

async fn copy_anchor(sqlite: &Connection, tx: &Transaction<'_>) -> Result<i64, MigrateError> {
    let mut select = sqlite.prepare("SELECT seq, hash, purged_at_ms FROM chain_anchor WHERE id = 1")?;
    let mut rows = select.query([])?;
    let Some(row) = rows.next()? else {
        return Ok(0);
    };
    let (seq, hash, purged_at_ms): (i64, Vec<u8>, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
    tx.execute(
        "INSERT INTO chain_anchor (id, seq, hash, purged_at_ms) VALUES (1, $1, $2, $3)",
        &[&seq, &hash, &purged_at_ms],
    )
    .await?;
    Ok(seq)
}

async fn copy_checkpoints(sqlite: &Connection, tx: &Transaction<'_>) -> Result<u64, MigrateError> {
    let mut select = sqlite.prepare(
        "SELECT number, last_seq, last_hash, anchor_seq, anchor_hash, issued_at_ms, prev_checkpoint_hash, key_id,
                signature, next_public_key
         FROM checkpoints ORDER BY number",
    )?;
    let insert = tx
        .prepare(
            "INSERT INTO checkpoints (number, last_seq, last_hash, anchor_seq, anchor_hash, issued_at_ms,
                                      prev_checkpoint_hash, key_id, signature, next_public_key)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .await?;
    let mut rows = select.query([])?;
    let mut copied = 0;
    while let Some(row) = rows.next()? {
        let (number, last_seq, last_hash): (i64, i64, Vec<u8>) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let (anchor_seq, anchor_hash, issued_at_ms): (i64, Vec<u8>, i64) = (row.get(3)?, row.get(4)?, row.get(5)?);
        let (prev, key_id, signature): (Vec<u8>, String, Vec<u8>) = (row.get(6)?, row.get(7)?, row.get(8)?);
        // A key handover names the key that signs every later checkpoint.
        let next_public_key: Option<Vec<u8>> = row.get(9)?;
        copied += tx
            .execute(
                &insert,
                &[
                    &number,
                    &last_seq,
                    &last_hash,
                    &anchor_seq,
                    &anchor_hash,
                    &issued_at_ms,
                    &prev,
                    &key_id,
                    &signature,
                    &next_public_key,
                ],
            )
            .await?;
    }
    Ok(copied)
}

async fn copy_tokens(sqlite: &Connection, tx: &Transaction<'_>) -> Result<u64, MigrateError> {
    let mut select =
        sqlite.prepare("SELECT id, name, scope, digest, created_at_ms, revoked_at_ms FROM api_tokens ORDER BY id")?;
    let mut rows = select.query([])?;
    let mut copied = 0;
    while let Some(row) = rows.next()? {
        let (id, name, scope): (i64, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
        let (digest, created, revoked): (Vec<u8>, i64, Option<i64>) = (row.get(3)?, row.get(4)?, row.get(5)?);
        copied += tx
            .execute(
                "INSERT INTO api_tokens (id, name, scope, digest, created_at_ms, revoked_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&id, &name, &scope, &digest, &created, &revoked],
            )
            .await?;
    }
    // Token ids keep their numbers (`token revoke <id>`); new ones continue after them.
    tx.execute(
        "SELECT setval(pg_get_serial_sequence('api_tokens', 'id'), GREATEST((SELECT max(id) FROM api_tokens), 1))",
        &[],
    )
    .await?;
    Ok(copied)
}

/// The sender accounting, row for row: the tables have the same columns on both stores.
async fn copy_senders(sqlite: &Connection, tx: &Transaction<'_>) -> Result<u64, MigrateError> {
    const SENDER_COLUMNS: &str = "id, first_heard_ms, last_heard_ms, reported_at_ms, captured, heartbeat_ms, \
        delivered, stopped_at_ms, contiguous, contiguous_at_ms, claimed_upto, claimed_at_ms, claimed_seen_at_ms";
    let insert = tx
        .prepare(&format!(
            "INSERT INTO senders ({SENDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .await?;
    let mut select = sqlite.prepare(&format!("SELECT {SENDER_COLUMNS} FROM senders ORDER BY id"))?;
    let mut rows = select.query([])?;
    let mut copied = 0;
    while let Some(row) = rows.next()? {
        let id: String = row.get(0)?;
        let numbers: Vec<i64> =
            [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12].iter().map(|&i| row.get(i)).collect::<Result<_, _>>()?;
        let stopped_at_ms: Option<i64> = row.get(7)?;
        copied += tx
            .execute(
                &insert,
                &[
                    &id,
                    &numbers[0],
                    &numbers[1],
                    &numbers[2],
                    &numbers[3],
                    &numbers[4],
                    &numbers[5],
                    &stopped_at_ms,
                    &numbers[6],
                    &numbers[7],
                    &numbers[8],
                    &numbers[9],
                    &numbers[10],
                ],
            )
            .await?;
    }
    let mut select = sqlite.prepare(
        "SELECT sender, first_seq, last_seq, first_at_ms, last_at_ms, seen_at_ms FROM sender_pending ORDER BY sender",
    )?;
    let mut rows = select.query([])?;
    while let Some(row) = rows.next()? {
        let sender: String = row.get(0)?;
        let numbers: Vec<i64> = (1..=5).map(|i| row.get(i)).collect::<Result<_, _>>()?;
        tx.execute(
            "INSERT INTO sender_pending (sender, first_seq, last_seq, first_at_ms, last_at_ms, seen_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[&sender, &numbers[0], &numbers[1], &numbers[2], &numbers[3], &numbers[4]],
        )
        .await?;
    }
    Ok(copied)
}
