//! The deployment layer, cached whole: it is small, read by every effective read and every
//! user write (the enforcement check), and changes rarely. A local write and the change
//! feed's `defaults` event drop it; a load that began before a drop is not kept (the same
//! guard as the read-through caches), and the TTL bounds anything missed.

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use domain::{
    RepositoryError,
    audit::Actor,
    defaults::{DeploymentDefaults, DeploymentSetting},
    ports::DefaultsRepository,
    preferences::DeploymentPreferences,
    settings::{SettingKey, SettingWrite},
};

/// The cached layer of one instance.
#[derive(Debug)]
pub struct DefaultsCache {
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Bumped by every invalidation, so a load that straddles one is not kept.
    generation: u64,
    entry: Option<(Instant, Arc<DeploymentDefaults>)>,
}

impl DefaultsCache {
    /// A cache whose entry lives at most `ttl`.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            state: Mutex::new(State::default()),
        }
    }

    /// Drops the cached layer.
    pub fn invalidate(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.entry = None;
    }

    /// A number that grows with every invalidation.
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is two plain fields, valid after any panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached layer if fresh, else the generation a load must match to be kept.
    fn lookup(&self) -> Result<Arc<DeploymentDefaults>, u64> {
        let state = self.lock();
        match &state.entry {
            Some((at, layer)) if at.elapsed() < self.ttl => Ok(Arc::clone(layer)),
            _ => Err(state.generation),
        }
    }

    fn keep(&self, generation: u64, layer: &Arc<DeploymentDefaults>) {
        let mut state = self.lock();
        if state.generation == generation {
            state.entry = Some((Instant::now(), Arc::clone(layer)));
        }
    }
}

/// The deployment layer's repository behind [`DefaultsCache`].
pub struct CachedDefaultsRepository<R> {
    inner: R,
    cache: Arc<DefaultsCache>,
}

impl<R> CachedDefaultsRepository<R> {
    /// Caches `inner`'s layer in `cache`.
    pub fn new(inner: R, cache: Arc<DefaultsCache>) -> Self {
        Self { inner, cache }
    }
}

#[async_trait]
impl<R: DefaultsRepository> DefaultsRepository for CachedDefaultsRepository<R> {
    async fn load(&self) -> Result<Arc<DeploymentDefaults>, RepositoryError> {
        match self.cache.lookup() {
            Ok(layer) => Ok(layer),
            Err(generation) => {
                let layer = self.inner.load().await?;
                self.cache.keep(generation, &layer);
                Ok(layer)
            }
        }
    }

    async fn put_setting(
        &self,
        write: &SettingWrite,
        enforced: bool,
        actor: &Actor,
    ) -> Result<(DeploymentSetting, bool), RepositoryError> {
        let result = self.inner.put_setting(write, enforced, actor).await;
        self.cache.invalidate();
        result
    }

    async fn delete_setting(
        &self,
        key: &SettingKey,
        actor: &Actor,
    ) -> Result<bool, RepositoryError> {
        let result = self.inner.delete_setting(key, actor).await;
        self.cache.invalidate();
        result
    }

    async fn put_preferences(
        &self,
        preferences: &DeploymentPreferences,
        expected_version: i64,
        actor: &Actor,
    ) -> Result<bool, RepositoryError> {
        let result = self
            .inner
            .put_preferences(preferences, expected_version, actor)
            .await;
        // Also after a lost race: the next load must see the write that came first.
        self.cache.invalidate();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_that_straddles_an_invalidation_is_not_kept() {
        let cache = DefaultsCache::new(Duration::from_secs(60));
        let Err(generation) = cache.lookup() else {
            panic!("an empty cache has nothing");
        };
        cache.invalidate();
        cache.keep(generation, &Arc::default());
        assert!(cache.lookup().is_err());
    }

    #[test]
    fn a_kept_layer_is_served_until_invalidated() {
        let cache = DefaultsCache::new(Duration::from_secs(60));
        let generation = cache.lookup().unwrap_err();
        cache.keep(generation, &Arc::default());
        assert!(cache.lookup().is_ok());
        cache.invalidate();
        assert!(cache.lookup().is_err());
    }

    #[test]
    fn a_layer_older_than_the_ttl_is_loaded_again() {
        let cache = DefaultsCache::new(Duration::ZERO);
        let generation = cache.lookup().unwrap_err();
        cache.keep(generation, &Arc::default());
        assert!(cache.lookup().is_err());
    }
}
