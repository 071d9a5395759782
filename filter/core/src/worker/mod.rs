//! Per worker: what the root context (one per worker VM) does with the captured events, and
//! what the HTTP contexts ask it before a request goes on. Everything here is pure: time,
//! randomness and every host call come in from the glue.
//!
//! - [`delivery`]: the delivery policy, driven by ticks and answers through
//!   [`delivery::DeliveryHost`]: flush, retry, narrow down rejections, announce drops,
//!   refuse requests in fail-closed mode.
//! - [`outbox`]: the bounded buffer, the batches, the backoff and the gap records.
//! - [`answer`]: what a collector answer means (acknowledged, retry, or rejected batch).
//! - [`failure_policy`]: fail-open or fail-closed, whether a request may proceed while the
//!   trail cannot be written.
//! - [`entropy`]: random bytes for event uuids, fetched from the host in bulk.

pub mod answer;
pub mod delivery;
pub mod entropy;
pub mod failure_policy;
pub mod outbox;
