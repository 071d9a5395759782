//! The `verify` and `public-key` subcommands: their flags, and running them. They print
//! for a person; `main.rs` turns the outcome into the exit status (see
//! [`super::report::exit_code`]: 0 intact and every event signed, 3 the signed part intact
//! with an uncovered tail, 1 not intact, 2 could not check).

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::from_postgres::verify_postgres;
use super::report::{exit_code, Coverage};
use super::witness::{check_witness, read_witness, Witnessed};
use super::{verify_api, verify_database, TrailReport, VerifyError};
use crate::chain::signing::{default_key_path, KeyError, TrailSigner, TrailVerifier};
use crate::store::open::open_sqlite_to_verify;
use crate::store::DatabaseLocation;

/// The flags of `audit-collector verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A database file to verify (a copy is fine; it is only read), or a postgres:// URL.
    #[arg(long, value_name = "PATH|URL", conflicts_with = "url", required_unless_present = "url")]
    pub database: Option<PathBuf>,

    /// Or the /audit URL of a collector (or of the service Envoy fronts), e.g.
    /// http://broker.example/audit: walks /audit/checkpoints and every /audit page.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,

    /// A read token for --url.
    #[arg(long, env = "AUDIT_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// The public key that signs checkpoints: a file (PEM or hex) or 64 hex digits. Get it
    /// once, from the operator or `GET /audit/public-key`, and keep it.
    #[arg(long, value_name = "PATH|HEX")]
    pub public_key: String,
    /// A file of checkpoints kept outside the operator's reach, as `tail` (any --format) or
    /// the collector's --witness-file wrote them; other lines are skipped. Catches a trail
    /// cut back to an older checkpoint, or rewritten after one was witnessed. Repeatable.
    #[arg(long, value_name = "PATH")]
    pub witness: Vec<PathBuf>,
    /// Fail (exit 1) unless every event is covered by a signed checkpoint, instead of
    /// exiting 3 for an uncovered tail. Sign one first with `audit-collector checkpoint`.
    #[arg(long)]
    pub require_full_coverage: bool,
}

/// How `public-key` prints the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyFormat {
    /// PEM `PUBLIC KEY` (OpenSSL reads it).
    Pem,
    /// 64 hex digits.
    Hex,
    /// The JSON of `GET /audit/public-key`.
    Json,
}

/// The flags of `audit-collector public-key`.
#[derive(Debug, Args)]
pub struct PublicKeyArgs {
    /// The collector's database; the key is read from beside it unless --signing-key is given.
    #[arg(long, env = "AUDIT_DATABASE", value_name = "PATH", default_value = "data/audit.db")]
    pub database: PathBuf,

    /// The signing key file (default: next to the database, `<name>.signing-key.pem`).
    #[arg(long, env = "AUDIT_SIGNING_KEY", value_name = "PATH")]
    pub signing_key: Option<PathBuf>,

    /// Output format.
    #[arg(long, value_enum, default_value = "pem")]
    pub format: KeyFormat,
}

/// Reads the public key argument: a file's content when it names a file, else the text.
pub fn read_public_key(argument: &str) -> Result<TrailVerifier, KeyError> {
    match std::fs::read_to_string(argument) {
        Ok(text) => TrailVerifier::parse(&text),
        Err(_) => TrailVerifier::parse(argument),
    }
}

/// Runs `verify`: the trail (a PostgreSQL URL in `--database` is read here; a SQLite file
/// and the API on a blocking thread, [`run_verify`]), then every witness given.
pub async fn verify(args: VerifyArgs) -> Result<TrailReport, VerifyError> {
    let postgres = match args.database.as_deref().map(DatabaseLocation::of) {
        Some(DatabaseLocation::Postgres(url)) => url,
        _ => {
            return tokio::task::spawn_blocking(move || run_verify(&args))
                .await
                .map_err(|error| VerifyError::Read(error.to_string()))?
        }
    };
    let key = read_public_key(&args.public_key).map_err(|error| VerifyError::Read(error.to_string()))?;
    let witnessed = read_witnesses(&args)?;
    let report = verify_postgres(&postgres, &key).await?;
    with_witnesses(report, &key, &args.witness, &witnessed)
}

/// Runs `verify` on a SQLite file or through the API, then every witness given.
pub fn run_verify(args: &VerifyArgs) -> Result<TrailReport, VerifyError> {
    let key = read_public_key(&args.public_key).map_err(|error| VerifyError::Read(error.to_string()))?;
    let witnessed = read_witnesses(args)?;
    let report = verify_trail(args, &key)?;
    with_witnesses(report, &key, &args.witness, &witnessed)
}

fn read_witnesses(args: &VerifyArgs) -> Result<Vec<Witnessed>, VerifyError> {
    let mut witnessed = Vec::new();
    for path in &args.witness {
        witnessed.extend(read_witness(path)?);
    }
    Ok(witnessed)
}

/// Checks the witnesses when files were given, even when they hold no checkpoint: the
/// report then says the witness proves nothing, never "no witness given".
fn with_witnesses(
    report: TrailReport,
    key: &TrailVerifier,
    files: &[PathBuf],
    witnessed: &[Witnessed],
) -> Result<TrailReport, VerifyError> {
    if files.is_empty() {
        Ok(report)
    } else {
        check_witness(report, key, witnessed)
    }
}

/// What `verify` prints and its exit status, for any outcome.
pub fn verify_outcome(require_full_coverage: bool, outcome: &Result<TrailReport, VerifyError>) -> (String, i32) {
    match outcome {
        Ok(report) if require_full_coverage && report.coverage() != Coverage::Full => (
            format!(
                "{report}FULL COVERAGE REQUIRED (--require-full-coverage) and NOT MET: {} events are not covered by a signed checkpoint\n",
                report.uncovered_events()
            ),
            exit_code::NOT_INTACT,
        ),
        Ok(report) => (report.to_string(), report.exit_code()),
        Err(error @ VerifyError::NotIntact(_)) => (format!("{error}\n"), exit_code::NOT_INTACT),
        Err(error) => (format!("audit-collector verify: {error}\n"), exit_code::UNREADABLE),
    }
}

fn verify_trail(args: &VerifyArgs, key: &TrailVerifier) -> Result<TrailReport, VerifyError> {
    match (&args.database, &args.url) {
        (Some(path), _) => {
            let conn = open_sqlite_to_verify(path)
                .map_err(|error| VerifyError::Read(format!("{}: {error}", path.display())))?;
            verify_database(&conn, key).map_err(|error| match error {
                VerifyError::Read(reason) => VerifyError::Read(format!(
                    "{}: {reason} (is it the database of an audit-collector that keeps the hash chain?)",
                    path.display()
                )),
                other => other,
            })
        }
        (None, Some(url)) => {
            let token = args.token.as_deref().unwrap_or_default();
            verify_api(url, token, key)
        }
        (None, None) => Err(VerifyError::Read("give --database PATH or --url URL".to_owned())),
    }
}

/// Runs `public-key`: the text to print.
pub fn run_public_key(args: &PublicKeyArgs) -> Result<String, KeyError> {
    let path = args.signing_key.clone().unwrap_or_else(|| default_key_path(&args.database));
    let public = TrailSigner::load(&path)?.public_key();
    Ok(match args.format {
        KeyFormat::Pem => public.public_key_pem,
        KeyFormat::Hex => format!("{}\n", public.public_key_hex),
        KeyFormat::Json => format!("{}\n", serde_json::to_string_pretty(&public).unwrap_or_default()),
    })
}
