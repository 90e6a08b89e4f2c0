//! Rendered effective views (adapter-http's `ViewCache` port), valid while nothing they were
//! built from has changed: the stamp of a user is the sum of the invalidation counters of
//! their settings, their preferences and the deployment layer. Every counter only grows, so
//! the sum changes with any invalidation (local write, change feed, flush), and a view
//! stored under an older stamp is never served: no invalidation path needs to know this
//! cache exists.

use std::{sync::Arc, time::Duration};

use adapter_http::views::{RenderedView, ViewCache};
use async_trait::async_trait;
use domain::UserId;
use moka::future::Cache;

use super::{
    budget::{Budget, ENTRY_OVERHEAD},
    defaults::DefaultsCache,
    preferences::PreferencesCache,
    settings::SettingsCache,
};

/// A view and the stamp it was built under.
#[derive(Clone)]
struct Stamped {
    stamp: u64,
    view: Arc<RenderedView>,
}

/// The rendered views of this instance.
pub struct RenderedViews {
    settings: Arc<SettingsCache>,
    preferences: Arc<PreferencesCache>,
    defaults: Arc<DefaultsCache>,
    views: Cache<(UserId, Option<String>), Stamped>,
    budget: Budget,
}

impl RenderedViews {
    /// Views built from the caches' data, each living at most `ttl`, held to `budget`.
    pub fn new(
        settings: Arc<SettingsCache>,
        preferences: Arc<PreferencesCache>,
        defaults: Arc<DefaultsCache>,
        ttl: Duration,
        budget: Budget,
    ) -> Self {
        let views = Cache::builder()
            .time_to_live(ttl)
            .max_capacity(budget.max_bytes)
            .weigher(|(_, device): &(UserId, Option<String>), entry: &Stamped| {
                u32::try_from(weight(device.as_deref(), &entry.view)).unwrap_or(u32::MAX)
            })
            .build();
        Self {
            settings,
            preferences,
            defaults,
            views,
            budget,
        }
    }
}

/// What a stored view pins: the entry's overhead, the device's name, the body and the tag.
fn weight(device: Option<&str>, view: &RenderedView) -> usize {
    ENTRY_OVERHEAD + device.map_or(0, str::len) + view.body.len() + view.tag.len()
}

#[async_trait]
impl ViewCache for RenderedViews {
    fn stamp(&self, user: UserId) -> u64 {
        self.settings
            .generation(user)
            .wrapping_add(self.preferences.generation(user))
            .wrapping_add(self.defaults.generation())
    }

    async fn get(&self, user: UserId, device: Option<&str>) -> Option<Arc<RenderedView>> {
        let entry = self.views.get(&(user, device.map(str::to_owned))).await?;
        (entry.stamp == self.stamp(user)).then_some(entry.view)
    }

    async fn put(&self, user: UserId, device: Option<&str>, stamp: u64, view: Arc<RenderedView>) {
        if self.budget.charge(weight(device, &view)).is_none() {
            return;
        }
        self.views
            .insert((user, device.map(str::to_owned)), Stamped { stamp, view })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use prometheus::IntCounter;

    use super::*;
    use crate::cache::{CacheCounters, SettingsBudgets};

    fn counters() -> CacheCounters {
        CacheCounters {
            hits: IntCounter::new("hits", "hits").unwrap(),
            misses: IntCounter::new("misses", "misses").unwrap(),
        }
    }

    fn views() -> (RenderedViews, Arc<SettingsCache>, Arc<DefaultsCache>) {
        let ttl = Duration::from_secs(60);
        let budget = Budget::bytes(1 << 20);
        let settings = Arc::new(SettingsCache::new(
            ttl,
            SettingsBudgets {
                settings: budget,
                listings: budget,
            },
            counters(),
            counters(),
        ));
        let preferences = Arc::new(PreferencesCache::new(ttl, budget, counters()));
        let defaults = Arc::new(DefaultsCache::new(ttl));
        let views = RenderedViews::new(
            Arc::clone(&settings),
            preferences,
            Arc::clone(&defaults),
            ttl,
            budget,
        );
        (views, settings, defaults)
    }

    fn view() -> Arc<RenderedView> {
        Arc::new(RenderedView {
            body: b"{}".to_vec(),
            tag: "t".to_owned(),
        })
    }

    #[tokio::test]
    async fn a_view_is_served_until_anything_it_depends_on_changes() {
        let (views, settings, defaults) = views();
        let user = UserId::new(Uuid::new_v4());
        views.put(user, None, views.stamp(user), view()).await;
        assert!(views.get(user, None).await.is_some());
        settings.user_changed(user);
        assert!(views.get(user, None).await.is_none());

        views.put(user, None, views.stamp(user), view()).await;
        defaults.invalidate();
        assert!(views.get(user, None).await.is_none());
    }

    #[tokio::test]
    async fn a_view_built_across_an_invalidation_is_never_served() {
        let (views, settings, _) = views();
        let user = UserId::new(Uuid::new_v4());
        let stamp = views.stamp(user);
        settings.user_changed(user);
        views.put(user, None, stamp, view()).await;
        assert!(views.get(user, None).await.is_none());
    }

    #[tokio::test]
    async fn each_device_has_its_own_view() {
        let (views, _, _) = views();
        let user = UserId::new(Uuid::new_v4());
        views.put(user, Some("tv"), views.stamp(user), view()).await;
        assert!(views.get(user, Some("tv")).await.is_some());
        assert!(views.get(user, None).await.is_none());
    }
}
