//! One worker's share of a filter configuration: its delivery state (the core's
//! [`Delivery`]: outbox, numbering, retries, failure policy) and the last metrics it
//! published. A worker thread captures into it; Envoy's main thread ticks it and hands it
//! the collector's answers. Each lock is held for one decision, never across a wait.

use std::sync::atomic::{AtomicBool, Ordering};
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
}

impl WorkerSlot {
    pub fn new(delivery: Delivery) -> WorkerSlot {
        WorkerSlot {
            delivery: Mutex::new(delivery),
            snapshot: Mutex::new(Snapshot::default()),
            finished: AtomicBool::new(false),
            announced: AtomicBool::new(false),
            held: HeldRequests::default(),
        }
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
