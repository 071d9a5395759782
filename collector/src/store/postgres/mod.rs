//! [`PgStore`]: the [`TrailStore`] on PostgreSQL, for any number of collector replicas on
//! one database. Any replica ingests ([`ingest`]: into `unsequenced`, acknowledged after
//! commit) and serves pages ([`page`]: from the sealed `events` only). One replica at a
//! time, the holder of the sealer lease, orders and chains ([`sealer`]); checkpoints and
//! retention ([`chain`]) run on any replica under the chain head's row lock; sender
//! accounting ([`senders`]) runs with each numbered batch on the replica that took it,
//! and its periodic check on the lease holder. Every replica's health includes the
//! sealing's ([`sealer_health`]): a live lease holder and a queue that moves. Past a bound
//! of events waiting for the sealer, ingest refuses batches ([`backlog`]). The schema is
//! `schema.sql` beside this file ([`schema`]); docs/postgres.md argues why no reader can
//! skip or reorder a committed event.

pub mod activity;
pub mod backlog;
#[cfg(test)]
mod backlog_tests;
pub mod chain;
pub mod from_sqlite;
pub mod ingest;
#[cfg(test)]
mod migrate_tests;
pub mod page;
#[cfg(test)]
mod replica_tests;
pub mod schema;
pub mod sealer;
#[cfg(test)]
mod sealer_crash_tests;
pub mod sealer_health;
#[cfg(test)]
mod sealer_health_tests;
pub mod senders;
#[cfg(test)]
pub mod test_cluster;
pub mod tls;
#[cfg(test)]
mod tls_tests;
pub mod tokens;
pub mod unsequenced;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use audit_event::chain::Checkpoint;
use audit_event::IngestReceipt;
use deadpool_postgres::Pool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use self::backlog::UnsealedBound;
use self::sealer_health::SealerHealth;

use super::activity_plan::{ActivityOutcome, BucketWidth};
use super::new_event::NewEvent;
use super::page::PageOutcome;
use super::query::{EventFilters, TrailQuery};
use super::tokens::ActiveToken;
use super::trail_store::{SealingGauges, StoreFuture, StoreGauges, TrailStore};
use super::{now_millis, StoreError};
use crate::chain::link::to_hex;
use crate::chain::signing::TrailSigner;
use crate::completeness::accounting::{SenderActivity, SenderPolicy};

/// The PostgreSQL store of one replica; share it as `Arc<dyn TrailStore>`.
pub struct PgStore {
    pool: Pool,
    signer: Option<Arc<TrailSigner>>,
    stop_sealer: watch::Sender<bool>,
    sealer: Mutex<Option<JoinHandle<()>>>,
    /// The epoch of the sealer lease while this replica holds it, else 0.
    sealing_epoch: Arc<AtomicI64>,
    /// How long an acknowledged event may wait for its seal before this replica is unhealthy.
    backlog_bound: Duration,
    /// How many acknowledged events may wait for the sealer before ingest refuses batches.
    unsealed_bound: UnsealedBound,
}

impl PgStore {
    /// Connects to `url`, creates the schema when the database has none, and starts this
    /// replica's sealer loop. With a `signer` it signs checkpoints (every replica must be
    /// given the same key).
    pub async fn open(url: &str, signer: Option<TrailSigner>) -> Result<PgStore, StoreError> {
        let pool = schema::pool(url)?;
        schema::migrate(&pool).await?;
        let mut id = [0u8; 8];
        getrandom::fill(&mut id).map_err(|error| StoreError::Task(format!("no random replica id: {error}")))?;
        let holder = format!("replica-{}", to_hex(&id));
        tracing::info!(replica = %holder, "PostgreSQL store ready; this replica competes for the sealer lease");
        let (stop_sealer, stop) = watch::channel(false);
        // The first try at the lease before the store is used: a lone replica is healthy (a
        // live sealer holds the lease) from its first answer on, not half a second later.
        let epoch = sealer::take_lease(&pool, &holder).await?;
        if let Some(taken) = epoch {
            tracing::info!(epoch = taken, "this replica now seals the trail");
        }
        let sealing_epoch = Arc::new(AtomicI64::new(epoch.unwrap_or(0)));
        let sealer = tokio::spawn(sealer::run(pool.clone(), holder, stop, Arc::clone(&sealing_epoch), epoch));
        Ok(PgStore {
            pool,
            signer: signer.map(Arc::new),
            stop_sealer,
            sealer: Mutex::new(Some(sealer)),
            sealing_epoch,
            backlog_bound: sealer_health::BACKLOG_BOUND,
            unsealed_bound: UnsealedBound::new(backlog::DEFAULT_MAX_UNSEALED_EVENTS),
        })
    }

    /// The same replica refusing batches once more than `max_unsealed` events wait for the
    /// sealer (`--pg-max-unsealed-events`).
    pub fn with_max_unsealed_events(self, max_unsealed: u64) -> PgStore {
        PgStore { unsealed_bound: UnsealedBound::new(max_unsealed), ..self }
    }

    /// The same replica with another backlog bound (tests wait seconds, not half a minute).
    #[cfg(test)]
    pub fn with_backlog_bound(self, backlog_bound: Duration) -> PgStore {
        PgStore { backlog_bound, ..self }
    }

    /// Ends this replica's sealer as a crash would: no last round, the lease not given up.
    #[cfg(test)]
    pub fn kill_sealer(&self) {
        if let Some(sealer) = self.sealer.lock().unwrap_or_else(PoisonError::into_inner).take() {
            sealer.abort();
        }
    }
}

impl TrailStore for PgStore {
    fn ingest(&self, events: Vec<NewEvent>, sender: Option<SenderActivity>) -> StoreFuture<'_, IngestReceipt> {
        Box::pin(async move {
            if *self.stop_sealer.borrow() {
                return Err(StoreError::WriterStopped);
            }
            // Refused whole, before anything is written, when the sealer is too far behind;
            // only the sender's liveness is noted, so the refusal is not recorded as its loss.
            if let Err(refusal) = self.unsealed_bound.admit(&self.pool, &events).await {
                if let (StoreError::SealingBehind { .. }, Some(activity)) = (&refusal, &sender) {
                    if let Err(error) = senders::note_refused(&self.pool, &activity.id, now_millis()).await {
                        tracing::warn!(%error, sender = %activity.id, "could not note a refused sender as alive");
                    }
                }
                return Err(refusal);
            }
            let receipt = ingest::ingest(&self.pool, &events, sender.as_ref()).await?;
            self.unsealed_bound.note_acknowledged(receipt.accepted);
            Ok(receipt)
        })
    }

    fn check_senders(&self, policy: SenderPolicy) -> StoreFuture<'_, usize> {
        Box::pin(async move {
            // Only the sealer checks; the others have nothing to do here.
            match self.sealing_epoch.load(Ordering::Acquire) {
                0 => Ok(0),
                epoch => senders::check_senders(&self.pool, epoch, policy).await,
            }
        })
    }

    fn page(&self, query: TrailQuery) -> StoreFuture<'_, PageOutcome> {
        Box::pin(async move { page::read_page(&self.pool, &query).await })
    }

    fn activity(&self, filters: EventFilters, width: BucketWidth) -> StoreFuture<'_, ActivityOutcome> {
        Box::pin(async move { activity::activity(&self.pool, &filters, width).await })
    }

    fn active_tokens(&self) -> StoreFuture<'_, Vec<ActiveToken>> {
        Box::pin(tokens::active_tokens(&self.pool))
    }

    fn checkpoints(&self, after: i64, limit: usize) -> StoreFuture<'_, Vec<Checkpoint>> {
        Box::pin(chain::read_checkpoints(&self.pool, after, limit))
    }

    fn latest_checkpoint(&self) -> StoreFuture<'_, Option<Checkpoint>> {
        Box::pin(chain::latest_checkpoint(&self.pool))
    }

    fn purge(&self, older_than_ms: i64, limit: usize) -> StoreFuture<'_, usize> {
        Box::pin(chain::purge(&self.pool, older_than_ms, limit, self.signer.as_deref()))
    }

    fn checkpoint(&self) -> StoreFuture<'_, Option<Checkpoint>> {
        Box::pin(async move {
            match &self.signer {
                Some(signer) => chain::checkpoint(&self.pool, signer).await,
                None => Ok(None),
            }
        })
    }

    fn gauges(&self) -> StoreFuture<'_, StoreGauges> {
        Box::pin(async move {
            let client = self.pool.get().await?;
            let row = client
                .query_one(
                    "SELECT (SELECT events FROM purge_count WHERE id = 1), pg_database_size(current_database())",
                    &[],
                )
                .await?;
            let sealing = SealerHealth::read(&client, now_millis()).await?;
            let unsealed_events = backlog::read_unsealed(&client).await?;
            self.unsealed_bound.note_reading(unsealed_events);
            Ok(StoreGauges {
                purged_events: u64::try_from(row.try_get::<_, i64>(0)?).unwrap_or(0),
                size_bytes: u64::try_from(row.try_get::<_, i64>(1)?).unwrap_or(0),
                // Ingest has no queue of its own here: requests wait for a pooled connection.
                write_queue_depth: self.pool.status().waiting,
                sealing: Some(SealingGauges {
                    lease_live: sealing.lease_live,
                    oldest_unsealed_ms: sealing.oldest_unsealed_ms,
                    unsealed_events,
                    max_unsealed_events: self.unsealed_bound.max_unsealed(),
                }),
            })
        })
    }

    fn health(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if *self.stop_sealer.borrow() {
                return Err(StoreError::WriterStopped);
            }
            let client = self.pool.get().await?;
            let sealing = SealerHealth::read(&client, now_millis()).await?;
            match sealing.problem(self.backlog_bound) {
                None => Ok(()),
                Some(problem) => {
                    tracing::warn!(
                        lease_live = sealing.lease_live,
                        oldest_unsealed_ms = sealing.oldest_unsealed_ms,
                        "unhealthy: {problem}"
                    );
                    Err(StoreError::SealingStalled(problem))
                }
            }
        })
    }

    fn shutdown(&self) -> StoreFuture<'_, ()> {
        let sealer = self.sealer.lock().unwrap_or_else(PoisonError::into_inner).take();
        Box::pin(async move {
            // The sealer seals what is waiting (when it holds the lease) and gives the lease
            // up; then a checkpoint proves the trail up to its head.
            let _ = self.stop_sealer.send(true);
            if let Some(sealer) = sealer {
                sealer.await.map_err(|error| StoreError::Task(error.to_string()))?;
            }
            if let Some(signer) = &self.signer {
                chain::checkpoint(&self.pool, signer).await?;
            }
            self.pool.close();
            Ok(())
        })
    }
}
