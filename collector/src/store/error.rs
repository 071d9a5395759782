//! [`StoreError`]: what went wrong in the database, phrased for the operator.

use std::path::PathBuf;

/// A failure of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database directory could not be created.
    #[error("could not create the database directory {path}: {source}; check --database / AUDIT_DATABASE")]
    CreateDirectory {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened or prepared.
    #[error("could not open the database {path}: {source}; check --database / AUDIT_DATABASE")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer collector.
    #[error("the database {path} has schema version {found}, newer than this collector knows (up to {known}); run the newer audit-collector that wrote it, or point --database at another file")]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The one version this binary opens.
        known: i64,
    },
    /// The file was written by a development build before the schema was one file.
    #[error("the database {path} has schema version {found}, older than the one this collector opens ({known}); open it once with `audit-collector serve` built from commit {build}, which brings it to version {known} and links every event, then with this one")]
    OlderSchema {
        /// The file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The one version this binary opens.
        known: i64,
        /// The last build that upgrades it.
        build: &'static str,
    },
    /// The trail holds events stored before the hash chain existed, never linked.
    #[error("the database {path} holds events with no chain link (stored before the hash chain existed); open it once with `audit-collector serve` built from commit {build}, which links them, then with this one")]
    UnlinkedEvents {
        /// The file.
        path: PathBuf,
        /// The last build that links them.
        build: &'static str,
    },
    /// WAL could not be enabled, so readers would block the writer.
    #[error("the database {path} cannot use WAL journaling (journal_mode is `{mode}`); put it on a local file system")]
    NoWal {
        /// The file.
        path: PathBuf,
        /// The mode SQLite reported.
        mode: String,
    },
    /// A query failed.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A write transaction failed; nothing of it was committed.
    #[error("the write transaction failed: {0}")]
    WriteFailed(String),
    /// The write queue is full: the caller should retry shortly.
    #[error("the write queue is full")]
    QueueFull,
    /// The writer thread is gone (shutting down, or it stopped on an error).
    #[error("the database writer has stopped")]
    WriterStopped,
    /// The writer thread panicked; batches it had not committed were not acknowledged.
    #[error("the database writer thread panicked")]
    WriterPanicked,
    /// A stored event body is no longer valid JSON.
    #[error("stored event {uuid} is not valid JSON: {reason}")]
    CorruptEvent {
        /// The event.
        uuid: String,
        /// What serde said.
        reason: String,
    },
    /// An active token already has this name.
    #[error("a token named `{name}` already exists; revoke it first (`audit-collector token revoke {name}`) or choose another --name")]
    TokenNameTaken {
        /// The name.
        name: String,
    },
    /// A row of `api_tokens` is not what this collector writes.
    #[error("token {id} in api_tokens has an unknown scope or a digest that is not 32 bytes")]
    CorruptToken {
        /// Its row id.
        id: i64,
    },
    /// The hash chain or its checkpoints cannot be extended as stored.
    #[error("the trail's hash chain cannot be extended: {0}; run `audit-collector verify` on the database")]
    Chain(String),
    /// `--database` looks like a PostgreSQL URL but is not one.
    #[error("--database / AUDIT_DATABASE is not a usable PostgreSQL URL: {0}; write it as postgres://user:password@host:5432/database")]
    PostgresUrl(String),
    /// The TLS parameters of the PostgreSQL URL cannot be used.
    #[error("TLS to PostgreSQL: {0} (docs/postgres.md, \"TLS\")")]
    PostgresTls(String),
    /// The PostgreSQL schema was written by a newer collector.
    #[error("the PostgreSQL database has audit schema version {found}, newer than this collector knows (up to {known}); run the newer audit-collector that wrote it")]
    NewerPostgresSchema {
        /// Its `schema_version`.
        found: i32,
        /// The newest version this binary knows.
        known: i32,
    },
    /// The PostgreSQL schema is the write-once layout a development build numbered 9, then
    /// reverted: not the version 9 this collector knows, and no step of it reads that one.
    #[error("the PostgreSQL database has the audit schema of a reverted development build (version 9 with `event_seals`, commits 39bab6f..{build}); this collector cannot read or upgrade it: read the trail out with `audit-collector` built from commit {build} (GET /audit, or `verify`), then point --database at a new database")]
    RevertedPostgresLayout {
        /// The last build that reads it.
        build: &'static str,
    },
    /// A PostgreSQL query or connection failed.
    #[error("PostgreSQL: {}", with_cause(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// No PostgreSQL connection could be had.
    #[error("no PostgreSQL connection: {0}; check that the server is up and --database / AUDIT_DATABASE")]
    PostgresUnavailable(String),
    /// The store cannot do what was asked; the message says what and what to use instead.
    #[error("{0}")]
    Unsupported(String),
    /// The key given is not the one the checkpoint chain expects next: a different key, or
    /// the old key after a rotation handed over to a new one.
    #[error(transparent)]
    WrongSigningKey(#[from] crate::chain::checkpoint::WrongSigner),
    /// PostgreSQL's queue of acknowledged events waiting for the sealer is past its bound
    /// (`postgres::backlog`): nothing of the batch was stored, and it should come again.
    #[error("sealing is behind by about {unsealed} events, more than the {bound} that may wait for it (--pg-max-unsealed-events / AUDIT_PG_MAX_UNSEALED_EVENTS); nothing of the batch was stored; send it again shortly")]
    SealingBehind {
        /// Events waiting for the sealer, at most (this replica's reading).
        unsealed: u64,
        /// The bound.
        bound: u64,
    },
    /// The PostgreSQL trail is not being sealed (`postgres::sealer_health`): why.
    #[error("{0}")]
    SealingStalled(String),
    /// A blocking database task could not be joined.
    #[error("a database task failed: {0}")]
    Task(String),
}

/// tokio-postgres names only the kind of an error ("db error", "error performing TLS
/// handshake"); what happened is its source, which the operator needs to read.
fn with_cause(error: &tokio_postgres::Error) -> String {
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    /// Waiting too long for a pooled connection is back-pressure (503, retry), like a full
    /// writer queue; anything else means the server cannot be reached.
    fn from(error: deadpool_postgres::PoolError) -> StoreError {
        match error {
            deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => StoreError::QueueFull,
            deadpool_postgres::PoolError::Backend(error) => StoreError::Postgres(error),
            other => StoreError::PostgresUnavailable(other.to_string()),
        }
    }
}
