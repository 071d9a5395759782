//! The `audit-collector` command line. Each subcommand's arguments turn into validated
//! settings here, so `main.rs` only parses, starts logging and runs. Every flag has an
//! environment variable; tokens are best given through the environment, where `ps` does
//! not show them, and their values are never printed in `--help`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::auth::TokenSet;
use crate::config::{Config, ConfigError, PublicUrl, DEFAULT_RETENTION_DAYS, DEFAULT_WRITE_QUEUE_BATCHES};

/// `audit-collector`: stores audit events and serves the PactFlow-compatible `GET /audit`.
#[derive(Debug, Parser)]
#[command(name = "audit-collector", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve POST /v1/events (ingest from the filter) and GET /audit (the trail).
    Serve(ServeArgs),
    /// Create, list and revoke bearer tokens kept in the database.
    Token(crate::token_command::TokenArgs),
    /// Follow a trail's /audit and print its events as NDJSON (native, OCSF or ECS).
    Tail(crate::tail::TailArgs),
    /// Prove the trail intact: recompute the hash chain and check every signed checkpoint,
    /// from a database file or through the /audit API.
    Verify(crate::verify::command::VerifyArgs),
    /// Copy a trail from a SQLite file into an empty PostgreSQL database (docs/postgres.md).
    Migrate(crate::migrate_command::MigrateArgs),
    /// Stop Envoy without losing events: drain its listeners, then wait until the audit
    /// filter's buffers are delivered; exit 1 naming what is still buffered at the deadline.
    EnvoyDrain(crate::envoy_drain::EnvoyDrainArgs),
    /// Print the public key that verifies this collector's checkpoints.
    PublicKey(crate::verify::command::PublicKeyArgs),
    /// Ask a running collector to sign a checkpoint now (an `admin` token), so every event
    /// stored so far is covered by a signature before you verify.
    Checkpoint(crate::verify::checkpoint_command::CheckpointArgs),
    /// Hand checkpoint signing over to a new key, with a checkpoint the current key signs
    /// (run it with the collector stopped, then start it with the new key).
    RotateKey(crate::verify::rotate_key_command::RotateKeyArgs),
}

/// The flags of `audit-collector serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; see --address-file).
    #[arg(long, env = "AUDIT_LISTEN", value_name = "IP:PORT", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// Once listening, write the bound ip:port to this file (atomically).
    #[arg(long, env = "AUDIT_ADDRESS_FILE", value_name = "PATH")]
    pub address_file: Option<PathBuf>,

    /// The SQLite database file (its directory is created when missing), or a
    /// postgres://user:password@host/database URL for replicas on PostgreSQL (docs/postgres.md).
    #[arg(long, env = "AUDIT_DATABASE", value_name = "PATH|URL", default_value = "data/audit.db")]
    pub database: PathBuf,

    /// Bearer token(s) accepted on GET /audit, comma-separated. Required.
    #[arg(long, env = "AUDIT_TOKEN", value_name = "TOKENS", hide_env_values = true)]
    pub read_token: Option<String>,

    /// Bearer token the filter sends on POST /v1/events (comma-separated to rotate). Required.
    #[arg(long, env = "AUDIT_INGEST_TOKEN", value_name = "TOKENS", hide_env_values = true)]
    pub ingest_token: Option<String>,

    /// Base URL for the _links of /audit pages, e.g. https://broker.example; by default
    /// they are built from the request's Host and x-forwarded-proto.
    #[arg(long, env = "AUDIT_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,

    /// Days an event is kept before it is purged (at least 1).
    #[arg(long, env = "AUDIT_RETENTION_DAYS", value_name = "DAYS", default_value_t = DEFAULT_RETENTION_DAYS)]
    pub retention_days: u32,

    /// Seconds between retention purges (a purge also runs at startup; each deletes every
    /// expired event, in batches that each sign a checkpoint). Expired events stay up to
    /// this long past their retention (at least 1).
    #[arg(long, env = "AUDIT_RETENTION_INTERVAL_SECS", value_name = "SECONDS",
          default_value_t = crate::config::DEFAULT_RETENTION_INTERVAL_SECS)]
    pub retention_interval_secs: u64,

    /// Batches that may wait for the database writer; when full, ingest answers 503.
    #[arg(long, env = "AUDIT_WRITE_QUEUE_BATCHES", value_name = "N", default_value_t = DEFAULT_WRITE_QUEUE_BATCHES)]
    pub write_queue_batches: usize,

    /// PostgreSQL: acknowledged events that may wait for the sealer; past it, ingest answers
    /// 503 with Retry-After to batches that carry events (the filter keeps them and retries),
    /// so acknowledged follows what the sealer seals (docs/configuration.md).
    #[arg(long, env = "AUDIT_PG_MAX_UNSEALED_EVENTS", value_name = "EVENTS",
          default_value_t = crate::config::DEFAULT_PG_MAX_UNSEALED_EVENTS)]
    pub pg_max_unsealed_events: u64,

    /// Seconds between signed checkpoints of the hash chain (only when it has grown; also
    /// after every retention purge and at shutdown).
    #[arg(long, env = "AUDIT_CHECKPOINT_INTERVAL_SECS", value_name = "SECONDS",
          default_value_t = crate::config::DEFAULT_CHECKPOINT_INTERVAL_SECS)]
    pub checkpoint_interval_secs: u64,

    /// The Ed25519 key that signs checkpoints (PKCS#8 PEM), created (mode 0600) when
    /// missing; default: next to the database, `<name>.signing-key.pem`.
    #[arg(long, env = "AUDIT_SIGNING_KEY", value_name = "PATH")]
    pub signing_key: Option<PathBuf>,

    /// Also append every signed checkpoint to this file (one JSON line each, as `tail`
    /// writes them), best on storage the database's operator cannot rewrite; `verify
    /// --witness` checks the trail against it.
    #[arg(long, env = "AUDIT_WITNESS_FILE", value_name = "PATH")]
    pub witness_file: Option<PathBuf>,

    /// Seconds a hole in a filter worker's event numbers may stay open (waiting for a late
    /// batch or the worker's own gap record) before the collector records it as a gap.
    #[arg(long, env = "AUDIT_HOLE_GRACE_SECS", value_name = "SECONDS",
          default_value_t = crate::config::DEFAULT_HOLE_GRACE_SECS)]
    pub hole_grace_secs: u64,

    /// Seconds without a batch or heartbeat after which a filter worker is recorded as
    /// stopped, with the events it never delivered (at least 1).
    #[arg(long, env = "AUDIT_SENDER_SILENCE_SECS", value_name = "SECONDS",
          default_value_t = crate::config::DEFAULT_SENDER_SILENCE_SECS)]
    pub sender_silence_secs: u64,
}

/// What `serve` runs with: where to listen and the validated [`Config`].
#[derive(Debug)]
pub struct ServeSettings {
    /// The address to bind.
    pub listen: SocketAddr,
    /// Everything else.
    pub config: Config,
}

impl ServeArgs {
    /// Checks the flags and builds the settings, or says which flag to fix.
    pub fn into_settings(self) -> Result<ServeSettings, ConfigError> {
        let listen =
            self.listen.trim().parse().map_err(|_| ConfigError::InvalidListen { value: self.listen.clone() })?;
        let read_tokens = TokenSet::from_list(self.read_token.as_deref().unwrap_or_default());
        let ingest_tokens = TokenSet::from_list(self.ingest_token.as_deref().unwrap_or_default());
        let mut config = Config::new(self.database, read_tokens, ingest_tokens);
        config.address_file = self.address_file;
        config.public_url = self.public_url.as_deref().map(PublicUrl::parse).transpose()?;
        config.retention_days = self.retention_days;
        config.retention_interval = std::time::Duration::from_secs(self.retention_interval_secs);
        config.write_queue_batches = self.write_queue_batches;
        config.pg_max_unsealed_events = self.pg_max_unsealed_events;
        config.checkpoint_interval = std::time::Duration::from_secs(self.checkpoint_interval_secs);
        config.signing_key = self.signing_key;
        config.witness_file = self.witness_file;
        config.hole_grace = std::time::Duration::from_secs(self.hole_grace_secs);
        config.sender_silence = std::time::Duration::from_secs(self.sender_silence_secs);
        config.validate()?;
        Ok(ServeSettings { listen, config })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> Result<ServeSettings, String> {
        let mut argv = vec!["audit-collector", "serve"];
        argv.extend_from_slice(args);
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        match cli.command {
            Command::Serve(serve) => serve.into_settings().map_err(|e| e.to_string()),
            other => Err(format!("not serve: {other:?}")),
        }
    }

    #[test]
    fn defaults_apply_when_only_the_tokens_are_given() {
        let settings = serve(&["--read-token", "r1,r2", "--ingest-token", "i"]).expect("valid");
        assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.config.database, PathBuf::from("data/audit.db"));
        assert_eq!(settings.config.retention_days, 90);
        assert_eq!(settings.config.write_queue_batches, 256);
        assert_eq!(settings.config.pg_max_unsealed_events, 30_000);
        assert!(settings.config.read_tokens.accepts("r2"));
        assert!(settings.config.ingest_tokens.accepts("i"));
    }

    #[test]
    fn refuses_to_start_without_a_read_token_and_says_how_to_give_one() {
        let error = serve(&["--ingest-token", "i"]).err().unwrap_or_default();
        assert!(error.contains("--read-token") && error.contains("AUDIT_TOKEN"), "{error}");
    }

    #[test]
    fn bad_values_are_reported_with_their_flag() {
        let error = serve(&["--read-token", "r", "--ingest-token", "i", "--retention-days", "0"]).err();
        assert!(error.unwrap_or_default().contains("--retention-days"));
        let error = serve(&["--read-token", "r", "--ingest-token", "i", "--retention-interval-secs", "0"]).err();
        assert!(error.unwrap_or_default().contains("--retention-interval-secs"));
        let error = serve(&["--read-token", "r", "--ingest-token", "i", "--pg-max-unsealed-events", "0"]).err();
        assert!(error.unwrap_or_default().contains("--pg-max-unsealed-events"));
        let error = serve(&["--read-token", "r", "--ingest-token", "i", "--listen", "localhost"]).err();
        assert!(error.unwrap_or_default().contains("--listen"));
        let error = serve(&["--read-token", "r", "--ingest-token", "i", "--public-url", "broker"]).err();
        assert!(error.unwrap_or_default().contains("--public-url"));
    }
}
