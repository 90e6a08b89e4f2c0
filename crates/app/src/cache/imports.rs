//! `InvalidatingImport`: the import store, whose every import (whatever its outcome) drops the
//! user's cached settings, listings and preferences on this instance at once, as the change
//! feed drops them on the others: an import writes around the cached repositories.

use std::sync::Arc;

use async_trait::async_trait;
use domain::{
    UserId,
    portability::ImportChanges,
    ports::{ImportRepository, SettingWriteError},
    settings::UserQuota,
};

use super::{preferences::PreferencesCache, settings::SettingsCache};

/// The import store `R`, telling the caches of every import.
pub struct InvalidatingImport<R> {
    inner: R,
    settings: Option<Arc<SettingsCache>>,
    preferences: Option<Arc<PreferencesCache>>,
}

impl<R> InvalidatingImport<R> {
    /// `inner`, whose imports invalidate the user's entries of the caches that are on.
    pub fn new(
        inner: R,
        settings: Option<Arc<SettingsCache>>,
        preferences: Option<Arc<PreferencesCache>>,
    ) -> Self {
        Self {
            inner,
            settings,
            preferences,
        }
    }
}

#[async_trait]
impl<R: ImportRepository> ImportRepository for InvalidatingImport<R> {
    async fn apply(
        &self,
        user: UserId,
        changes: &ImportChanges,
        quota: UserQuota,
    ) -> Result<(), SettingWriteError> {
        let result = self.inner.apply(user, changes, quota).await;
        if let Some(settings) = &self.settings {
            settings.user_changed(user);
        }
        if let Some(preferences) = &self.preferences {
            preferences.preferences_changed(user).await;
        }
        result
    }
}
