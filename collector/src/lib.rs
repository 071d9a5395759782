//! The audit-sidecar collector: it stores the audit events the Envoy filter sends and
//! serves them back as PactFlow's paged `GET /audit` trail.
//!
//! Events arrive in batches on `POST /v1/events` ([`audit_event::ingest::INGEST_PATH`]).
//! Every event of a batch is parsed and validated before anything is stored; the batch then
//! goes over a bounded queue to the one thread that writes SQLite, and the filter gets its
//! [`audit_event::IngestReceipt`] only after the transaction holding the batch committed.
//! Ingest is idempotent on the event `uuid`, so the filter may retry freely.
//!
//! `GET /audit` pages through the trail in the order events were committed (their sequence
//! number), with `from=<uuid>` (inclusive) as the cursor and `_links.next` pointing at the
//! page that starts with the next event. Pages are keyset queries; offsets are never used.
//!
//! # Layout
//! - [`server`]: [`run`], the entry point: accept loop, connection limits, graceful shutdown.
//! - [`config`]: [`Config`], the validated settings `run` needs, and [`ConfigError`].
//! - [`cli`]: the `audit-collector` command line (`serve` and its flags/env vars), which
//!   only turns arguments into a [`Config`].
//! - [`auth`]: bearer tokens and their scopes, kept as SHA-256 digests and compared in
//!   constant time.
//! - [`migrate_command`]: `audit-collector migrate`, a SQLite trail copied up to PostgreSQL.
//! - [`token_command`]: `audit-collector token create|list|revoke` on the database.
//! - [`tail`]: `audit-collector tail`, which follows a trail and prints NDJSON (native,
//!   OCSF or ECS) for a SIEM shipper, resuming from a state file.
//! - [`metrics`]: the counters and histograms of `GET /metrics`.
//! - [`batch`]: an ingest body turned into rows to store, or a message saying what was wrong
//!   (public so the ingest parser's fuzz target, `fuzz/fuzz_targets/collector_ingest.rs`, can call it).
//! - `http`: the routes: ingest, the audit page and its query parameters, the OpenAPI
//!   document, health, metrics, token checks by scope, and the one mapping from error to
//!   HTTP status (`application/problem+json`).
//! - `store`: the store interface (`TrailStore`: ingest, pages, tokens, checkpoints,
//!   retention, gauges) and its two implementations: SQLite (pragmas and migrations, the
//!   writer thread, the reader pool, retention) and PostgreSQL for N replicas (a leased
//!   sealer orders and chains; docs/postgres.md), each with the SQL of per-sender accounting.
//! - [`envoy_drain`]: `audit-collector envoy-drain`, the graceful stop of Envoy that
//!   loses no event (stop intake: health checks fail, listeners close; then wait for open
//!   connections to close and the filter's buffers to be delivered).
//! - [`completeness`]: per-sender numbering and heartbeats; the collector's own records of
//!   holes and of senders that stopped.
//! - [`chain`]: the tamper-evident trail: canonical form, hash links, signed checkpoints.
//! - [`verify`]: `audit-collector verify`: recompute the chain and check every checkpoint,
//!   from a database file or through the API.
//! - [`witness_file`]: `--witness-file`, every signed checkpoint appended to a file
//!   outside the database's reach.
//! - [`address_file`]: tells a test harness which port a `--listen …:0` server got.
//! - [`error`]: [`Error`], why [`run`] could not start or stop cleanly.

pub mod address_file;
pub mod auth;
pub mod batch;
pub mod chain;
pub mod cli;
pub mod completeness;
pub mod config;
pub mod envoy_drain;
pub mod error;
pub mod metrics;
pub mod migrate_command;
pub mod server;
pub mod tail;
pub mod token_command;
pub mod verify;
pub mod witness_file;

mod http;
mod store;

pub use auth::TokenSet;
pub use config::{Config, ConfigError, PublicUrl};
pub use error::Error;
pub use server::run;
/// The SQL that rebuilds the activity rollup from the stored events, for the bench's trail
/// generator, which writes rows without the collector's writer.
pub use store::sqlite::activity_rollup::REBUILD_ACTIVITY_SQL;
/// The writer's connection setup (pragmas and migrations), so the bench's raw SQLite loop
/// writes with exactly the collector's settings.
pub use store::sqlite::schema::open_for_writing;
