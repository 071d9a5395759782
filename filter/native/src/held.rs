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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envoy::Stream;
    use crate::fake_envoy::{scheduler_calls, SchedulerCall};

    fn held_at(address: usize) -> Arc<HeldRequest> {
        // SAFETY: the fake Envoy only records the address.
        let stream = unsafe { Stream::new(std::ptr::without_provenance_mut(address)) };
        HeldRequest::new(stream.new_scheduler().expect("a scheduler"))
    }

    #[test]
    fn a_released_stream_is_woken_once_and_its_scheduler_deleted_when_it_ends() {
        let held = HeldRequests::default();
        let request = held_at(0x1100);
        held.hold(&request);
        held.release_all();
        held.release_all();
        request.end();
        assert_eq!(scheduler_calls(0x1100), vec![SchedulerCall::Commit(0x1100, RESUME), SchedulerCall::Delete(0x1100)]);
        assert!(held.is_empty());
    }

    #[test]
    fn a_stream_that_ended_while_held_is_never_committed_after_its_delete() {
        let held = HeldRequests::default();
        let request = held_at(0x1200);
        held.hold(&request);
        request.end();
        held.release_all();
        request.release();
        assert_eq!(scheduler_calls(0x1200), vec![SchedulerCall::Delete(0x1200)]);
    }
}
