//! [`Config`]: everything [`crate::run`] needs besides the listener, checked once by
//! [`Config::validate`]. Errors name the flag and the environment variable that set the
//! value, because that is what the operator has to change.

use std::path::PathBuf;
use std::time::Duration;

use crate::auth::TokenSet;

/// Default capacity of the writer queue, in batches.
pub const DEFAULT_WRITE_QUEUE_BATCHES: usize = 256;
/// Default number of days an event is kept.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;
/// Default seconds between two retention purges.
pub const DEFAULT_RETENTION_INTERVAL_SECS: u64 = 600;
/// Default seconds between two checkpoints (when there are new events).
pub const DEFAULT_CHECKPOINT_INTERVAL_SECS: u64 = 300;
/// Default seconds a hole in a sender's numbers may wait for a late gap record or batch.
pub const DEFAULT_HOLE_GRACE_SECS: u64 = 60;
/// Default seconds without a batch or heartbeat after which a sender is recorded as stopped.
pub const DEFAULT_SENDER_SILENCE_SECS: u64 = 60;
/// Default bound on the events waiting for PostgreSQL's sealer before ingest answers 503.
pub const DEFAULT_PG_MAX_UNSEALED_EVENTS: u64 = crate::store::postgres::backlog::DEFAULT_MAX_UNSEALED_EVENTS;
/// Default limit on an ingest body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The collector's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The SQLite file; its directory is created when missing.
    pub database: PathBuf,
    /// When set, the bound `ip:port` is written here (atomically) once the server is ready.
    pub address_file: Option<PathBuf>,
    /// Tokens accepted on `GET /audit`.
    pub read_tokens: TokenSet,
    /// Tokens accepted on `POST /v1/events`.
    pub ingest_tokens: TokenSet,
    /// Base of the `_links` hrefs; without it they are built from `Host` and `x-forwarded-proto`.
    pub public_url: Option<PublicUrl>,
    /// Events whose timestamp is older than this many days are purged.
    pub retention_days: u32,
    /// How often the retention purge runs (it also runs at startup).
    pub retention_interval: Duration,
    /// Capacity of the queue in front of the writer thread, in batches. When it is full,
    /// ingest answers 503 rather than accept what it cannot store.
    pub write_queue_batches: usize,
    /// PostgreSQL: past this many acknowledged events waiting for the sealer, ingest answers
    /// 503 (Retry-After) to batches that carry events, so acknowledged follows sealed.
    pub pg_max_unsealed_events: u64,
    /// Largest ingest body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// How long shutdown waits for in-flight requests before it stops waiting.
    pub shutdown_grace: Duration,
    /// How often a checkpoint is signed when the trail has grown (also after each purge
    /// and at shutdown).
    pub checkpoint_interval: Duration,
    /// The Ed25519 key that signs checkpoints (PKCS#8 PEM); created when missing. `None`:
    /// next to the database, `<name>.signing-key.pem`.
    pub signing_key: Option<PathBuf>,
    /// When set, every signed checkpoint is appended to this file as well (a witness kept
    /// outside the database, for `verify --witness`).
    pub witness_file: Option<PathBuf>,
    /// A hole in a sender's numbers is recorded once the numbers after it have been stored
    /// this long without the hole being filled or named by a gap record.
    pub hole_grace: Duration,
    /// A sender not heard from (no batch, no heartbeat) for this long is recorded as stopped.
    pub sender_silence: Duration,
}

impl Config {
    /// A configuration with the defaults for everything but the database and the tokens.
    pub fn new(database: impl Into<PathBuf>, read_tokens: TokenSet, ingest_tokens: TokenSet) -> Config {
        Config {
            database: database.into(),
            address_file: None,
            read_tokens,
            ingest_tokens,
            public_url: None,
            retention_days: DEFAULT_RETENTION_DAYS,
            retention_interval: Duration::from_secs(DEFAULT_RETENTION_INTERVAL_SECS),
            write_queue_batches: DEFAULT_WRITE_QUEUE_BATCHES,
            pg_max_unsealed_events: DEFAULT_PG_MAX_UNSEALED_EVENTS,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(30),
            checkpoint_interval: Duration::from_secs(DEFAULT_CHECKPOINT_INTERVAL_SECS),
            signing_key: None,
            witness_file: None,
            hole_grace: Duration::from_secs(DEFAULT_HOLE_GRACE_SECS),
            sender_silence: Duration::from_secs(DEFAULT_SENDER_SILENCE_SECS),
        }
    }

    /// Checks the settings that have no safe meaning when empty or zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.read_tokens.is_empty() {
            return Err(ConfigError::MissingReadToken);
        }
        if self.signing_key.is_none()
            && matches!(crate::store::DatabaseLocation::of(&self.database), crate::store::DatabaseLocation::Postgres(_))
        {
            return Err(ConfigError::PostgresNeedsSigningKey);
        }
        if self.ingest_tokens.is_empty() {
            return Err(ConfigError::MissingIngestToken);
        }
        if self.read_tokens.shares_a_token_with(&self.ingest_tokens) {
            return Err(ConfigError::SharedToken);
        }
        if self.retention_days == 0 {
            return Err(ConfigError::ZeroRetention);
        }
        if self.write_queue_batches == 0 {
            return Err(ConfigError::ZeroWriteQueue);
        }
        if self.pg_max_unsealed_events == 0 {
            return Err(ConfigError::ZeroMaxUnsealed);
        }
        if self.retention_interval.is_zero() {
            return Err(ConfigError::ZeroRetentionInterval);
        }
        if self.max_body_bytes == 0 || self.max_connections == 0 {
            return Err(ConfigError::ZeroLimit);
        }
        if self.checkpoint_interval.is_zero() {
            return Err(ConfigError::ZeroCheckpointInterval);
        }
        if self.sender_silence.is_zero() {
            return Err(ConfigError::ZeroSenderSilence);
        }
        Ok(())
    }
}

/// The externally visible base URL of the collector, e.g. `https://broker.example`, without
/// a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(String);

impl PublicUrl {
    /// Accepts an absolute `http://` or `https://` URL with a host and no query or fragment.
    pub fn parse(text: &str) -> Result<PublicUrl, ConfigError> {
        let invalid = || ConfigError::InvalidPublicUrl { value: text.to_owned() };
        let trimmed = text.trim().trim_end_matches('/');
        let rest = trimmed.strip_prefix("https://").or_else(|| trimmed.strip_prefix("http://")).ok_or_else(invalid)?;
        let host = rest.split('/').next().unwrap_or_default();
        if host.is_empty() || trimmed.contains(['?', '#', ' ']) {
            return Err(invalid());
        }
        Ok(PublicUrl(trimmed.to_owned()))
    }

    /// The URL without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A setting that cannot be used, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// No read token.
    #[error(
        "no read token: set --read-token or AUDIT_TOKEN to the bearer token(s) GET /audit accepts (comma-separated)"
    )]
    MissingReadToken,
    /// No ingest token.
    #[error("no ingest token: set --ingest-token or AUDIT_INGEST_TOKEN to the bearer token the filter sends on POST /v1/events")]
    MissingIngestToken,
    /// The same token reads and ingests.
    #[error("a token is both a read token (--read-token / AUDIT_TOKEN) and an ingest token (--ingest-token / AUDIT_INGEST_TOKEN): give the filter its own token, so a reader cannot write to the trail")]
    SharedToken,
    /// Retention of zero days.
    #[error("--retention-days / AUDIT_RETENTION_DAYS must be at least 1 (the number of days events are kept; the default is 90)")]
    ZeroRetention,
    /// A writer queue that holds nothing.
    #[error("--write-queue-batches / AUDIT_WRITE_QUEUE_BATCHES must be at least 1 (the number of batches waiting for the writer; the default is 256)")]
    ZeroWriteQueue,
    /// A bound on PostgreSQL's queue that refuses every batch.
    #[error("--pg-max-unsealed-events / AUDIT_PG_MAX_UNSEALED_EVENTS must be at least 1 (acknowledged events that may wait for PostgreSQL's sealer before ingest answers 503; the default is 30000)")]
    ZeroMaxUnsealed,
    /// Checkpoints with no time between them.
    #[error("--checkpoint-interval-secs / AUDIT_CHECKPOINT_INTERVAL_SECS must be at least 1 (seconds between signed checkpoints; the default is 300)")]
    ZeroCheckpointInterval,
    /// Senders recorded as stopped the moment they are heard.
    #[error("--sender-silence-secs / AUDIT_SENDER_SILENCE_SECS must be at least 1 (seconds without a heartbeat before a filter worker is recorded as stopped; the default is 60)")]
    ZeroSenderSilence,
    /// Purges with no time between them.
    #[error("--retention-interval-secs / AUDIT_RETENTION_INTERVAL_SECS must be at least 1 (seconds between retention purges; the default is 600)")]
    ZeroRetentionInterval,
    /// A limit of zero elsewhere in [`Config`].
    #[error("max_body_bytes and max_connections must be greater than zero")]
    ZeroLimit,
    /// An unusable public URL.
    #[error("--public-url / AUDIT_PUBLIC_URL `{value}` is not an absolute http:// or https:// URL without query or fragment, e.g. https://broker.example")]
    InvalidPublicUrl {
        /// What was given.
        value: String,
    },
    /// PostgreSQL without an explicit signing key.
    #[error("with a PostgreSQL --database, set --signing-key / AUDIT_SIGNING_KEY: every replica must sign with the same key file, and none is kept in the database")]
    PostgresNeedsSigningKey,
    /// An unusable listen address.
    #[error("--listen / AUDIT_LISTEN `{value}` is not an ip:port address, e.g. 127.0.0.1:8080 or 0.0.0.0:0")]
    InvalidListen {
        /// What was given.
        value: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Config {
        Config::new("audit.db", TokenSet::from_list("reader"), TokenSet::from_list("ingester"))
    }

    #[test]
    fn the_defaults_with_both_tokens_are_valid() {
        assert_eq!(valid().validate(), Ok(()));
    }

    #[test]
    fn missing_tokens_are_refused_naming_flag_and_env_var() {
        let mut config = valid();
        config.read_tokens = TokenSet::from_list("");
        let message = config.validate().map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(message.contains("--read-token") && message.contains("AUDIT_TOKEN"), "{message}");

        let mut config = valid();
        config.ingest_tokens = TokenSet::default();
        let message = config.validate().map_err(|e| e.to_string()).err().unwrap_or_default();
        assert!(message.contains("--ingest-token") && message.contains("AUDIT_INGEST_TOKEN"), "{message}");
    }

    #[test]
    fn one_token_for_reading_and_ingesting_is_refused() {
        let mut config = valid();
        config.ingest_tokens = TokenSet::from_list("other,reader");
        assert_eq!(config.validate(), Err(ConfigError::SharedToken));
    }

    #[test]
    fn zero_retention_and_zero_queue_are_refused() {
        let mut config = valid();
        config.retention_days = 0;
        assert_eq!(config.validate(), Err(ConfigError::ZeroRetention));
        let mut config = valid();
        config.write_queue_batches = 0;
        assert_eq!(config.validate(), Err(ConfigError::ZeroWriteQueue));
        let mut config = valid();
        config.pg_max_unsealed_events = 0;
        assert_eq!(config.validate(), Err(ConfigError::ZeroMaxUnsealed));
    }

    #[test]
    fn public_url_keeps_scheme_host_and_path_without_trailing_slash() {
        let url = PublicUrl::parse("https://broker.example/base/").map(|u| u.as_str().to_owned());
        assert_eq!(url, Ok("https://broker.example/base".to_owned()));
        for bad in ["broker.example", "ftp://x", "https://", "https://x/?a=b", "http://x#top"] {
            assert!(PublicUrl::parse(bad).is_err(), "accepted {bad}");
        }
    }
}
