//! What the fuzz targets in `fuzz/` drive (feature `fuzzing` only): the configuration
//! parser, the host fake, capture and the JSON writer. Everything else stays crate-private.

pub use crate::bounds::{write_within_limit, MIN_MAX_FIELD_BYTES};
pub use crate::capture::capture_event;
pub use crate::config::FilterConfig;
pub use crate::host::FakeRequest;
pub use crate::identity::MAX_UNTRUSTED_CLAIMS;
pub use crate::metadata::encode::{metadata, Claim};
