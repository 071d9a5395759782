//! Requests a worker holds until the collector answered its sender's announcement (the
//! core's `Delivery::holds_for_announcement`, at most `collector.timeoutMs`). The stream
//! stopped at its request headers; the main thread, once the core `releases_held`, commits
//! each held stream's scheduler, and Envoy resumes it on its worker
//! (`on_http_filter_scheduled`, then `continue_decoding`). A stream that ends while held
//! deletes its scheduler under the same lock the main thread commits under, so no commit
//! can follow the delete.

use std::sync::{Arc, Mutex};

use crate::envoy::StreamScheduler;

/// The event id that resumes a held stream.
pub const RESUME: u64 = 1;

/// One held stream's wake-up: its scheduler, until the stream ends.
pub struct HeldRequest {
    scheduler: Mutex<Option<StreamScheduler>>,
}

impl HeldRequest {
    pub fn new(scheduler: StreamScheduler) -> Arc<HeldRequest> {
        Arc::new(HeldRequest { scheduler: Mutex::new(Some(scheduler)) })
    }

    /// Wakes the stream on its worker (any thread); nothing if the stream has ended.
    pub fn release(&self) {
        if let Some(scheduler) = self.scheduler.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).as_ref() {
            scheduler.commit(RESUME);
        }
    }

    /// The stream ended (its worker, at `filter_destroy`): the scheduler is deleted now.
    pub fn end(&self) {
        drop(self.scheduler.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take());
    }
}

/// A worker's held streams.
#[derive(Default)]
pub struct HeldRequests {
    held: Mutex<Vec<Arc<HeldRequest>>>,
}

impl HeldRequests {
    pub fn hold(&self, request: &Arc<HeldRequest>) {
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(Arc::clone(request));
    }

    pub fn is_empty(&self) -> bool {
        self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).is_empty()
    }

    /// Wakes every held stream (main thread, once the core releases them).
    pub fn release_all(&self) {
        let held = std::mem::take(&mut *self.held.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        for request in held {
            request.release();
        }
    }
}
