//! One read-through cache (moka): concurrent misses of an entry load it once, entries carry
//! the generation they were loaded at (see `generations`), and the cache is held to a byte
//! budget (see `budget`): each entry weighs what it pins, and one too heavy is served but not
//! cached.

use std::{future::Future, hash::Hash, sync::Arc, time::Duration};

use domain::{RepositoryError, UserId};
use moka::future::Cache;
use prometheus::IntCounter;

use super::{
    budget::{Budget, HeapSize, entry_bytes},
    generations::Generations,
};

/// Hit and miss counters of one cache (a miss is a load from the repository).
#[derive(Clone)]
pub struct CacheCounters {
    /// Reads answered from the cache.
    pub hits: IntCounter,
    /// Reads that went to the repository.
    pub misses: IntCounter,
}

#[derive(Clone)]
struct Stamped<V> {
    generation: u64,
    /// What the entry is charged against the budget.
    weight: u32,
    value: V,
}

/// Why a shared load produced no entry.
enum NotCached {
    Failed(RepositoryError),
    /// Loaded, but heavier than the budget lets one entry be.
    TooHeavy,
}

/// A cache of values of one user each, keyed by `K`.
pub struct ReadThrough<K, V> {
    entries: Cache<K, Stamped<V>>,
    budget: Budget,
    generations: Arc<Generations>,
    counters: CacheCounters,
}

impl<K, V> ReadThrough<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + HeapSize + 'static,
    V: Clone + Send + Sync + HeapSize + 'static,
{
    /// An empty cache whose entries live at most `ttl`, held to `budget`.
    pub fn new(
        ttl: Duration,
        budget: Budget,
        generations: Arc<Generations>,
        counters: CacheCounters,
    ) -> Self {
        Self {
            entries: Cache::builder()
                .time_to_live(ttl)
                .max_capacity(budget.max_bytes)
                .weigher(|_, entry: &Stamped<V>| entry.weight)
                .build(),
            budget,
            generations,
            counters,
        }
    }

    /// `value` as an entry of `key` loaded at `generation`, or `Err(value)` when it is too
    /// heavy to cache.
    fn stamp(&self, key: &K, value: V, generation: u64) -> Result<Stamped<V>, V> {
        match self
            .budget
            .charge(entry_bytes::<K, V, Stamped<V>>(key, &value))
        {
            Some(weight) => Ok(Stamped {
                generation,
                weight,
                value,
            }),
            None => Err(value),
        }
    }

    /// The value of `key` (owned by `user`): from the cache when it was loaded no earlier
    /// than the last invalidation of `user`, else from `load`.
    ///
    /// # Errors
    /// What `load` returns; errors are not cached.
    pub async fn get_or_load<F, Fut>(
        &self,
        user: UserId,
        key: K,
        load: F,
    ) -> Result<V, RepositoryError>
    where
        F: Fn() -> Fut + Sync,
        Fut: Future<Output = Result<V, RepositoryError>> + Send,
    {
        let seen = self.generations.current(user);
        let mut loaded = false;
        let mut too_heavy = None;
        let shared = self
            .entries
            .try_get_with(key.clone(), async {
                loaded = true;
                let value = load().await.map_err(NotCached::Failed)?;
                self.stamp(&key, value, seen).map_err(|value| {
                    too_heavy = Some(value);
                    NotCached::TooHeavy
                })
            })
            .await;
        let entry = match shared {
            Ok(entry) => entry,
            Err(error) => {
                unshare(error)?;
                // Too heavy to cache, so served uncached: this read's own load, or a fresh
                // one when it joined another's (the value stayed with that reader).
                self.counters.misses.inc();
                return match too_heavy {
                    Some(value) => Ok(value),
                    None => load().await,
                };
            }
        };
        if entry.generation >= seen {
            if loaded {
                self.counters.misses.inc();
            } else {
                self.counters.hits.inc();
            }
            return Ok(entry.value);
        }
        // Loaded before an invalidation that this read began after (a slow load that landed
        // late, or one this read joined): load afresh.
        self.counters.misses.inc();
        self.entries.invalidate(&key).await;
        let seen = self.generations.current(user);
        let value = load().await?;
        match self.stamp(&key, value, seen) {
            Ok(entry) => {
                let value = entry.value.clone();
                self.entries.insert(key, entry).await;
                Ok(value)
            }
            Err(value) => Ok(value),
        }
    }

    /// Drops one entry now (its generation already makes it stale; this frees the memory).
    pub async fn discard(&self, key: &K) {
        self.entries.invalidate(key).await;
    }

    /// Drops every entry.
    pub fn discard_all(&self) {
        self.entries.invalidate_all();
    }

    /// Entries held (approximate: moka counts lazily).
    pub fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }

    /// Bytes the entries are charged (approximate, like the count).
    pub fn weighted_bytes(&self) -> u64 {
        self.entries.weighted_size()
    }

    /// Applies pending evictions and counts, so the figures above are exact.
    #[cfg(test)]
    pub async fn settle(&self) {
        self.entries.run_pending_tasks().await;
    }
}

/// Why a shared load left no entry, for one of its waiters: `Err` with the repository error
/// of a failed load, `Ok` when the load succeeded but its value was too heavy to cache.
fn unshare(error: Arc<NotCached>) -> Result<(), RepositoryError> {
    match Arc::try_unwrap(error) {
        Ok(NotCached::Failed(error)) => Err(error),
        Ok(NotCached::TooHeavy) => Ok(()),
        Err(shared) => match &*shared {
            NotCached::Failed(RepositoryError::Unavailable(reason)) => {
                Err(RepositoryError::Unavailable(reason.clone()))
            }
            NotCached::Failed(RepositoryError::Unknown(cause)) => {
                Err(RepositoryError::Unknown(anyhow::anyhow!("{cause:#}")))
            }
            NotCached::TooHeavy => Ok(()),
        },
    }
}
