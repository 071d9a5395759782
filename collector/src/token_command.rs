//! `audit-collector token create|list|revoke`: bearer tokens kept in the database (only as
//! SHA-256 digests), each with a name and a scope: `read` for `GET /audit`, `ingest` for
//! the filter's `POST /v1/events`, `admin` for signing a checkpoint on demand
//! (`POST /audit/checkpoints`). `create` prints the secret once, on stdout alone (so
//! `TOKEN=$(audit-collector token create …)` works), and never again. A running collector
//! sees a new or revoked token on the next request: tokens are looked up per request.

use std::io::Write;
use std::path::PathBuf;

use audit_event::timestamp::format_rfc3339_millis;
use clap::{Args, Subcommand, ValueEnum};

use crate::auth::{digest, new_secret, Scope};
use crate::store::{now_millis, AdminStore, DatabaseLocation, StoreError};

/// The arguments of `audit-collector token`.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The collector's database, a SQLite file or a postgres:// URL (created and migrated
    /// when missing).
    #[arg(long, env = "AUDIT_DATABASE", value_name = "PATH|URL", default_value = "data/audit.db", global = true)]
    pub database: PathBuf,

    /// What to do with tokens.
    #[command(subcommand)]
    pub action: TokenAction,
}

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenAction {
    /// Make a token and print its secret (once).
    Create {
        /// What the token may do.
        #[arg(long, value_enum)]
        scope: ScopeArg,
        /// A name for it, e.g. soc-splunk (letters, digits, `.`, `_`, `-`; at most 64).
        #[arg(long)]
        name: String,
    },
    /// List every token: id, name, scope, created, revoked. Never a secret.
    List,
    /// Revoke the active token with this name or id; the next request with it gets 401.
    Revoke {
        /// The token's name or id (see `token list`).
        name_or_id: String,
    },
}

/// A scope on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    /// GET /audit.
    Read,
    /// POST /v1/events.
    Ingest,
    /// POST /audit/checkpoints (sign a checkpoint on demand).
    Admin,
}

impl From<ScopeArg> for Scope {
    fn from(scope: ScopeArg) -> Scope {
        match scope {
            ScopeArg::Read => Scope::Read,
            ScopeArg::Ingest => Scope::Ingest,
            ScopeArg::Admin => Scope::Admin,
        }
    }
}

/// Why a token command failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenCommandError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The OS gave no random bytes.
    #[error("could not get random bytes for the token: {0}")]
    Random(getrandom::Error),
    /// An unusable name.
    #[error("--name `{0}` must be 1 to 64 letters, digits, `.`, `_` or `-`")]
    InvalidName(String),
    /// Nothing to revoke.
    #[error("no active token has the name or id `{0}`; `audit-collector token list` shows them")]
    NoSuchToken(String),
    /// Output failed.
    #[error("could not write the output: {0}")]
    Output(#[from] std::io::Error),
}

/// Runs one token subcommand; what a user reads goes to `out`, notes to `notes`.
pub async fn run(args: TokenArgs, out: &mut impl Write, notes: &mut impl Write) -> Result<(), TokenCommandError> {
    let database = AdminStore::open(&DatabaseLocation::of(&args.database)).await?;
    match args.action {
        TokenAction::Create { scope, name } => {
            let valid = !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !valid {
                return Err(TokenCommandError::InvalidName(name));
            }
            let scope = Scope::from(scope);
            let secret = new_secret().map_err(TokenCommandError::Random)?;
            let id = database.insert_token(&name, scope, &digest(&secret), now_millis()).await?;
            writeln!(
                notes,
                "token `{name}` (id {id}, scope {}) created; its secret is printed once, below:",
                scope.as_str()
            )?;
            writeln!(out, "{secret}")?;
        }
        TokenAction::List => {
            writeln!(out, "{:<4} {:<24} {:<7} {:<29} revoked", "id", "name", "scope", "created")?;
            for token in database.list_tokens().await? {
                let revoked = token.revoked_at_ms.map_or_else(|| "-".to_owned(), time);
                writeln!(
                    out,
                    "{:<4} {:<24} {:<7} {:<29} {revoked}",
                    token.id,
                    token.name,
                    token.scope.as_str(),
                    time(token.created_at_ms)
                )?;
            }
        }
        TokenAction::Revoke { name_or_id } => {
            if database.revoke_token(&name_or_id, now_millis()).await? == 0 {
                return Err(TokenCommandError::NoSuchToken(name_or_id));
            }
            writeln!(out, "revoked `{name_or_id}`")?;
        }
    }
    Ok(())
}

fn time(millis: i64) -> String {
    format_rfc3339_millis(millis.saturating_mul(1_000_000))
}
