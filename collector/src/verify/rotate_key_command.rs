//! `audit-collector rotate-key`: hands checkpoint signing over to a new key. It signs, with
//! the current key, a checkpoint of the trail's head that names the new public key; every
//! later checkpoint must be signed by the new key, and `verify` follows the handover, so
//! the auditor's one (oldest) key still verifies the whole history. Keys stay in their
//! files: only public keys and key ids go into the database.
//!
//! Run it with the collector stopped, then start the collector with the new key: a
//! collector still running with the old key can no longer sign (the chain expects the new
//! key) and says so in its log, so its events stay uncovered until it is restarted. On
//! PostgreSQL, stop every replica, rotate, and start them all with the new key.

use std::path::PathBuf;

use clap::Args;

use crate::chain::signing::{default_key_path, KeyError, TrailSigner};
use crate::store::{AdminStore, DatabaseLocation, StoreError};

/// The flags of `audit-collector rotate-key`.
#[derive(Debug, Args)]
pub struct RotateKeyArgs {
    /// The collector's database.
    #[arg(long, env = "AUDIT_DATABASE", value_name = "PATH", default_value = "data/audit.db")]
    pub database: PathBuf,
    /// The current signing key (default: next to the database, `<name>.signing-key.pem`).
    #[arg(long, env = "AUDIT_SIGNING_KEY", value_name = "PATH")]
    pub signing_key: Option<PathBuf>,
    /// The new signing key (PKCS#8 PEM); created (mode 0600) when the file does not exist.
    /// Start the collector with it afterwards (--signing-key).
    #[arg(long, value_name = "PATH")]
    pub new_signing_key: PathBuf,
}

/// Why the key was not rotated.
#[derive(Debug, thiserror::Error)]
pub enum RotateKeyError {
    /// A key file.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The database, or a key the chain does not expect.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The new key is the current key.
    #[error("the new key {0} is the current key; give --new-signing-key a new file (it is created when missing)")]
    SameKey(String),
}

/// Signs the handover checkpoint; returns what to tell the operator.
pub async fn run_rotate_key(args: &RotateKeyArgs) -> Result<String, RotateKeyError> {
    let location = DatabaseLocation::of(&args.database);
    if matches!(location, DatabaseLocation::Postgres(_)) && args.signing_key.is_none() {
        return Err(RotateKeyError::Store(StoreError::Unsupported(
            "with PostgreSQL, give --signing-key (the key file every replica signs with now)".to_owned(),
        )));
    }
    let current_path = args.signing_key.clone().unwrap_or_else(|| default_key_path(&args.database));
    let current = TrailSigner::load(&current_path)?;
    let next = TrailSigner::load_or_create(&args.new_signing_key)?;
    if next.key_id() == current.key_id() {
        return Err(RotateKeyError::SameKey(next.key_id().to_owned()));
    }
    let handover = AdminStore::open(&location).await?.hand_over(&current, &next.verifier()).await?;
    Ok(format!(
        "checkpoint {} (seq {}), signed by key {}, hands over to key {}\nevery later checkpoint must be signed by the new key: start the collector with --signing-key {}\n",
        handover.number,
        handover.last_seq,
        current.key_id(),
        next.key_id(),
        args.new_signing_key.display()
    ))
}
