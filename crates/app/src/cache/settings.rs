//! `CachedSettingsRepository`: the settings port with a cache of single settings (per
//! user and key, absent ones included) and of listings (per user, category filter and page).

use std::{sync::Arc, time::Duration};

use async_trait::async_trait;
use domain::{
    RepositoryError, UserId,
    history::ChangeOrigin,
    ports::{SettingDeleteError, SettingWriteError, SettingsRepository},
    settings::{
        Category, Page, Precondition, Setting, SettingKey, SettingWrite, UpsertOutcome, UserQuota,
    },
};

use super::{
    budget::SettingsBudgets,
    generations::Generations,
    read_through::{CacheCounters, ReadThrough},
};

/// The cached state of the settings store, shared by the repository decorator and the
/// change-feed listener.
pub struct SettingsCache {
    generations: Arc<Generations>,
    by_key: ReadThrough<(UserId, SettingKey), Option<Setting>>,
    listings: ReadThrough<(UserId, Option<Category>, Page), Vec<Setting>>,
}

impl SettingsCache {
    /// Empty caches whose entries live at most `ttl`, each held to its budget.
    pub fn new(
        ttl: Duration,
        budgets: SettingsBudgets,
        by_key: CacheCounters,
        listings: CacheCounters,
    ) -> Self {
        let generations = Arc::new(Generations::new());
        Self {
            by_key: ReadThrough::new(ttl, budgets.settings, Arc::clone(&generations), by_key),
            listings: ReadThrough::new(ttl, budgets.listings, Arc::clone(&generations), listings),
            generations,
        }
    }

    /// A setting of `user` changed: its entry and every listing of `user` are stale.
    pub async fn setting_changed(&self, user: UserId, key: &SettingKey) {
        self.generations.bump(user);
        self.by_key.discard(&(user, key.clone())).await;
    }

    /// Settings of `user` changed (which ones is not known, e.g. a failed bulk write).
    pub fn user_changed(&self, user: UserId) {
        self.generations.bump(user);
    }

    /// Anything may have changed.
    pub fn flush(&self) {
        self.generations.bump_all();
        self.by_key.discard_all();
        self.listings.discard_all();
    }

    /// A number that grows with every invalidation of `user`'s settings.
    pub fn generation(&self, user: UserId) -> u64 {
        self.generations.current(user)
    }

    /// Whether an invalidation of `a` also invalidates `b`.
    #[cfg(test)]
    pub fn share_generation(&self, a: UserId, b: UserId) -> bool {
        self.generations.same_stripe(a, b)
    }

    /// Entries held: single settings, listings.
    pub fn entry_counts(&self) -> (u64, u64) {
        (self.by_key.entry_count(), self.listings.entry_count())
    }

    /// Bytes held (as charged against the budgets): single settings, listings.
    pub fn weighted_bytes(&self) -> (u64, u64) {
        (self.by_key.weighted_bytes(), self.listings.weighted_bytes())
    }

    /// Applies pending evictions, so counts and bytes are exact.
    #[cfg(test)]
    pub async fn settle(&self) {
        self.by_key.settle().await;
        self.listings.settle().await;
    }
}

/// The settings port `R` behind the cache.
pub struct CachedSettingsRepository<R> {
    inner: R,
    cache: Arc<SettingsCache>,
}

impl<R> CachedSettingsRepository<R> {
    /// Decorates `inner` with `cache`.
    pub fn new(inner: R, cache: Arc<SettingsCache>) -> Self {
        Self { inner, cache }
    }
}

#[async_trait]
impl<R: SettingsRepository> SettingsRepository for CachedSettingsRepository<R> {
    async fn get(
        &self,
        user: UserId,
        key: &SettingKey,
    ) -> Result<Option<Setting>, RepositoryError> {
        self.cache
            .by_key
            .get_or_load(user, (user, key.clone()), || self.inner.get(user, key))
            .await
    }

    async fn list(
        &self,
        user: UserId,
        category: Option<Category>,
        page: Page,
    ) -> Result<Vec<Setting>, RepositoryError> {
        // Every page of a user shares the user's generation: any write invalidates them all.
        self.cache
            .listings
            .get_or_load(user, (user, category.clone(), page.clone()), || {
                self.inner.list(user, category.clone(), page.clone())
            })
            .await
    }

    // Writes invalidate whatever their outcome: a timeout may hide a committed write.

    async fn upsert(
        &self,
        user: UserId,
        write: &SettingWrite,
        expected: Precondition,
        quota: UserQuota,
    ) -> Result<UpsertOutcome, SettingWriteError> {
        let result = self.inner.upsert(user, write, expected, quota).await;
        self.cache.setting_changed(user, &write.key).await;
        result
    }

    async fn upsert_many(
        &self,
        user: UserId,
        writes: &[SettingWrite],
        quota: UserQuota,
    ) -> Result<Vec<UpsertOutcome>, SettingWriteError> {
        let result = self.inner.upsert_many(user, writes, quota).await;
        self.cache.user_changed(user);
        for write in writes {
            self.cache.by_key.discard(&(user, write.key.clone())).await;
        }
        result
    }

    async fn delete(
        &self,
        user: UserId,
        key: &SettingKey,
        expected: Precondition,
        origin: ChangeOrigin,
    ) -> Result<(), SettingDeleteError> {
        let result = self.inner.delete(user, key, expected, origin).await;
        self.cache.setting_changed(user, key).await;
        result
    }

    async fn count(&self, user: UserId) -> Result<u64, RepositoryError> {
        self.inner.count(user).await
    }
}
