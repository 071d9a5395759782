//! [`Error`]: why [`crate::run`] could not start, or could not stop cleanly. Request-level
//! failures never end up here; they become HTTP answers.

use std::path::PathBuf;

use crate::config::ConfigError;
use crate::store::StoreError;

/// A failure of the collector as a whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened, migrated or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The listener's address could not be read.
    #[error("could not read the listening address: {0}")]
    LocalAddress(#[source] std::io::Error),
    /// The address file could not be written.
    #[error("could not write the address file {path}: {source}; check --address-file / AUDIT_ADDRESS_FILE")]
    AddressFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The checkpoint signing key could not be read or created.
    #[error(transparent)]
    SigningKey(#[from] crate::chain::signing::KeyError),
    /// The witness file could not be opened or read.
    #[error(transparent)]
    WitnessFile(#[from] crate::witness_file::WitnessFileError),
}
