//! Connecting to PostgreSQL and bringing its schema to the version this collector knows
//! (`schema.sql`, then each later `schema_v<n>.sql`, recorded in `schema_version`). Replicas starting together take a
//! transaction-scoped advisory lock first, so exactly one of them creates the schema; a
//! database written by a newer collector is refused.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Timeouts};
use tokio_postgres::NoTls;

use super::super::StoreError;
use super::tls;

/// The first schema.
pub(super) const SCHEMA_V1: &str = include_str!("schema.sql");

/// The changes after it, in order: entry `n` brings the schema from version `n + 1` to
/// `n + 2`. Released entries are never edited: a change is a new entry.
pub(super) const UPGRADES: &[&str] = &[
    // 2: sender accounting and the checkpoints' key handover.
    include_str!("schema_v2.sql"),
    // 3: the hourly activity rollup and the indexes GET /audit/activity counts from.
    include_str!("schema_v3.sql"),
    // 4: the user filters' (user, time) indexes without `type`.
    include_str!("schema_v4.sql"),
    // 5: a sender's final count, when it said it is shutting down.
    include_str!("schema_v5.sql"),
    // 6: GET /audit's `user_name` filter: a column generated from the body, and its index.
    include_str!("schema_v6.sql"),
    // 7: `user_name` a plain column ingest fills, in `unsequenced` too.
    include_str!("schema_v7.sql"),
    // 8: per-user hourly rollups instead of the two `(user, timestamp)` indexes.
    include_str!("schema_v8.sql"),
    // 9: no uuid index on `events` (`trail_uuids` keeps uuids unique; the timestamp index is
    // keyed by (timestamp, uuid) for lookups), and rollup rows retention zeroes are deleted.
    include_str!("schema_v9.sql"),
];

/// The newest schema version this collector knows.
pub const SCHEMA_VERSION: i32 = 1 + UPGRADES.len() as i32;

/// Whether the database has the reverted write-once layout's table of seals.
const REVERTED_LAYOUT_PROBE: &str = "SELECT to_regclass('event_seals') IS NOT NULL";

/// The last commit whose collector reads the reverted write-once layout.
const REVERTED_LAYOUT_BUILD: &str = "e5433d3";

/// The advisory lock key under which the schema is created ("audit-mi" in ASCII).
const MIGRATION_LOCK: i64 = 0x6175_6469_742d_6d69;

/// Connections one replica keeps; ingest waits for one at most [`POOL_WAIT`].
pub const POOL_SIZE: usize = 8;

/// How long a request waits for a free connection before ingest answers 503.
pub const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A pool on `url`, without connecting yet.
pub fn pool(url: &str) -> Result<Pool, StoreError> {
    let target = tls::target(url)?;
    let manager_config = ManagerConfig { recycling_method: RecyclingMethod::Fast };
    let manager = match target.tls {
        Some(tls) => Manager::from_config(target.config, tls, manager_config),
        None => Manager::from_config(target.config, NoTls, manager_config),
    };
    let timeouts = Timeouts { wait: Some(POOL_WAIT), create: Some(POOL_WAIT), recycle: Some(POOL_WAIT) };
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .timeouts(timeouts)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|error| StoreError::PostgresUrl(error.to_string()))
}

/// Applies the migrations the database lacks (all of them to an empty one); refuses a newer one.
pub async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    let exists: bool = tx.query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[]).await?.try_get(0)?;
    let found: i32 = if exists {
        tx.query_one("SELECT version FROM schema_version", &[]).await?.try_get(0)?
    } else {
        tx.batch_execute(SCHEMA_V1).await?;
        tx.batch_execute("CREATE TABLE schema_version (version INTEGER NOT NULL)").await?;
        tx.execute("INSERT INTO schema_version (version) VALUES (1)", &[]).await?;
        1
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerPostgresSchema { found, known: SCHEMA_VERSION });
    }
    // Version 9 was first taken by a write-once layout that main carried for a few hours and
    // then reverted (commits 39bab6f..e5433d3); its `event_seals` table tells it from this one,
    // which no upgrade here can read.
    if found == 9 && tx.query_one(REVERTED_LAYOUT_PROBE, &[]).await?.try_get::<_, bool>(0)? {
        return Err(StoreError::RevertedPostgresLayout { build: REVERTED_LAYOUT_BUILD });
    }
    for upgrade in UPGRADES.iter().skip(usize::try_from(found - 1).unwrap_or(0)) {
        tx.batch_execute(upgrade).await?;
    }
    tx.execute("UPDATE schema_version SET version = $1", &[&SCHEMA_VERSION]).await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_cluster::fresh_database;
    use super::*;

    /// A database made by a collector that knew only version 1 (events stored, no rollup)
    /// is brought to the current version, the rollup filled from its events; a newer one
    /// is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_version_1_database_is_migrated_with_its_events_counted_and_a_newer_one_refused() {
        let url = fresh_database().await;
        let pool = pool(&url).expect("pool");
        let client = pool.get().await.expect("connect");
        client.batch_execute(SCHEMA_V1).await.expect("version 1");
        client
            .batch_execute(
                "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (1);
                 INSERT INTO events (seq, uuid, timestamp_ms, type, method, status, ingested_at_ms, body, chain_prev, chain_hash)
                 VALUES (1, 'a', 7200001, 'T', 'GET', 200, 0, '{}', '\\x00', '\\x01'),
                        (2, 'b', 7200002, 'T', 'GET', 200, 0, '{}', '\\x01', '\\x02'),
                        (3, 'c', 3599999, 'T', 'PUT', NULL, 0, '{}', '\\x02', '\\x03');",
            )
            .await
            .expect("a version 1 trail");
        drop(client);
        migrate(&pool).await.expect("migrate");
        let client = pool.get().await.expect("connect");
        let version: i32 = client.query_one("SELECT version FROM schema_version", &[]).await.expect("version").get(0);
        assert_eq!(version, SCHEMA_VERSION);
        let rows = client
            .query("SELECT hour, method, status, events FROM activity_hourly ORDER BY hour", &[])
            .await
            .expect("rollup");
        let rollup: Vec<(i64, String, i32, i64)> =
            rows.iter().map(|row| (row.get(0), row.get(1), row.get(2), row.get(3))).collect();
        assert_eq!(rollup, [(0, "PUT".to_owned(), -1, 1), (2, "GET".to_owned(), 200, 2)]);
        client.execute("UPDATE schema_version SET version = $1", &[&(SCHEMA_VERSION + 1)]).await.expect("bump");
        drop(client);
        let refused = migrate(&pool).await.err().map(|error| error.to_string()).unwrap_or_default();
        assert!(refused.contains(&(SCHEMA_VERSION + 1).to_string()), "{refused}");
    }

    /// A database the reverted write-once build numbered 9 (it has `event_seals`) is refused
    /// with the build that reads it, untouched; this build's own version 9 opens.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_reverted_write_once_layout_numbered_9_is_refused_untouched() {
        let url = fresh_database().await;
        let pool = pool(&url).expect("pool");
        migrate(&pool).await.expect("a new trail");
        let client = pool.get().await.expect("connect");
        client
            .batch_execute(
                "UPDATE schema_version SET version = 9;
                 CREATE TABLE event_seals (seq BIGINT PRIMARY KEY, position BIGINT NOT NULL UNIQUE);",
            )
            .await
            .expect("the reverted layout's mark");
        drop(client);
        let refused = migrate(&pool).await.expect_err("the reverted layout is refused");
        assert!(matches!(refused, StoreError::RevertedPostgresLayout { .. }), "{refused}");
        assert!(refused.to_string().contains(REVERTED_LAYOUT_BUILD), "{refused}");
        let client = pool.get().await.expect("connect");
        let version: i32 = client.query_one("SELECT version FROM schema_version", &[]).await.expect("version").get(0);
        assert_eq!(version, 9, "a refused database is left as it was");
        client.batch_execute("DROP TABLE event_seals").await.expect("drop the mark");
        drop(client);
        migrate(&pool).await.expect("this build's version 9 opens");
    }

    /// A version 7 database (the last with the `(user, timestamp)` indexes) gets its users'
    /// rollups filled from the events it holds, and loses those two indexes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_version_7_database_gets_per_user_rollups_of_its_events() {
        let url = fresh_database().await;
        let pool = pool(&url).expect("pool");
        let client = pool.get().await.expect("connect");
        client.batch_execute(SCHEMA_V1).await.expect("version 1");
        for upgrade in &UPGRADES[..6] {
            client.batch_execute(upgrade).await.expect("up to version 7");
        }
        client
            .batch_execute(
                "CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (7);
                 INSERT INTO events (seq, uuid, timestamp_ms, type, user_id, user_email, method, status, ingested_at_ms,
                                     body, chain_prev, chain_hash)
                 VALUES (1, 'a', 7200001, 'T', 'u1', 'a@x', 'GET', 200, 0, '{}', '\\x00', '\\x01'),
                        (2, 'b', 7200002, 'T', 'u1', NULL, 'GET', 200, 0, '{}', '\\x01', '\\x02'),
                        (3, 'c', 3599999, 'T', NULL, 'a@x', 'PUT', NULL, 0, '{}', '\\x02', '\\x03');",
            )
            .await
            .expect("a version 7 trail");
        drop(client);
        migrate(&pool).await.expect("migrate");
        let client = pool.get().await.expect("connect");
        let rows = client
            .query("SELECT hour, user_id, method, status, events FROM activity_user_id_hourly ORDER BY hour", &[])
            .await
            .expect("user_id rollup");
        let by_id: Vec<(i64, String, String, i32, i64)> =
            rows.iter().map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4))).collect();
        assert_eq!(by_id, [(2, "u1".to_owned(), "GET".to_owned(), 200, 2)], "events without a user_id are not in it");
        let rows = client
            .query("SELECT hour, user_email, status, events FROM activity_user_email_hourly ORDER BY hour", &[])
            .await
            .expect("user_email rollup");
        let by_email: Vec<(i64, String, i32, i64)> =
            rows.iter().map(|row| (row.get(0), row.get(1), row.get(2), row.get(3))).collect();
        assert_eq!(by_email, [(0, "a@x".to_owned(), -1, 1), (2, "a@x".to_owned(), 200, 1)]);
        let gone: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_indexes WHERE indexname IN ('events_by_user_id_time', 'events_by_user_email_time')",
                &[],
            )
            .await
            .expect("indexes")
            .get(0);
        assert_eq!(gone, 0, "the two (user, timestamp) indexes are dropped");
    }
}
