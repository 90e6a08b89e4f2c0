//! `CachedPreferencesRepository`: the preferences port with a cache of each user's row
//! (absent rows included).

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use domain::{
    RepositoryError, UserId,
    history::ChangeOrigin,
    ports::{PreferencesRepository, PreferencesWriteError},
    preferences::{PreferenceOverrides, StoredPreferences},
    settings::Precondition,
};

use super::{
    budget::Budget,
    generations::Generations,
    read_through::{CacheCounters, ReadThrough},
};

/// The cached state of the preferences store, shared by the repository decorator and the
/// change-feed listener.
pub struct PreferencesCache {
    generations: Arc<Generations>,
    rows: ReadThrough<UserId, Option<StoredPreferences>>,
}

impl PreferencesCache {
    /// An empty cache whose entries live at most `ttl`, held to `budget`.
    pub fn new(ttl: Duration, budget: Budget, counters: CacheCounters) -> Self {
        let generations = Arc::new(Generations::new());
        Self {
            rows: ReadThrough::new(ttl, budget, Arc::clone(&generations), counters),
            generations,
        }
    }

    /// The preferences of `user` changed.
    pub async fn preferences_changed(&self, user: UserId) {
        self.generations.bump(user);
        self.rows.discard(&user).await;
    }

    /// Anything may have changed.
    pub fn flush(&self) {
        self.generations.bump_all();
        self.rows.discard_all();
    }

    /// A number that grows with every invalidation of `user`'s preferences.
    pub fn generation(&self, user: UserId) -> u64 {
        self.generations.current(user)
    }

    /// Entries held.
    pub fn entry_count(&self) -> u64 {
        self.rows.entry_count()
    }

    /// Bytes held (as charged against the budget).
    pub fn weighted_bytes(&self) -> u64 {
        self.rows.weighted_bytes()
    }

    /// Applies pending evictions, so count and bytes are exact.
    #[cfg(test)]
    pub async fn settle(&self) {
        self.rows.settle().await;
    }
}

/// The preferences port `P` behind the cache.
pub struct CachedPreferencesRepository<P> {
    inner: P,
    cache: Arc<PreferencesCache>,
}

impl<P> CachedPreferencesRepository<P> {
    /// Decorates `inner` with `cache`.
    pub fn new(inner: P, cache: Arc<PreferencesCache>) -> Self {
        Self { inner, cache }
    }
}

#[async_trait]
impl<P: PreferencesRepository> PreferencesRepository for CachedPreferencesRepository<P> {
    async fn get(&self, user: UserId) -> Result<Option<StoredPreferences>, RepositoryError> {
        self.cache
            .rows
            .get_or_load(user, user, || self.inner.get(user))
            .await
    }

    async fn upsert(
        &self,
        user: UserId,
        overrides: &PreferenceOverrides,
        expected: Precondition,
        origin: ChangeOrigin,
    ) -> Result<StoredPreferences, PreferencesWriteError> {
        let result = self.inner.upsert(user, overrides, expected, origin).await;
        // Whatever the outcome: a timeout may hide a committed write.
        self.cache.preferences_changed(user).await;
        result
    }
}
