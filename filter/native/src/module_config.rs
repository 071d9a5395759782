//! One filter configuration, as the module holds it: the core's validated configuration, the
//! ingest token and fingerprint key, one [`WorkerSlot`] per Envoy worker (created with the
//! configuration, for the worker count Envoy reports), the calls in flight to the collector, the metrics and the
//! tick thread. Created in `config_new`, ticked and answered in the configuration's hooks on
//! Envoy's main thread, shut down in `config_destroy`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use log::Level;

use audit_event::event_uuid::encode_event_uuid;
use audit_filter_core::config::FilterConfig;
use audit_filter_core::config_error::ConfigError;
use audit_filter_core::request::fingerprint::{resolve_key, FingerprintKey, KeyOrigin};
use audit_filter_core::worker::delivery::{Delivery, Shutdown};

use crate::delivery_host::{Dispatched, MainThreadHost};
use crate::envoy::{self, CalloutAnswer, ConfigHandle};
use crate::envoy_exit::{self, ExitingConfig};
use crate::metrics::Metrics;
use crate::randomness::{now_ms, random_event_id};
use crate::retired;
use crate::ticker::Ticker;
use crate::worker_slot::WorkerSlot;

/// Workers whose senders are made (and announced) when the configuration is: all of them,
/// up to a bound no real Envoy reaches (a larger worker index still gets one, at its first
/// request).
const MAX_STARTED_WORKERS: usize = 1024;

/// Distinguishes configurations in the workers' thread-local caches.
static NEXT_CONFIG_ID: AtomicU64 = AtomicU64::new(1);

/// Which delivery a call in flight belongs to (a worker's of this configuration, or one
/// adopted from a deleted configuration), and its token there.
struct InFlight {
    slot: Arc<WorkerSlot>,
    token: u32,
}

pub struct ModuleConfig {
    id: u64,
    handle: ConfigHandle,
    pub filter: FilterConfig,
    pub fingerprint_key: Option<FingerprintKey>,
    ingest_token: String,
    /// Indexed by Envoy's worker index.
    workers: Mutex<Vec<Option<Arc<WorkerSlot>>>>,
    /// Callout id → the delivery waiting for its answer. Main thread only.
    in_flight: Mutex<HashMap<u64, InFlight>>,
    /// Answers that arrived while their call was still being sent (Envoy may answer a call
    /// it cannot make at once, inside the callout itself): handled right after.
    early_answers: Mutex<Vec<(u64, CalloutAnswer)>>,
    metrics: Metrics,
    ticker: Mutex<Option<Ticker>>,
}

thread_local!(static DELIVERING: Cell<bool> = const { Cell::new(false) });

/// Runs a delivery decision on the main thread, noting that a delivery lock is held.
fn delivering<T>(decision: impl FnOnce() -> T) -> T {
    /// Clears the mark however the decision ends (a panic is caught by the hook's guard).
    struct Mark;
    impl Drop for Mark {
        fn drop(&mut self) {
            DELIVERING.set(false);
        }
    }
    DELIVERING.set(true);
    let _mark = Mark;
    decision()
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ModuleConfig {
    /// Parses and validates `json` (the filter's `StringValue`), resolves the ingest token
    /// from Envoy's environment, defines the metrics and starts ticking.
    pub fn new(handle: ConfigHandle, json: &[u8]) -> Result<Arc<ModuleConfig>, ConfigError> {
        let filter = FilterConfig::from_json(json)?;
        let ingest_token = filter.ingest_token(|name| std::env::var(name).ok())?;
        let fingerprint = &filter.redaction.token_fingerprint;
        let (fingerprint_key, origin) = resolve_key(fingerprint, |name| std::env::var(name).ok(), ingest_token.trim());
        if origin == KeyOrigin::IngestToken {
            envoy::log(
                Level::Info,
                &format!(
                    "audit-filter: `{}` is unset, so token fingerprints are keyed by a key derived from the ingest \
                     token; they change when it is rotated (set `{}` in Envoy's environment for stable ones)",
                    fingerprint.key_env, fingerprint.key_env
                ),
            );
        }
        let metrics = Metrics::define(&handle);
        if !metrics.defined() {
            envoy::log(Level::Warn, "audit-filter: could not define the metrics; running without them");
        }
        let tick_period = Delivery::new(&filter, "", String::new()).tick_period();
        let config = Arc::new(ModuleConfig {
            id: NEXT_CONFIG_ID.fetch_add(1, Ordering::Relaxed),
            handle,
            filter,
            fingerprint_key,
            ingest_token,
            workers: Mutex::new(Vec::new()),
            in_flight: Mutex::new(HashMap::new()),
            early_answers: Mutex::new(Vec::new()),
            metrics,
            ticker: Mutex::new(None),
        });
        // Every worker's sender exists from the start, as each worker's wasm VM does, and is
        // announced from here, before the worker has answered anything (issue 22).
        let workers = usize::try_from(handle.worker_count()).unwrap_or(0).min(MAX_STARTED_WORKERS);
        *locked(&config.workers) = (0..workers).map(|_| Some(config.new_slot())).collect();
        match handle.new_scheduler().and_then(|scheduler| Ticker::start(scheduler, tick_period)) {
            Some(ticker) => {
                *locked(&config.ticker) = Some(ticker);
                // Announced now, and their requests hold from now (only with ticks: a tick
                // wakes them). A callout from `config_new` is safe: Envoy answers it from its
                // main loop, after this hook returned and Envoy holds the configuration (an
                // answer finding none is dropped by Envoy, never misdelivered); a call that
                // cannot go out yet (the collector's cluster not ready) is sent at the first
                // tick by the core.
                config.announce_workers(now_ms());
            }
            None => {
                envoy::log(Level::Error, "audit-filter: could not start the delivery tick; events would never be sent")
            }
        }
        Ok(config)
    }

    /// Announces each worker's sender not announced yet (the core's `on_start`): from
    /// `config_new`, or at the next tick for a slot made later.
    fn announce_workers(&self, now: u64) {
        for (_, slot) in self.slots() {
            if !slot.take_announcement() {
                continue;
            }
            let mut host = MainThreadHost::new(self.handle, &slot, "");
            delivering(|| slot.delivery().on_start(&mut host, now));
            self.note_in_flight(&slot, host.dispatched);
        }
        self.handle_early_answers();
    }

    /// This worker's slot: from the thread's cache, else the configuration's (made with it, or
    /// now for a worker index past the bound).
    pub fn slot(&self, worker_index: impl FnOnce() -> u32) -> Arc<WorkerSlot> {
        thread_local!(static CACHE: RefCell<Vec<(u64, Weak<WorkerSlot>)>> = const { RefCell::new(Vec::new()) });
        let cached = CACHE.with(|cache| {
            let cache = cache.try_borrow().ok()?;
            cache.iter().find(|(id, _)| *id == self.id).and_then(|(_, slot)| slot.upgrade())
        });
        if let Some(slot) = cached {
            return slot;
        }
        let index = usize::try_from(worker_index()).unwrap_or(usize::MAX);
        let slot = {
            let mut workers = locked(&self.workers);
            if workers.len() <= index {
                workers.resize(index.saturating_add(1).min(1 << 16), None);
            }
            match workers.get_mut(index) {
                Some(Some(slot)) => Arc::clone(slot),
                // A worker Envoy did not count at the start (none should be): made now.
                Some(empty) => {
                    let slot = self.new_slot();
                    *empty = Some(Arc::clone(&slot));
                    slot
                }
                // A worker index beyond 65536 workers: its own slot, not kept for ticks.
                None => self.new_slot(),
            }
        };
        CACHE.with(|cache| {
            if let Ok(mut cache) = cache.try_borrow_mut() {
                cache.retain(|(_, slot)| slot.strong_count() > 0);
                cache.push((self.id, Arc::downgrade(&slot)));
            }
        });
        slot
    }

    /// A new sender: its own random id and numbering, as a wasm VM per worker has.
    fn new_slot(&self) -> Arc<WorkerSlot> {
        let sender_id = encode_event_uuid(random_event_id());
        Arc::new(WorkerSlot::new(Delivery::new(&self.filter, &self.ingest_token, sender_id)))
    }

    fn slots(&self) -> Vec<(usize, Arc<WorkerSlot>)> {
        locked(&self.workers)
            .iter()
            .enumerate()
            .filter_map(|(index, slot)| Some((index, Arc::clone(slot.as_ref()?))))
            .collect()
    }

    /// The delivery tick (main thread): each worker's delivery sends what is due; and the
    /// senders of deleted configurations this one adopted go on delivering through it.
    pub fn on_tick(&self) {
        let now = now_ms();
        for (_, slot) in self.slots() {
            let mut host = MainThreadHost::new(self.handle, &slot, "");
            // Slots are made and announced with the configuration; one made later (past the
            // bound, at a worker's first request) is announced (the core's `on_start`) here.
            let announce = slot.take_announcement();
            delivering(|| {
                let delivery = slot.delivery();
                if announce {
                    delivery.on_start(&mut host, now);
                }
                delivery.on_tick(&mut host, now)
            });
            self.note_in_flight(&slot, host.dispatched);
            slot.release_held_if_due(now);
        }
        retired::tick(now, |slot, decide| {
            let mut host = MainThreadHost::new(self.handle, slot, "");
            delivering(|| decide(&mut host));
            self.note_in_flight(slot, std::mem::take(&mut host.dispatched));
            host.finished
        });
        self.handle_early_answers();
        self.publish();
        envoy_exit::check();
    }

    /// The collector's answer to callout `callout_id` (main thread).
    pub fn on_answer(&self, callout_id: u64, answer: CalloutAnswer) {
        let waiting = locked(&self.in_flight).remove(&callout_id);
        let Some(InFlight { slot, token }) = waiting else {
            // Sent just now and not noted yet: handled once it is.
            locked(&self.early_answers).push((callout_id, answer));
            return;
        };
        if DELIVERING.get() {
            // Answered inside a callout made by a delivery decision still running on this
            // thread (its lock held): handled right after it.
            locked(&self.in_flight).insert(callout_id, InFlight { slot, token });
            locked(&self.early_answers).push((callout_id, answer));
            return;
        }
        let mut host = MainThreadHost::new(self.handle, &slot, &answer.body_start);
        let now = now_ms();
        delivering(|| slot.delivery().on_answer(&mut host, token, answer.status, now));
        if host.finished {
            retired::forget(&slot);
        }
        self.note_in_flight(&slot, host.dispatched);
        slot.release_held_if_due(now);
        self.publish();
        envoy_exit::check();
    }

    /// Envoy is deleting the configuration (main thread; after a configuration change, once
    /// the old filter chain drained, or when Envoy exits). Its calls in flight die with it.
    /// Each worker's delivery sends everything it holds through it (the core's `on_done`,
    /// best effort), and is handed over ([`retired`]) to the next configuration that ticks,
    /// which tells it those calls failed and delivers the rest until the outbox is drained.
    pub fn shut_down(&self) {
        self.stop_ticking();
        if envoy_exit::begun() {
            // Sent at the exit already (`on_envoy_exit`); nothing is left to adopt them.
            return;
        }
        let now = now_ms();
        let orphaned: Vec<InFlight> = locked(&self.in_flight).drain().map(|(_, waiting)| waiting).collect();
        for (_, slot) in self.slots() {
            let mut host = MainThreadHost::new(self.handle, &slot, "");
            delivering(|| slot.delivery().on_done(&mut host, now));
            let tokens = host.dispatched.iter().map(|sent| sent.token);
            retired::hand_over(&slot, tokens.collect());
        }
        for InFlight { slot, token } in orphaned {
            retired::hand_over(&slot, vec![token]);
        }
        self.publish();
    }

    fn note_in_flight(&self, slot: &Arc<WorkerSlot>, dispatched: Vec<Dispatched>) {
        if dispatched.is_empty() {
            return;
        }
        let mut in_flight = locked(&self.in_flight);
        for Dispatched { callout_id, token } in dispatched {
            in_flight.insert(callout_id, InFlight { slot: Arc::clone(slot), token });
        }
    }

    fn handle_early_answers(&self) {
        let early = std::mem::take(&mut *locked(&self.early_answers));
        for (callout_id, answer) in early {
            if locked(&self.in_flight).contains_key(&callout_id) {
                self.on_answer(callout_id, answer);
            }
        }
    }

    fn publish(&self) {
        let snapshots: Vec<_> = self.slots().iter().map(|(_, slot)| slot.snapshot()).collect();
        self.metrics.publish(&self.handle, &snapshots, crate::guard::panics());
    }
}

impl ExitingConfig for ModuleConfig {
    fn collector_timeout_ms(&self) -> u64 {
        self.filter.collector.timeout_ms
    }

    /// Envoy is exiting ([`envoy_exit`], main thread): each worker's delivery sends what it
    /// holds with its final report (the core's `on_done`); the ticks and answers go on
    /// until Envoy stops its loop.
    fn on_envoy_exit(&self, now: u64) {
        for (_, slot) in self.slots() {
            let mut host = MainThreadHost::new(self.handle, &slot, "");
            let progress = delivering(|| slot.delivery().on_done(&mut host, now));
            if progress == Shutdown::Finished {
                slot.set_finished();
            }
            self.note_in_flight(&slot, host.dispatched);
        }
        self.handle_early_answers();
        self.publish();
    }

    /// Requests of this configuration's workers whose event is not captured yet.
    fn requests_in_progress(&self) -> usize {
        self.slots().iter().map(|(_, slot)| slot.requests_in_progress()).sum()
    }

    /// Whether what Envoy's exit sent has been answered: no call of this configuration is
    /// on the wire (a failed one is retried only after a backoff Envoy's exit does not
    /// wait for), or every worker's delivery is drained.
    fn exit_settled(&self) -> bool {
        locked(&self.in_flight).is_empty() || self.slots().iter().all(|(_, slot)| slot.is_finished())
    }

    /// Stops the tick thread (main thread), once Envoy's exit no longer needs ticks: Envoy
    /// deletes no configuration when it exits, so a thread still committing the scheduler
    /// would reach Envoy's torn-down main loop.
    fn stop_ticking(&self) {
        if let Some(mut ticker) = locked(&self.ticker).take() {
            ticker.stop();
        }
    }

    fn is_ticking(&self) -> bool {
        locked(&self.ticker).is_some()
    }
}
