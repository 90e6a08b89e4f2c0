//! `InvalidatingDeviceSettings`: the device layer's store, unchanged but for one thing: every
//! write (of a device's settings or preferences) also counts as a change of the user's
//! settings for the caches, so the rendered views
//! stamped with the user's settings generation (`views.rs`) are stale at once on this
//! instance, as the change feed makes them on the others. Device overrides themselves are not
//! cached.

use std::sync::Arc;

use async_trait::async_trait;
use domain::{
    RepositoryError, UserId,
    devices::{DeviceId, DeviceSummary},
    ports::{DeviceSettingsRepository, SettingDeleteError, SettingWriteError},
    preferences::{PreferenceOverrides, StoredPreferences},
    settings::{Precondition, Setting, SettingKey, SettingWrite, UpsertOutcome, UserQuota},
};

use super::settings::SettingsCache;

/// The device store `R`, telling `cache` of every write.
pub struct InvalidatingDeviceSettings<R> {
    inner: R,
    cache: Arc<SettingsCache>,
}

impl<R> InvalidatingDeviceSettings<R> {
    /// `inner`, whose writes invalidate `user`'s entries of `cache`.
    pub fn new(inner: R, cache: Arc<SettingsCache>) -> Self {
        Self { inner, cache }
    }
}

#[async_trait]
impl<R: DeviceSettingsRepository> DeviceSettingsRepository for InvalidatingDeviceSettings<R> {
    async fn get(
        &self,
        user: UserId,
        device: &DeviceId,
        key: &SettingKey,
    ) -> Result<Option<Setting>, RepositoryError> {
        self.inner.get(user, device, key).await
    }

    async fn list(&self, user: UserId, device: &DeviceId) -> Result<Vec<Setting>, RepositoryError> {
        self.inner.list(user, device).await
    }

    async fn upsert(
        &self,
        user: UserId,
        device: &DeviceId,
        write: &SettingWrite,
        expected: Precondition,
        quota: UserQuota,
    ) -> Result<UpsertOutcome, SettingWriteError> {
        let result = self
            .inner
            .upsert(user, device, write, expected, quota)
            .await;
        self.cache.user_changed(user);
        result
    }

    async fn delete(
        &self,
        user: UserId,
        device: &DeviceId,
        key: &SettingKey,
        expected: Precondition,
    ) -> Result<(), SettingDeleteError> {
        let result = self.inner.delete(user, device, key, expected).await;
        self.cache.user_changed(user);
        result
    }

    async fn devices(&self, user: UserId) -> Result<Vec<DeviceSummary>, RepositoryError> {
        self.inner.devices(user).await
    }

    async fn delete_device(
        &self,
        user: UserId,
        device: &DeviceId,
    ) -> Result<bool, RepositoryError> {
        let result = self.inner.delete_device(user, device).await;
        self.cache.user_changed(user);
        result
    }

    async fn preferences(
        &self,
        user: UserId,
        device: &DeviceId,
    ) -> Result<Option<StoredPreferences>, RepositoryError> {
        self.inner.preferences(user, device).await
    }

    async fn put_preferences(
        &self,
        user: UserId,
        device: &DeviceId,
        overrides: &PreferenceOverrides,
        expected: Precondition,
        quota: UserQuota,
    ) -> Result<Option<StoredPreferences>, SettingWriteError> {
        let result = self
            .inner
            .put_preferences(user, device, overrides, expected, quota)
            .await;
        self.cache.user_changed(user);
        result
    }
}
