//! `audit-collector migrate --from <sqlite file> --to postgres://…`: moves a trail from
//! SQLite up to PostgreSQL (the copy is `store::postgres::from_sqlite`). Stop the
//! collector first; afterwards start the replicas on the URL with the same signing key and
//! run `audit-collector verify --database <url>` to prove the copy.

use std::path::PathBuf;

use clap::Args;

use crate::store::postgres::from_sqlite::{migrate, MigrateError};
use crate::store::DatabaseLocation;

/// The flags of `audit-collector migrate`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The SQLite database file of the collector (only read).
    #[arg(long, value_name = "PATH")]
    pub from: PathBuf,

    /// The empty PostgreSQL database to copy into, postgres://user:password@host/database.
    #[arg(long, env = "AUDIT_DATABASE", value_name = "URL", hide_env_values = true)]
    pub to: String,
}

/// Runs `migrate`; the text to print.
pub async fn run(args: &MigrateArgs) -> Result<String, MigrateError> {
    if !matches!(DatabaseLocation::of(std::path::Path::new(&args.to)), DatabaseLocation::Postgres(_)) {
        return Err(MigrateError::Store(crate::store::StoreError::PostgresUrl(
            "--to must start with postgres:// or postgresql://".to_owned(),
        )));
    }
    let copied = migrate(&args.from, &args.to).await?;
    Ok(format!(
        "migrated {} events (seq up to {}, anchor at {}), {} checkpoints, {} tokens and {} senders from {}\n",
        copied.events,
        copied.head_seq,
        copied.anchor_seq,
        copied.checkpoints,
        copied.tokens,
        copied.senders,
        args.from.display()
    ))
}
