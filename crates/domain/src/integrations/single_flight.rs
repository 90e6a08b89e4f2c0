//! `KeyedLocks`: one async mutex per key, so concurrent callers for the same connection do
//! one refresh between them (single-flight) while other connections proceed in parallel.
//!
//! Runtime-agnostic (`futures-util`'s mutex, no tokio). Entries are weak: a key's mutex lives
//! only while someone holds or waits for it, and dead entries are swept as the map grows, so
//! memory stays bounded by the number of connections in flight.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, PoisonError, Weak},
};

use futures_util::lock::{Mutex as AsyncMutex, OwnedMutexGuard};

/// A map of async mutexes keyed by `K`.
pub struct KeyedLocks<K> {
    inner: Mutex<Registry<K>>,
}

struct Registry<K> {
    locks: HashMap<K, Weak<AsyncMutex<()>>>,
    /// Sweep dead entries when the map reaches this size (doubles with the live count).
    sweep_at: usize,
}

const MIN_SWEEP_AT: usize = 64;

impl<K: Eq + Hash + Clone> Default for KeyedLocks<K> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Registry {
                locks: HashMap::new(),
                sweep_at: MIN_SWEEP_AT,
            }),
        }
    }
}

impl<K: Eq + Hash + Clone> KeyedLocks<K> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits for the lock of `key`; it is released when the guard is dropped.
    pub async fn lock(&self, key: &K) -> OwnedMutexGuard<()> {
        let mutex = self.handle(key);
        mutex.lock_owned().await
    }

    /// How many keys have a live mutex (for tests and metrics).
    pub fn live(&self) -> usize {
        let registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        registry
            .locks
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    fn handle(&self, key: &K) -> Arc<AsyncMutex<()>> {
        // The std mutex is held only for map operations, never across an await.
        let mut registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = registry.locks.get(key).and_then(Weak::upgrade) {
            return existing;
        }
        if registry.locks.len() >= registry.sweep_at {
            registry.locks.retain(|_, w| w.strong_count() > 0);
            registry.sweep_at = (registry.locks.len() * 2).max(MIN_SWEEP_AT);
        }
        let mutex = Arc::new(AsyncMutex::new(()));
        registry.locks.insert(key.clone(), Arc::downgrade(&mutex));
        mutex
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_released_key_leaves_no_live_mutex() {
        let locks = KeyedLocks::new();
        {
            let _guard = locks.lock(&1).await;
            assert_eq!(locks.live(), 1);
        }
        assert_eq!(locks.live(), 0);
    }

    #[tokio::test]
    async fn the_same_key_is_exclusive_and_other_keys_are_not() {
        let locks = KeyedLocks::new();
        let held = locks.lock(&"a").await;
        // Another key is free at once.
        let _other = locks.lock(&"b").await;
        // The same key is not.
        let mutex = locks.handle(&"a");
        assert!(mutex.try_lock().is_none());
        drop(held);
        assert!(mutex.try_lock().is_some());
    }

    #[tokio::test]
    async fn dead_entries_are_swept_as_the_map_grows() {
        let locks = KeyedLocks::new();
        for key in 0..1000 {
            drop(locks.lock(&key).await);
        }
        let size = locks.inner.lock().unwrap().locks.len();
        assert!(size <= MIN_SWEEP_AT, "{size} entries kept");
    }
}
