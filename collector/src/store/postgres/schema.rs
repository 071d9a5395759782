//! Connecting to PostgreSQL and bringing its schema to the version this collector knows
//! (`schema.sql`, then each later `schema_v<n>.sql`, recorded in `schema_version`). Replicas starting together take a
//! transaction-scoped advisory lock first, so exactly one of them creates the schema; a
//! database written by a newer collector is refused.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Timeouts};
use tokio_postgres::NoTls;

use super::super::StoreError;

/// The first schema.
const SCHEMA_V1: &str = include_str!("schema.sql");

/// The changes after it, in order: entry `n` brings the schema from version `n + 1` to
/// `n + 2`. Released entries are never edited: a change is a new entry.
const UPGRADES: &[&str] = &[include_str!("schema_v2.sql")];

/// The newest schema version this collector knows.
pub const SCHEMA_VERSION: i32 = 1 + UPGRADES.len() as i32;

/// The advisory lock key under which the schema is created ("audit-mi" in ASCII).
const MIGRATION_LOCK: i64 = 0x6175_6469_742d_6d69;

/// Connections one replica keeps; ingest waits for one at most [`POOL_WAIT`].
pub const POOL_SIZE: usize = 8;

/// How long a request waits for a free connection before ingest answers 503.
pub const POOL_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// A pool on `url`, without connecting yet.
pub fn pool(url: &str) -> Result<Pool, StoreError> {
    let config: tokio_postgres::Config =
        url.parse().map_err(|error: tokio_postgres::Error| StoreError::PostgresUrl(error.to_string()))?;
    let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    let timeouts = Timeouts { wait: Some(POOL_WAIT), create: Some(POOL_WAIT), recycle: Some(POOL_WAIT) };
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .timeouts(timeouts)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|error| StoreError::PostgresUrl(error.to_string()))
}

/// Creates the schema when the database has none; refuses a newer one.
pub async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    let exists: bool = tx.query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[]).await?.get(0);
    let found: i32 = if exists {
        tx.query_one("SELECT version FROM schema_version", &[]).await?.get(0)
    } else {
        tx.batch_execute(SCHEMA_V1).await?;
        tx.batch_execute("CREATE TABLE schema_version (version INTEGER NOT NULL)").await?;
        tx.execute("INSERT INTO schema_version (version) VALUES (1)", &[]).await?;
        1
    };
    if found > SCHEMA_VERSION {
        return Err(StoreError::NewerPostgresSchema { found, known: SCHEMA_VERSION });
    }
    for upgrade in UPGRADES.iter().skip(usize::try_from(found - 1).unwrap_or(0)) {
        tx.batch_execute(upgrade).await?;
    }
    tx.execute("UPDATE schema_version SET version = $1", &[&SCHEMA_VERSION]).await?;
    tx.commit().await?;
    Ok(())
}
