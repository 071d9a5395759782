//! `audit-collector verify`: proves that no stored event was changed, removed or reordered,
//! without trusting whoever runs the database. It checks every checkpoint signature with a
//! public key the auditor holds (following key handovers), recomputes the hash chain from
//! the events, and compares the chain with what each checkpoint signed. It never calls
//! events after the newest checkpoint intact: they are reported as uncovered. It reads a database file
//! ([`verify_database`]) or the HTTP API ([`verify_api`]).
//!
//! # Layout
//! - [`walk`]: the checks, whatever the source: checkpoints, then the chain event by event.
//! - [`from_database`] / [`from_postgres`] / [`from_api`]: the sources.
//! - [`problem`]: [`TrailProblem`], the first thing found wrong.
//! - [`report`]: [`TrailReport`], what a run proved: how many events a signature covers,
//!   how many only the chain, and the exit status for each.
//! - [`witness`]: `--witness`, the trail against checkpoints kept elsewhere.
//! - [`command`]: the `verify` and `public-key` subcommands.
//! - [`checkpoint_command`]: `checkpoint`, a checkpoint signed on demand through the API.
//! - [`rotate_key_command`]: `rotate-key`, the handover to a new signing key.

pub mod checkpoint_command;
pub mod command;
pub mod from_api;
pub mod from_database;
pub mod from_postgres;
pub mod problem;
pub mod report;
pub mod rotate_key_command;
pub mod walk;
pub mod witness;

pub use from_api::verify_api;
pub use from_database::verify_database;
pub use problem::TrailProblem;
pub use report::{exit_code, Coverage, TrailReport};
pub use witness::{check_witness, read_witness};

/// Why a verification did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The trail was read and is not intact.
    #[error("TRAIL NOT INTACT: {0}")]
    NotIntact(#[from] TrailProblem),
    /// The trail could not be read at all.
    #[error("could not read the trail: {0}")]
    Read(String),
}

#[cfg(test)]
mod tamper_tests;
