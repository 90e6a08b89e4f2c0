//! One read-through cache (moka): concurrent misses of an entry load it once, and entries
//! carry the generation they were loaded at (see `generations`).

use std::{future::Future, hash::Hash, sync::Arc, time::Duration};

use domain::{RepositoryError, UserId};
use moka::future::Cache;
use prometheus::IntCounter;

use super::generations::Generations;

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
    value: V,
}

/// A cache of values of one user each, keyed by `K`.
pub struct ReadThrough<K, V> {
    entries: Cache<K, Stamped<V>>,
    generations: Arc<Generations>,
    counters: CacheCounters,
}

impl<K, V> ReadThrough<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// An empty cache whose entries live at most `ttl`; at most `max_entries` are kept.
    pub fn new(
        ttl: Duration,
        max_entries: u64,
        generations: Arc<Generations>,
        counters: CacheCounters,
    ) -> Self {
        Self {
            entries: Cache::builder()
                .time_to_live(ttl)
                .max_capacity(max_entries)
                .build(),
            generations,
            counters,
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
        let entry = self
            .entries
            .try_get_with(key.clone(), async {
                loaded = true;
                let value = load().await?;
                Ok::<_, RepositoryError>(Stamped {
                    generation: seen,
                    value,
                })
            })
            .await
            .map_err(unshare)?;
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
        self.entries
            .insert(
                key,
                Stamped {
                    generation: seen,
                    value: value.clone(),
                },
            )
            .await;
        Ok(value)
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
}

/// The error of a shared load, for one of its waiters.
fn unshare(error: Arc<RepositoryError>) -> RepositoryError {
    Arc::try_unwrap(error).unwrap_or_else(|shared| match &*shared {
        RepositoryError::Unavailable(reason) => RepositoryError::Unavailable(reason.clone()),
        RepositoryError::Unknown(cause) => RepositoryError::Unknown(anyhow::anyhow!("{cause:#}")),
    })
}
