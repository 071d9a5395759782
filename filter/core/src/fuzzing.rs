//! What the fuzz targets in `fuzz/` and the request path's instruction budget
//! (`examples/request_cost.rs`) drive (feature `fuzzing` only): the configuration parser,
//! the host fake, capture and the JSON writer. Everything else stays crate-private.

pub use crate::config::FilterConfig;
pub use crate::request::bounds::{write_within_limit, MIN_MAX_FIELD_BYTES};
pub use crate::request::capture::capture_event;
pub use crate::request::event_json::write_event;
pub use crate::request::host::FakeRequest;
pub use crate::request::identity::MAX_UNTRUSTED_CLAIMS;
pub use crate::request::metadata::encode::{metadata, Claim};
