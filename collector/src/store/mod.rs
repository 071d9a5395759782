//! The store of the trail: one interface, two databases (docs/code-map.md walks through it).
//!
//! At the top, what every store shares:
//! - how a database is opened from its location ([`open`]): the trail store, and the admin
//!   store of tokens and key handovers;
//! - the interface ([`trail_store::TrailStore`]) and its errors ([`error`]);
//! - what a store takes ([`new_event`]), is asked ([`query`]: a page of the trail and its
//!   filters; [`activity_plan`]: the chart's counts and where they come from) and answers
//!   ([`page`], [`tokens`]);
//! - how a page is read ([`page::read_page`]: one algorithm over each store's queries);
//! - the background tasks every store runs through the interface ([`retention`],
//!   [`checkpointing`]), on one loop ([`periodic`]);
//! - the one contract suite both databases pass (`contract_tests.rs`).
//!
//! Below, one folder per database, each with its schema beside it: [`sqlite`] (the embedded
//! default: one writer thread, a pool of readers) and [`postgres`] (N replicas, a leased
//! sealer; docs/postgres.md).

pub mod activity_plan;
pub mod checkpointing;
#[cfg(test)]
mod contract_tests;
pub mod error;
pub mod new_event;
pub mod open;
pub mod page;
pub mod periodic;
pub mod postgres;
pub mod query;
pub mod retention;
pub mod sqlite;
#[cfg(test)]
mod test_support;
pub mod tokens;
pub mod trail_store;

pub use error::StoreError;
pub use new_event::NewEvent;
pub use open::{AdminStore, DatabaseLocation};
pub use page::PageOutcome;
pub use trail_store::TrailStore;

/// Milliseconds since the Unix epoch, by the system clock.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}
