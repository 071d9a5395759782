//! One worker's share of a filter configuration: its delivery state (the core's
//! [`Delivery`]: outbox, numbering, retries, failure policy) and the last metrics it
//! published. A worker thread captures into it; Envoy's main thread ticks it and hands it
//! the collector's answers. Each lock is held for one decision, never across a wait.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard};

use audit_filter_core::worker::delivery::{Delivery, Snapshot};

use crate::held::HeldRequests;

pub struct WorkerSlot {
    delivery: Mutex<Delivery>,
    snapshot: Mutex<Snapshot>,
    /// The delivery said it is done, after its `on_done` (drained, or out of time).
    finished: AtomicBool,
    /// Whether the sender was announced to the collector (the core's `on_start`).
    announced: AtomicBool,
    /// Requests waiting for the collector to answer the sender's announcement.
    pub held: HeldRequests,
    /// Requests past their headers whose event is not captured yet: Envoy's exit waits for
    /// them before the final report ([`crate::envoy_exit`]).
    in_progress: AtomicUsize,
}

/// A request counted in its worker's `in_progress` until this is dropped (its event was
/// handed to delivery, or the stream ended without one).
pub struct InProgress(Arc<WorkerSlot>);

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.in_progress.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WorkerSlot {
    pub fn new(delivery: Delivery) -> WorkerSlot {
        WorkerSlot {
            delivery: Mutex::new(delivery),
            snapshot: Mutex::new(Snapshot::default()),
            finished: AtomicBool::new(false),
            announced: AtomicBool::new(false),
            held: HeldRequests::default(),
            in_progress: AtomicUsize::new(0),
        }
    }

    /// Counts a request as in progress (before it checks whether Envoy's exit began, which
    /// reads the counts after setting that mark: one of the two sees the other).
    pub fn begin_request(slot: &Arc<WorkerSlot>) -> InProgress {
        slot.in_progress.fetch_add(1, Ordering::SeqCst);
        InProgress(Arc::clone(slot))
    }

    /// Requests of this worker whose event is not captured yet.
    pub fn requests_in_progress(&self) -> usize {
        self.in_progress.load(Ordering::SeqCst)
    }

    /// The delivery state. A hook that panicked while holding it (caught by the guard)
    /// leaves it as it was at the panic: still the best account of this worker's events.
    pub fn delivery(&self) -> MutexGuard<'_, Delivery> {
        self.delivery.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes the held requests once the core says they may go on (main thread, after each
    /// tick and answer; a request held just after a release is woken at the next tick).
    pub fn release_held_if_due(&self, now_ms: u64) {
        if !self.held.is_empty() && self.delivery().releases_held(now_ms) {
            self.held.release_all();
        }
    }

    /// True the first time only: the sender is to be announced now.
    pub fn take_announcement(&self) -> bool {
        !self.announced.swap(true, Ordering::Relaxed)
    }

    /// Noted once, whichever hook the delivery said it from.
    pub fn set_finished(&self) {
        self.finished.store(true, Ordering::Relaxed);
    }

    pub fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Relaxed)
    }

    pub fn set_snapshot(&self, snapshot: Snapshot) {
        *self.snapshot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = snapshot;
    }

    pub fn snapshot(&self) -> Snapshot {
        *self.snapshot.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
