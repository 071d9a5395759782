//! [`TrailStore`]: what the collector needs from a database, named by what the trail does
//! rather than by SQL. The HTTP handlers and the background tasks (retention, checkpoints)
//! reach the database only through it, so SQLite ([`super::sqlite`]) and PostgreSQL
//! ([`super::postgres`]) are two implementations of one contract, checked by one test
//! suite (`store/contract_tests.rs`).
//!
//! The methods return boxed futures so the collector can hold `Arc<dyn TrailStore>`; one
//! allocation per call is nothing next to a database round trip.

use std::future::Future;
use std::pin::Pin;

use audit_event::chain::Checkpoint;
use audit_event::IngestReceipt;

use super::activity_plan::{ActivityOutcome, BucketWidth};
use super::new_event::NewEvent;
use super::page::PageOutcome;
use super::query::{EventFilters, TrailQuery};
use super::tokens::ActiveToken;
use super::StoreError;
use crate::completeness::accounting::{SenderActivity, SenderPolicy};

/// What a store method returns: a `Send` future of its result.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The figures of `/metrics` that come from the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreGauges {
    /// Events retention has deleted, ever.
    pub purged_events: u64,
    /// Bytes the database takes (for SQLite the file and its WAL).
    pub size_bytes: u64,
    /// Write commands waiting for the writer.
    pub write_queue_depth: usize,
    /// Where events are sealed after their acknowledgement (PostgreSQL): how the sealing goes.
    pub sealing: Option<SealingGauges>,
}

/// The figures of a store whose events are sealed after their acknowledgement (PostgreSQL).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealingGauges {
    /// A live sealer holds the lease.
    pub lease_live: bool,
    /// How long the oldest unsealed event has waited (ms).
    pub oldest_unsealed_ms: i64,
    /// Events waiting for the sealer, at most (`store::postgres::backlog`).
    pub unsealed_events: u64,
    /// Past this many, ingest refuses batches that carry events (503).
    pub max_unsealed_events: u64,
}

/// The trail's storage.
pub trait TrailStore: Send + Sync {
    /// Stores a validated batch and resolves once it is committed (and, where events are
    /// sequenced later, once they can no longer be lost): the ingest acknowledgement.
    /// Idempotent on `uuid` across the whole trail. A full queue is
    /// [`StoreError::QueueFull`], a stopping store [`StoreError::WriterStopped`].
    /// `sender` is what the batch says about the filter worker that sent it: its numbers
    /// are accounted for in the same commit as the events (`store::sqlite::senders`, `store::postgres::senders`).
    fn ingest(&self, events: Vec<NewEvent>, sender: Option<SenderActivity>) -> StoreFuture<'_, IngestReceipt>;

    /// Records, as events of the trail, the holes in senders' numbers older than the
    /// policy's grace and the senders silent for its timeout; returns how many records.
    fn check_senders(&self, policy: SenderPolicy) -> StoreFuture<'_, usize>;

    /// One page of the sequenced trail.
    fn page(&self, query: TrailQuery) -> StoreFuture<'_, PageOutcome>;

    /// Events per hour or day, by outcome, of the events `filters` selects.
    fn activity(&self, filters: EventFilters, width: BucketWidth) -> StoreFuture<'_, ActivityOutcome>;

    /// The digests and scopes of every token not revoked.
    fn active_tokens(&self) -> StoreFuture<'_, Vec<ActiveToken>>;

    /// Up to `limit` signed checkpoints numbered above `after`, oldest first.
    fn checkpoints(&self, after: i64, limit: usize) -> StoreFuture<'_, Vec<Checkpoint>>;

    /// Deletes up to `limit` of the oldest events, as long as each is older than
    /// `older_than_ms`, moves the anchor and signs it; returns how many went.
    fn purge(&self, older_than_ms: i64, limit: usize) -> StoreFuture<'_, usize>;

    /// Signs a checkpoint of the head unless nothing changed since the last one.
    fn checkpoint(&self) -> StoreFuture<'_, Option<Checkpoint>>;

    /// The newest signed checkpoint, if any.
    fn latest_checkpoint(&self) -> StoreFuture<'_, Option<Checkpoint>>;

    /// The store's figures for `/metrics`.
    fn gauges(&self) -> StoreFuture<'_, StoreGauges>;

    /// Succeeds when the store takes writes and answers a query, and, where events are
    /// sealed after their acknowledgement, when they are being sealed.
    fn health(&self) -> StoreFuture<'_, ()>;

    /// Stops taking work, commits (and proves with a checkpoint) what was acknowledged.
    fn shutdown(&self) -> StoreFuture<'_, ()>;
}
