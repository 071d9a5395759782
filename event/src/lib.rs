//! The wire shapes of audit-sidecar, defined once and shared by the filter (which
//! builds events), the collector (which stores and serves them) and the tests.
//!
//! The event is PactFlow-compatible first: every field of PactFlow's Audit API keeps its
//! name, type and meaning; what audit-sidecar adds are new keys only.
//!
//! # Layout
//! - [`event`]: [`AuditEvent`] and its parts, and the checks the collector applies on ingest.
//! - [`ingest`]: [`IngestBatch`], the body of `POST /v1/events`, and its [`IngestReceipt`].
//! - [`page`]: [`AuditPage`], the body of `GET /audit`.
//! - [`activity`]: [`ActivityPage`], the body of `GET /audit/activity` (the viewer's chart).
//! - [`chain`]: the hash-chain link of each served event, signed checkpoints, the public key.
//! - [`sender`]: completeness: each filter worker numbers its events and reports its count
//!   ([`SenderSeq`], [`SenderReport`]); the collector's own records of what it did not get.
//! - [`event_uuid`]: the 22-character base64url event identity.
//! - [`timestamp`]: RFC 3339 with milliseconds and an offset, formatted without a clock.
//! - [`trust`]: what an event says about its own inputs: untrusted identity claims, cut
//!   fields, alerts.
//! - `sample` (feature `sample`): realistic events for the measurements, never shipped.

pub mod activity;
pub mod chain;
pub mod event;
pub mod event_uuid;
pub mod ingest;
pub mod page;
#[cfg(feature = "sample")]
pub mod sample;
pub mod sender;
pub mod timestamp;
pub mod trust;

pub use activity::{ActivityCount, ActivityPage};
pub use event::{AuditEvent, DeliveryGap, InvalidEvent, Outcome, RequestPayload, ResponseSummary, DELIVERY_GAP_TYPE};
pub use ingest::{IngestBatch, IngestReceipt};
pub use page::{AuditPage, Link, PageLinks};
pub use sender::{SenderReport, SenderSeq, SeqRange};
