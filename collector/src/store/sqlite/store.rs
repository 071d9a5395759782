//! [`SqliteStore`]: the [`TrailStore`] on one SQLite file: the writer thread (ingest,
//! purges, checkpoints, in batched transactions) and the pool of read connections.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use audit_event::chain::Checkpoint;
use audit_event::IngestReceipt;
use rusqlite::Connection;

use super::super::activity_plan::{ActivityOutcome, BucketWidth};
use super::super::new_event::NewEvent;
use super::super::page::PageOutcome;
use super::super::query::{EventFilters, TrailQuery};
use super::super::tokens::ActiveToken;
use super::super::trail_store::{StoreFuture, StoreGauges, TrailStore};
use super::super::StoreError;
use super::activity::activity;
use super::chain_store::{latest_checkpoint, read_checkpoints};
use super::reader::Readers;
use super::schema;
use super::senders::anything_due;
use super::tokens::active_tokens;
use super::writer::{spawn_signing, SubmitError, WriterHandle, WriterThread};
use crate::chain::signing::TrailSigner;
use crate::completeness::accounting::{SenderActivity, SenderPolicy};

/// The SQLite store; share it as `Arc<dyn TrailStore>`.
pub struct SqliteStore {
    writer: WriterHandle,
    readers: Readers,
    thread: Mutex<Option<WriterThread>>,
    path: PathBuf,
    /// Senders whose batch the full write queue refused, and when (ms): the next check of
    /// the senders counts their silence and holes from then, so a refusal is never recorded
    /// as their loss. At most [`MAX_REFUSED_SENDERS`] between two checks.
    refused_senders: Mutex<HashMap<String, i64>>,
}

/// Bounds the refused senders kept between two checks (a check runs every second; a
/// deployment has a few senders per Envoy worker).
const MAX_REFUSED_SENDERS: usize = 10_000;

impl SqliteStore {
    /// Opens (creating when new) the database at `path`: the write connection
    /// [`SqliteStore::start`] takes.
    pub fn prepare(path: &Path) -> Result<Connection, StoreError> {
        schema::open_for_writing(path)
    }

    /// Starts the writer on `conn` (from [`SqliteStore::prepare`]) with a queue of
    /// `queue_batches`; with a `signer` the writer signs checkpoints.
    pub fn start(
        conn: Connection,
        path: &Path,
        queue_batches: usize,
        signer: Option<TrailSigner>,
    ) -> Result<SqliteStore, StoreError> {
        let (writer, thread) = spawn_signing(conn, queue_batches, signer)?;
        Ok(SqliteStore {
            writer,
            readers: Readers::new(path.to_path_buf()),
            thread: Mutex::new(Some(thread)),
            path: path.to_path_buf(),
            refused_senders: Mutex::new(HashMap::new()),
        })
    }

    /// [`SqliteStore::prepare`] then [`SqliteStore::start`].
    #[cfg(test)]
    pub fn open(path: &Path, queue_batches: usize, signer: Option<TrailSigner>) -> Result<SqliteStore, StoreError> {
        SqliteStore::start(SqliteStore::prepare(path)?, path, queue_batches, signer)
    }

    /// Notes that a batch of `sender` was refused now (see `refused_senders`).
    fn note_refused(&self, sender: String) {
        let mut refused = self.refused_senders.lock().unwrap_or_else(PoisonError::into_inner);
        if refused.len() < MAX_REFUSED_SENDERS || refused.contains_key(&sender) {
            refused.insert(sender, super::super::now_millis());
        }
    }

    /// The file plus its WAL (where recent commits live until a checkpoint).
    fn size_bytes(&self) -> u64 {
        let size = |path: &Path| std::fs::metadata(path).map_or(0, |meta| meta.len());
        let mut wal = self.path.as_os_str().to_owned();
        wal.push("-wal");
        size(&self.path) + size(Path::new(&wal))
    }
}

impl TrailStore for SqliteStore {
    fn ingest(&self, events: Vec<NewEvent>, sender: Option<SenderActivity>) -> StoreFuture<'_, IngestReceipt> {
        let sender_id = sender.as_ref().map(|activity| activity.id.clone());
        let queued = self.writer.try_ingest(events, sender);
        Box::pin(async move {
            match queued {
                Ok(pending) => pending.committed().await,
                Err(SubmitError::Full) => {
                    if let Some(id) = sender_id {
                        self.note_refused(id);
                    }
                    Err(StoreError::QueueFull)
                }
                Err(SubmitError::Stopped) => Err(StoreError::WriterStopped),
            }
        })
    }

    fn check_senders(&self, policy: SenderPolicy) -> StoreFuture<'_, usize> {
        // Asked every second: a reader looks first, so the writer's queue (and the room a
        // batch needs in it) is used only when a hole or a silent sender is due.
        Box::pin(async move {
            let now_ms = super::super::now_millis();
            if self.readers.read(move |conn| anything_due(conn, policy, now_ms)).await? {
                let refused: Vec<(String, i64)> =
                    std::mem::take(&mut *self.refused_senders.lock().unwrap_or_else(PoisonError::into_inner))
                        .into_iter()
                        .collect();
                self.writer.check_senders(policy, refused).await
            } else {
                Ok(0)
            }
        })
    }

    fn page(&self, query: TrailQuery) -> StoreFuture<'_, PageOutcome> {
        Box::pin(self.readers.page(query))
    }

    fn activity(&self, filters: EventFilters, width: BucketWidth) -> StoreFuture<'_, ActivityOutcome> {
        Box::pin(self.readers.read(move |conn| activity(conn, &filters, width)))
    }

    fn active_tokens(&self) -> StoreFuture<'_, Vec<ActiveToken>> {
        Box::pin(self.readers.read(active_tokens))
    }

    fn checkpoints(&self, after: i64, limit: usize) -> StoreFuture<'_, Vec<Checkpoint>> {
        Box::pin(self.readers.read(move |conn| read_checkpoints(conn, after, limit)))
    }

    fn purge(&self, older_than_ms: i64, limit: usize) -> StoreFuture<'_, usize> {
        Box::pin(self.writer.purge(older_than_ms, limit))
    }

    fn checkpoint(&self) -> StoreFuture<'_, Option<Checkpoint>> {
        Box::pin(self.writer.checkpoint())
    }

    fn latest_checkpoint(&self) -> StoreFuture<'_, Option<Checkpoint>> {
        Box::pin(self.readers.read(latest_checkpoint))
    }

    fn gauges(&self) -> StoreFuture<'_, StoreGauges> {
        Box::pin(async move {
            let purged_events = self
                .readers
                .read(|conn| {
                    let count: i64 = conn.query_row("SELECT events FROM purge_count", [], |row| row.get(0))?;
                    Ok::<_, StoreError>(u64::try_from(count).unwrap_or(0))
                })
                .await?;
            Ok(StoreGauges {
                purged_events,
                size_bytes: self.size_bytes(),
                write_queue_depth: self.writer.queue_depth(),
                sealing: None,
            })
        })
    }

    fn health(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if !self.writer.is_running() {
                return Err(StoreError::WriterStopped);
            }
            self.readers.ping().await
        })
    }

    fn shutdown(&self) -> StoreFuture<'_, ()> {
        let thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        Box::pin(async move {
            match thread {
                Some(thread) => thread.shutdown().await,
                None => Ok(()),
            }
        })
    }
}
