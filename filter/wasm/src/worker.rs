//! What one worker VM shares between its root context (which delivers) and its HTTP
//! contexts (which capture): the validated configuration (with its route table), the
//! delivery state (with the outbox) and the metrics. Built once per `on_configure`, shared
//! through an `Rc` (a VM is single-threaded).

use std::cell::RefCell;

use super::metrics::Metrics;
use audit_event::event_uuid::encode_event_uuid;
use audit_filter_core::config::FilterConfig;
use audit_filter_core::config_error::ConfigError;
use audit_filter_core::request::fingerprint::{resolve_key, FingerprintKey, KeyOrigin};
use audit_filter_core::worker::delivery::Delivery;
use audit_filter_core::worker::entropy::EntropyPool;

pub struct Worker {
    pub config: FilterConfig,
    pub delivery: Delivery,
    /// Keys `token_fingerprint`; None when fingerprints are disabled.
    pub fingerprint_key: Option<FingerprintKey>,
    /// Published by the root (on tick and after each answer), never per request, to keep
    /// host calls off the request path.
    pub metrics: RefCell<Metrics>,
    /// The streams paused until the collector acknowledges this worker's announcement
    /// (their context ids); the root resumes them.
    pub held: RefCell<Vec<u32>>,
}

impl Worker {
    /// Parses the plugin configuration and resolves the ingest token from the environment
    /// Envoy passed through (`vm_config.environment_variables.host_env_keys`).
    /// Defines the metrics too.
    pub fn configure(plugin_configuration: &[u8]) -> Result<Worker, ConfigError> {
        let config = FilterConfig::from_json(plugin_configuration)?;
        let token = config.ingest_token(|name| std::env::var(name).ok())?;
        let fingerprint = &config.redaction.token_fingerprint;
        let (fingerprint_key, origin) = resolve_key(fingerprint, |name| std::env::var(name).ok(), token.trim());
        if origin == KeyOrigin::IngestToken {
            log::info!(
                "audit-filter: `{}` is unset, so token fingerprints are keyed by a key derived from the ingest \
                 token; they change when it is rotated (set `{}` and list it in host_env_keys for stable ones)",
                fingerprint.key_env,
                fingerprint.key_env
            );
        }
        Ok(Worker {
            delivery: Delivery::new(&config, &token, encode_event_uuid(random_event_id())),
            fingerprint_key,
            metrics: RefCell::new(Metrics::define()),
            held: RefCell::new(Vec::new()),
            config,
        })
    }
}

thread_local!(static ENTROPY: RefCell<EntropyPool> = RefCell::new(EntropyPool::default()));

/// 16 random bytes for an event uuid, from a pool refilled by one `random_get` per 64
/// uuids (a host call per event cost ~0.7 us). `random_get` works in Envoy; should it ever
/// fail, the clock and a counter still give a uuid unique within this worker.
pub fn random_event_id() -> [u8; 16] {
    let pooled = ENTROPY.with(|pool| pool.try_borrow_mut().ok()?.take16(|bytes| getrandom::fill(bytes).is_ok()));
    pooled.unwrap_or_else(|| {
        log::error!("audit-filter: random_get failed; event uuids fall back to clock and counter");
        fallback_id()
    })
}

/// Randomness for backoff jitter; the clock will do if the host has none.
pub fn random_u64() -> u64 {
    getrandom::u64().unwrap_or_else(|_| super::now_unix_nanos().unsigned_abs())
}

fn fallback_id() -> [u8; 16] {
    thread_local!(static COUNTER: std::cell::Cell<u64> = const { std::cell::Cell::new(0) });
    let count = COUNTER.with(|counter| {
        counter.set(counter.get().wrapping_add(1));
        counter.get()
    });
    let mut bytes = [0u8; 16];
    let (clock, sequence) = bytes.split_at_mut(8);
    clock.copy_from_slice(&super::now_unix_nanos().to_le_bytes());
    sequence.copy_from_slice(&count.to_le_bytes());
    bytes
}
