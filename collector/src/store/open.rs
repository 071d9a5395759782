//! How a database is opened: the one place that turns `--database` / `AUDIT_DATABASE` (a
//! SQLite path or a `postgres://` URL, [`DatabaseLocation`]) into a store. The server asks
//! it for the trail store ([`open_trail`]); the commands that change the database beside
//! the trail (`token`, `rotate-key`) ask it for the admin store ([`AdminStore`]). Both
//! create the database, or bring its schema up to date, when they open it; `verify` only
//! reads ([`open_sqlite_to_verify`]; PostgreSQL in `verify::from_postgres`), and `migrate`
//! copies a SQLite file into PostgreSQL (`postgres::from_sqlite`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use audit_event::chain::{Checkpoint, TrailPublicKey};
use deadpool_postgres::Pool;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::postgres::{self, PgStore};
use super::sqlite::{chain_store, schema, tokens, SqliteStore};
use super::tokens::TokenRecord;
use super::trail_store::TrailStore;
use super::{now_millis, StoreError};
use crate::auth::Scope;
use crate::chain::signing::{TrailSigner, TrailVerifier};

/// Where the trail lives, as `--database` / `AUDIT_DATABASE` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseLocation {
    /// A SQLite file (the default).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl DatabaseLocation {
    /// A `postgres://` or `postgresql://` URL is PostgreSQL; anything else is a SQLite path.
    pub fn of(database: &Path) -> DatabaseLocation {
        match database.to_str() {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                DatabaseLocation::Postgres(url.to_owned())
            }
            _ => DatabaseLocation::Sqlite(database.to_path_buf()),
        }
    }
}

/// Opens the trail store at `location`, signing checkpoints with the key `load_signer`
/// returns, and the public key of that signer. On SQLite the database is opened first: it
/// creates the directory the default key lives in. `queue_batches` bounds SQLite's write
/// queue (PostgreSQL has none); `max_unsealed_events` PostgreSQL's queue of events waiting
/// for the sealer.
pub async fn open_trail<E>(
    location: DatabaseLocation,
    queue_batches: usize,
    max_unsealed_events: u64,
    load_signer: impl FnOnce() -> Result<TrailSigner, E> + Send + 'static,
) -> Result<(Arc<dyn TrailStore>, TrailPublicKey), E>
where
    E: From<StoreError> + Send + 'static,
{
    let task_failed = |error: tokio::task::JoinError| E::from(StoreError::Task(error.to_string()));
    match location {
        DatabaseLocation::Sqlite(path) => tokio::task::spawn_blocking(move || {
            let conn = SqliteStore::prepare(&path)?;
            let signer = load_signer()?;
            let trail_key = signer.public_key();
            let store: Arc<dyn TrailStore> = Arc::new(SqliteStore::start(conn, &path, queue_batches, Some(signer))?);
            Ok((store, trail_key))
        })
        .await
        .map_err(task_failed)?,
        DatabaseLocation::Postgres(url) => {
            // Every replica signs with the one key it is given; none is kept in the database.
            let signer = tokio::task::spawn_blocking(load_signer).await.map_err(task_failed)??;
            let trail_key = signer.public_key();
            let store: Arc<dyn TrailStore> =
                Arc::new(PgStore::open(&url, Some(signer)).await?.with_max_unsealed_events(max_unsealed_events));
            Ok((store, trail_key))
        }
    }
}

/// Opens a SQLite trail for `verify`, which only reads (a copy is fine): never created,
/// migrated or written, whatever its schema version.
pub fn open_sqlite_to_verify(path: &Path) -> Result<Connection, rusqlite::Error> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
}

/// What the commands change beside the trail: tokens, and the handover of checkpoint
/// signing to a new key. Each call is its own transaction.
pub struct AdminStore {
    database: AdminDatabase,
}

enum AdminDatabase {
    Sqlite(Connection),
    Postgres(Pool),
}

impl AdminStore {
    /// Opens the database at `location` (created, or its schema brought up to date, when
    /// needed).
    pub async fn open(location: &DatabaseLocation) -> Result<AdminStore, StoreError> {
        let database = match location {
            DatabaseLocation::Sqlite(path) => AdminDatabase::Sqlite(schema::open_for_writing(path)?),
            DatabaseLocation::Postgres(url) => {
                let pool = postgres::schema::pool(url)?;
                postgres::schema::migrate(&pool).await?;
                AdminDatabase::Postgres(pool)
            }
        };
        Ok(AdminStore { database })
    }

    /// Stores a new token; [`StoreError::TokenNameTaken`] when an active token has its name.
    pub async fn insert_token(
        &self,
        name: &str,
        scope: Scope,
        digest: &[u8; 32],
        now_ms: i64,
    ) -> Result<i64, StoreError> {
        match &self.database {
            AdminDatabase::Sqlite(conn) => tokens::insert_token(conn, name, scope, digest, now_ms),
            AdminDatabase::Postgres(pool) => postgres::tokens::insert_token(pool, name, scope, digest, now_ms).await,
        }
    }

    /// Every token ever made, oldest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        match &self.database {
            AdminDatabase::Sqlite(conn) => tokens::list_tokens(conn),
            AdminDatabase::Postgres(pool) => postgres::tokens::list_tokens(pool).await,
        }
    }

    /// Revokes the active token with this name or id; how many were revoked.
    pub async fn revoke_token(&self, name_or_id: &str, now_ms: i64) -> Result<usize, StoreError> {
        match &self.database {
            AdminDatabase::Sqlite(conn) => tokens::revoke_token(conn, name_or_id, now_ms),
            AdminDatabase::Postgres(pool) => postgres::tokens::revoke_token(pool, name_or_id, now_ms).await,
        }
    }

    /// Signs with `current` a checkpoint of the head that hands signing over to `next`, in
    /// a transaction that locks the chain head (as every sealing and checkpointing one
    /// does), so a writer still running cannot interleave.
    pub async fn hand_over(&mut self, current: &TrailSigner, next: &TrailVerifier) -> Result<Checkpoint, StoreError> {
        match &mut self.database {
            AdminDatabase::Sqlite(conn) => {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let handover = chain_store::issue_handover(&tx, current, next, now_millis())?;
                tx.commit()?;
                Ok(handover)
            }
            AdminDatabase::Postgres(pool) => postgres::chain::handover(pool, current, next).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::postgres::test_cluster::fresh_database;

    /// What `token` and `rotate-key` do, through the admin store of `location`.
    async fn tokens_and_a_handover_work_on(location: DatabaseLocation) {
        let mut admin = AdminStore::open(&location).await.expect("open");
        let id = admin.insert_token("soc", Scope::Read, &[7; 32], 1).await.expect("insert");
        let taken = admin.insert_token("soc", Scope::Admin, &[8; 32], 2).await;
        assert!(matches!(taken, Err(StoreError::TokenNameTaken { .. })), "{taken:?}");
        assert_eq!(admin.revoke_token("soc", 3).await.expect("revoke"), 1);
        let listed = admin.list_tokens().await.expect("list");
        let revoked =
            TokenRecord { id, name: "soc".into(), scope: Scope::Read, created_at_ms: 1, revoked_at_ms: Some(3) };
        assert_eq!(listed, [revoked]);
        let (current, next) = (TrailSigner::from_seed([1; 32]), TrailSigner::from_seed([2; 32]));
        let handover = admin.hand_over(&current, &next.verifier()).await.expect("hand over");
        assert_eq!((handover.number, handover.key_id.as_str()), (1, current.key_id()));
        assert_eq!(handover.next_public_key, Some(next.public_key().public_key_hex));
        let stale = admin.hand_over(&current, &next.verifier()).await;
        assert!(matches!(stale, Err(StoreError::WrongSigningKey(_))), "the old key signs no more: {stale:?}");
    }

    #[tokio::test]
    async fn the_admin_store_keeps_tokens_and_hands_over_on_sqlite() {
        let dir = tempfile::tempdir().expect("temp dir");
        tokens_and_a_handover_work_on(DatabaseLocation::of(&dir.path().join("audit.db"))).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_admin_store_keeps_tokens_and_hands_over_on_postgres() {
        tokens_and_a_handover_work_on(DatabaseLocation::of(Path::new(&fresh_database().await))).await;
    }

    #[test]
    fn a_postgres_url_is_postgres_and_anything_else_a_sqlite_path() {
        for url in ["postgres://u@h/db", "postgresql://h:5433/audit?sslmode=disable"] {
            assert_eq!(DatabaseLocation::of(Path::new(url)), DatabaseLocation::Postgres(url.to_owned()));
        }
        for path in ["data/audit.db", "/var/lib/audit.db", "postgres.db"] {
            assert_eq!(DatabaseLocation::of(Path::new(path)), DatabaseLocation::Sqlite(path.into()));
        }
    }
}
