//! The senders of deleted filter configurations. When Envoy replaces a configuration (a
//! listener or filter change), it deletes the old one once its filter chain has drained,
//! and the calls that configuration had in flight die with it; its workers' deliveries may
//! still hold events. They are handed over here, and the next configuration of the module
//! that ticks adopts them: it tells each the calls it lost failed (so the batch is retried),
//! runs the core's `on_done` (everything held is sent at once), then ticks it like its own
//! until it says it is done (drained, or the core's shutdown grace passed). When no other
//! configuration is left (Envoy exiting), nothing adopts them: the collector records what
//! they held, as for any stop without the drain.

use std::sync::{Arc, Mutex};

use audit_filter_core::worker::delivery::Shutdown;

use crate::delivery_host::MainThreadHost;
use crate::worker_slot::WorkerSlot;

struct Retired {
    slot: Arc<WorkerSlot>,
    /// Tokens of calls that will never be answered.
    lost_calls: Vec<u32>,
    /// Whether an adopting configuration has run `on_done` on it.
    adopted: bool,
}

static RETIRED: Mutex<Vec<Retired>> = Mutex::new(Vec::new());

/// Hands `slot` over (or adds to its lost calls if it was already).
pub fn hand_over(slot: &Arc<WorkerSlot>, lost_calls: Vec<u32>) {
    let mut retired = RETIRED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    match retired.iter_mut().find(|entry| Arc::ptr_eq(&entry.slot, slot)) {
        Some(entry) => entry.lost_calls.extend(lost_calls),
        None => retired.push(Retired { slot: Arc::clone(slot), lost_calls, adopted: false }),
    }
}

/// Stops ticking `slot`: its delivery said it is done while handling an answer.
pub fn forget(slot: &Arc<WorkerSlot>) {
    RETIRED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).retain(|entry| !Arc::ptr_eq(&entry.slot, slot));
}

/// One tick of every retired delivery, through `adopter`: it runs a decision with a host of
/// the adopting configuration and returns whether the delivery finished.
pub fn tick(now_ms: u64, mut adopter: impl FnMut(&Arc<WorkerSlot>, &mut dyn FnMut(&mut MainThreadHost<'_>)) -> bool) {
    let taken = std::mem::take(&mut *RETIRED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    if taken.is_empty() {
        return;
    }
    let mut kept = Vec::new();
    for mut entry in taken {
        // Done already (it may say so while handling an answer, in any configuration).
        if entry.slot.is_finished() {
            continue;
        }
        let lost_calls = std::mem::take(&mut entry.lost_calls);
        let adopted = entry.adopted;
        let slot = Arc::clone(&entry.slot);
        let finished = adopter(&slot, &mut |host| {
            let delivery = slot.delivery();
            // A lost call is answered as a reset: the batch it carried is retried.
            for token in &lost_calls {
                delivery.on_answer(host, *token, None, now_ms);
            }
            if adopted {
                delivery.on_tick(host, now_ms);
            } else if delivery.on_done(host, now_ms) == Shutdown::Finished {
                host.finished = true;
            }
        });
        entry.adopted = true;
        if !finished && !entry.slot.is_finished() {
            kept.push(entry);
        }
    }
    RETIRED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).extend(kept);
}
