//! The store of the trail, behind one interface ([`trail_store::TrailStore`]).
//!
//! SQLite ([`sqlite_store`]): one thread owns the write connection ([`writer`]) and takes
//! work over a bounded queue, and runs the SQL of [`write_sql`] in its transactions; readers use
//! their own connections ([`reader`]); the schema
//! and the connection settings live in [`schema`]; [`activity`] counts events per hour for
//! the viewer's chart. [`retention`] and [`checkpointing`] are
//! the background tasks every store runs: they purge old events in bounded batches and
//! sign checkpoints through the interface. [`senders`] keeps each filter worker's accounting
//! of its numbered events, from which the collector records what it never received.

pub mod activity;
pub mod chain_linking;
pub mod chain_migration;
pub mod chain_store;
pub mod checkpointing;
#[cfg(test)]
mod contract_tests;
pub mod error;
pub mod new_event;
pub mod postgres;
pub mod reader;
pub mod retention;
pub mod schema;
pub mod senders;
pub mod sqlite_store;
#[cfg(test)]
mod test_support;
pub mod tokens;
pub mod trail_query;
pub mod trail_store;
pub mod write_sql;
pub mod writer;

pub use error::StoreError;
pub use new_event::NewEvent;
pub use reader::PageOutcome;
pub use trail_store::{DatabaseLocation, TrailStore};

/// Milliseconds since the Unix epoch, by the system clock.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}
