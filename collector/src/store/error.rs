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
        /// The newest version this binary can migrate to.
        known: i64,
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
    /// The store cannot do what was asked; the message says what and what to use instead.
    #[error("{0}")]
    Unsupported(String),
    /// The key given is not the one the checkpoint chain expects next: a different key, or
    /// the old key after a rotation handed over to a new one.
    #[error("checkpoints must now be signed by key {expected}, but this collector's signing key is {found}; start it with the key the newest checkpoint names (--signing-key / AUDIT_SIGNING_KEY), or hand over with `audit-collector rotate-key`")]
    WrongSigningKey {
        /// The key id the chain expects.
        expected: String,
        /// The key id of the signer given.
        found: String,
    },
    /// A blocking database task could not be joined.
    #[error("a database task failed: {0}")]
    Task(String),
}
