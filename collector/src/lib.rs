//! The audit-sidecar collector: it stores the audit events the Envoy filter sends and
//! serves them back as PactFlow's paged `GET /audit` trail.
//!
//! Events arrive in batches on `POST /v1/events` ([`audit_event::ingest::INGEST_PATH`]).
//! Every event of a batch is parsed and validated before anything is stored; the batch is
//! then handed to the store (`store::TrailStore`: SQLite's writer thread, or any PostgreSQL
//! replica), and the filter gets its [`audit_event::IngestReceipt`] only after the
//! transaction holding the batch committed. Ingest is idempotent on the event `uuid`, so the
//! filter may retry freely.
//!
//! `GET /audit` pages through the trail in the order events were committed (their sequence
//! number), with `from=<uuid>` (inclusive) as the cursor and `_links.next` pointing at the
//! page that starts with the next event. Pages are keyset queries; offsets are never used.
//!
//! Where each module is, one line each: docs/code-map.md (the one module map). The entry
//! point is [`run`] ([`server`]).

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
/// The writer's connection setup (pragmas and the schema), so the bench's raw SQLite loop
/// writes with exactly the collector's settings.
pub use store::sqlite::schema::open_for_writing;
/// The writer's count of a batch into the activity rollups, and the event shape it reads, so
/// the bench's raw SQLite loop does the per-commit work the writer cannot skip either.
pub use store::{sqlite::activity_rollup::count_stored, NewEvent};
/// The SQLite store and the interface it implements, so the instruction budget's ingest
/// probe (`examples/ingest_cost.rs`) drives the store as the ingest handler does.
pub use store::{sqlite::SqliteStore, TrailStore};
