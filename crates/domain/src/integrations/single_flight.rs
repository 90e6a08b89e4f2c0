//! `KeyedLocks`: one async mutex per key, so concurrent callers for the same connection do
//! one refresh between them (single-flight) while other connections proceed in parallel.
//!
//! The caller holding a key's lock records how its flight ended ([`Flight::finish`]). A
//! caller that was queued while a flight failed gets that failure
//! ([`Flight::failed_while_waiting`]) instead of repeating the call: k callers behind a
//! provider that times out wait one timeout, not k.
//!
//! Runtime-agnostic (`futures-util`'s mutex, no tokio). Entries are weak: a key's slot lives
//! only while someone holds or waits for it (so a recorded failure is only ever seen by the
//! callers that queued behind it), and dead entries are swept as the map grows, so memory
//! stays bounded by the number of connections in flight.

use std::{
    collections::HashMap,
    hash::Hash,
    sync::{Arc, Mutex, PoisonError, Weak},
};

use futures_util::lock::{Mutex as AsyncMutex, OwnedMutexGuard};

/// A map of async mutexes keyed by `K`; a flight that fails leaves an `F` for its waiters.
pub struct KeyedLocks<K, F> {
    inner: Mutex<Registry<K, F>>,
}

struct Registry<K, F> {
    slots: HashMap<K, Weak<Slot<F>>>,
    /// Sweep dead entries when the map reaches this size (doubles with the live count).
    sweep_at: usize,
}

/// One key's mutex and the outcome of its last finished flight.
struct Slot<F> {
    mutex: Arc<AsyncMutex<()>>,
    last: Mutex<Ended<F>>,
}

struct Ended<F> {
    /// How many flights of this slot have finished.
    flights: u64,
    /// The failure of the last one, if it failed.
    failure: Option<F>,
}

const MIN_SWEEP_AT: usize = 64;

impl<K: Eq + Hash + Clone, F: Clone> Default for KeyedLocks<K, F> {
    fn default() -> Self {
        Self {
            inner: Mutex::new(Registry {
                slots: HashMap::new(),
                sweep_at: MIN_SWEEP_AT,
            }),
        }
    }
}

impl<K: Eq + Hash + Clone, F: Clone> KeyedLocks<K, F> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Waits for the lock of `key`; it is released when the [`Flight`] is finished or dropped.
    pub async fn lock(&self, key: &K) -> Flight<F> {
        let slot = self.slot(key);
        // Taken before waiting: flights that finish from now on finished while we waited.
        let ticket = slot.ended().flights;
        let guard = Arc::clone(&slot.mutex).lock_owned().await;
        Flight {
            _guard: guard,
            slot,
            ticket,
        }
    }

    /// How many keys have a live slot.
    #[cfg(test)]
    pub(crate) fn live(&self) -> usize {
        let registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        registry
            .slots
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    fn slot(&self, key: &K) -> Arc<Slot<F>> {
        // The std mutex is held only for map operations, never across an await.
        let mut registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(existing) = registry.slots.get(key).and_then(Weak::upgrade) {
            return existing;
        }
        if registry.slots.len() >= registry.sweep_at {
            registry.slots.retain(|_, w| w.strong_count() > 0);
            registry.sweep_at = (registry.slots.len() * 2).max(MIN_SWEEP_AT);
        }
        let slot = Arc::new(Slot {
            mutex: Arc::new(AsyncMutex::new(())),
            last: Mutex::new(Ended {
                flights: 0,
                failure: None,
            }),
        });
        registry.slots.insert(key.clone(), Arc::downgrade(&slot));
        slot
    }
}

impl<F> Slot<F> {
    fn ended(&self) -> std::sync::MutexGuard<'_, Ended<F>> {
        self.last.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The lock of one key, held. Dropping it without [`Flight::finish`] (a cancelled caller)
/// records nothing: the next waiter does the work itself.
pub struct Flight<F> {
    _guard: OwnedMutexGuard<()>,
    slot: Arc<Slot<F>>,
    ticket: u64,
}

impl<F: Clone> Flight<F> {
    /// The failure of the last flight, if one finished while this caller waited for the lock
    /// and it failed.
    pub fn failed_while_waiting(&self) -> Option<F> {
        let ended = self.slot.ended();
        if ended.flights > self.ticket {
            ended.failure.clone()
        } else {
            None
        }
    }

    /// Records how this flight ended (`Some` failure, or `None` on success) for the callers
    /// queued behind it, then releases the lock.
    pub fn finish(self, failure: Option<F>) {
        let mut ended = self.slot.ended();
        ended.flights += 1;
        ended.failure = failure;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Locks<K> = KeyedLocks<K, &'static str>;

    #[tokio::test]
    async fn a_released_key_leaves_no_live_slot() {
        let locks = Locks::new();
        {
            let _flight = locks.lock(&1).await;
            assert_eq!(locks.live(), 1);
        }
        assert_eq!(locks.live(), 0);
    }

    #[tokio::test]
    async fn the_same_key_is_exclusive_and_other_keys_are_not() {
        let locks = Locks::new();
        let held = locks.lock(&"a").await;
        // Another key is free at once.
        let _other = locks.lock(&"b").await;
        // The same key is not.
        let slot = locks.slot(&"a");
        assert!(slot.mutex.try_lock().is_none());
        drop(held);
        assert!(slot.mutex.try_lock().is_some());
    }

    #[tokio::test]
    async fn dead_entries_are_swept_as_the_map_grows() {
        let locks = Locks::new();
        for key in 0..1000 {
            drop(locks.lock(&key).await);
        }
        let size = locks.inner.lock().unwrap().slots.len();
        assert!(size <= MIN_SWEEP_AT, "{size} entries kept");
    }

    #[tokio::test]
    async fn a_waiter_behind_a_failed_flight_gets_its_failure() {
        let locks = Locks::new();
        let holder = locks.lock(&1).await;
        let waiting = locks.lock(&1);
        let finish = async {
            tokio::task::yield_now().await;
            holder.finish(Some("timeout"));
        };
        let (waiter, ()) = tokio::join!(waiting, finish);
        assert_eq!(waiter.failed_while_waiting(), Some("timeout"));
    }

    #[tokio::test]
    async fn a_caller_arriving_after_a_failure_tries_for_itself() {
        let locks = Locks::new();
        // Keeps the slot (and its record) alive between the two callers.
        let _slot = locks.slot(&1);
        locks.lock(&1).await.finish(Some("timeout"));
        let later = locks.lock(&1).await;
        assert_eq!(later.failed_while_waiting(), None);
    }

    #[tokio::test]
    async fn a_waiter_behind_a_successful_flight_gets_none() {
        let locks = Locks::new();
        let holder = locks.lock(&1).await;
        let waiting = locks.lock(&1);
        let finish = async {
            tokio::task::yield_now().await;
            holder.finish(None);
        };
        let (waiter, ()) = tokio::join!(waiting, finish);
        assert_eq!(waiter.failed_while_waiting(), None);
    }

    #[tokio::test]
    async fn a_cancelled_holder_records_nothing() {
        let locks = Locks::new();
        let holder = locks.lock(&1).await;
        let waiting = locks.lock(&1);
        let cancel = async {
            tokio::task::yield_now().await;
            drop(holder);
        };
        let (waiter, ()) = tokio::join!(waiting, cancel);
        assert_eq!(waiter.failed_while_waiting(), None);
    }
}
