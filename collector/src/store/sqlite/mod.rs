//! SQLite, the embedded default: the trail in one file. [`SqliteStore`] ([`store`]) is the
//! `TrailStore` on it. One thread owns the write connection ([`writer`]) and takes work over
//! a bounded queue, running the SQL of [`write_sql`] in its transactions; readers use their
//! own connections ([`reader`]) and answer the page algorithm's queries in the SQL of
//! [`page_sql`]. The schema and the connection settings are [`schema`]; the hash chain's
//! rows are [`chain_store`] (its triggers are in `schema.sql`); [`activity`] counts the
//! chart, from the hourly rollup of [`activity_rollup`]; [`senders`] keeps each filter
//! worker's accounting; [`tokens`] the `api_tokens` table.

pub mod activity;
pub mod activity_rollup;
pub mod chain_store;
pub mod page_sql;
pub mod reader;
#[cfg(test)]
mod refused_tests;
pub mod schema;
pub mod senders;
pub mod store;
pub mod tokens;
pub mod write_sql;
pub mod writer;

pub use store::SqliteStore;
