//! The live filter configurations, by id. Envoy is handed only a configuration's id (as its
//! `in_module_config` pointer), never a pointer to module memory: every configuration hook
//! looks the id up here, so a scheduled event or a callout answer that Envoy delivered after
//! `config_destroy` finds nothing and is ignored (and counted) instead of touching freed
//! memory. Ids are never reused, so a late event cannot reach a newer configuration.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

pub struct Registry<T> {
    next_id: AtomicU64,
    live: RwLock<Option<HashMap<u64, Arc<T>>>>,
    /// Hooks that named a configuration no longer (or never) registered.
    ignored: AtomicU64,
}

impl<T> Registry<T> {
    pub const fn new() -> Registry<T> {
        Registry { next_id: AtomicU64::new(1), live: RwLock::new(None), ignored: AtomicU64::new(0) }
    }

    /// Registers `value` and returns its id (never 0, so it is a non-null pointer to Envoy).
    pub fn insert(&self, value: Arc<T>) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut live = self.live.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        live.get_or_insert_with(HashMap::new).insert(id, value);
        id
    }

    /// The configuration `id` if it is still live; else None, counted as ignored.
    pub fn get(&self, id: u64) -> Option<Arc<T>> {
        let live = self.live.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let found = live.as_ref().and_then(|live| live.get(&id)).map(Arc::clone);
        if found.is_none() {
            self.ignored.fetch_add(1, Ordering::Relaxed);
        }
        found
    }

    /// Unregisters `id` (at `config_destroy`): later lookups of it find nothing.
    pub fn remove(&self, id: u64) -> Option<Arc<T>> {
        let mut live = self.live.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        let removed = live.as_mut().and_then(|live| live.remove(&id));
        if removed.is_none() {
            self.ignored.fetch_add(1, Ordering::Relaxed);
        }
        removed
    }

    /// Every live configuration (at Envoy's exit, each sends what it holds).
    pub fn all(&self) -> Vec<Arc<T>> {
        let live = self.live.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        live.iter().flat_map(|live| live.values().map(Arc::clone)).collect()
    }

    /// How many hooks named a configuration that was not live (logged by the hooks).
    pub fn ignored(&self) -> u64 {
        self.ignored.load(Ordering::Relaxed)
    }
}

impl<T> Default for Registry<T> {
    fn default() -> Registry<T> {
        Registry::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_after_destroy_finds_nothing_and_is_counted() {
        let registry = Registry::new();
        let id = registry.insert(Arc::new(String::from("config")));
        assert_eq!(registry.get(id).as_deref().map(String::as_str), Some("config"));
        let removed = registry.remove(id);
        assert!(removed.is_some());
        drop(removed);
        assert!(registry.get(id).is_none(), "a late callout answer must not reach a destroyed configuration");
        assert!(registry.get(id).is_none(), "nor a late scheduled event");
        assert_eq!(registry.ignored(), 2);
        assert!(registry.remove(id).is_none(), "a second destroy is ignored too");
        assert_eq!(registry.ignored(), 3);
    }

    #[test]
    fn ids_are_never_zero_nor_reused() {
        let registry = Registry::new();
        let first = registry.insert(Arc::new(1));
        drop(registry.remove(first));
        let second = registry.insert(Arc::new(2));
        assert_ne!(first, 0);
        assert_ne!(first, second);
        assert!(registry.get(first).is_none(), "an old id does not reach the new configuration");
        assert_eq!(registry.all(), [Arc::new(2)], "only the live one is there at an exit");
        assert_eq!(registry.get(second).as_deref(), Some(&2));
    }

    #[test]
    fn a_lookup_keeps_the_configuration_alive_past_its_destroy() {
        let registry = Registry::new();
        let id = registry.insert(Arc::new(vec![1, 2, 3]));
        let in_use = registry.get(id);
        drop(registry.remove(id));
        assert_eq!(in_use.as_deref(), Some(&vec![1, 2, 3]), "a hook running during destroy keeps its own count");
    }
}
