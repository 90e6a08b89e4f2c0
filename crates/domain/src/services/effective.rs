//! The effective view: everything a client reads at start-up in one answer — every
//! preference field and every setting some layer has, each with its value in effect and the
//! layer it comes from. Secrets are withheld.

use std::{collections::BTreeMap, sync::Arc};

use super::defaults::DeploymentSource;
use crate::{
    audit::{Actor, AuditEntry},
    defaults::{EffectiveSetting, effective_setting, effective_settings},
    devices::DeviceId,
    error::RepositoryError,
    ids::UserId,
    ports::{
        AuditLog, DefaultsRepository, DeviceSettingsRepository, PreferencesRepository,
        SettingsRepository,
    },
    preferences::{ResolvedPreferences, resolve_preferences},
    registry::KeyRegistry,
    settings::{Page, Setting, SettingKey},
};

/// Everything in effect for one user.
#[derive(Clone, Debug, PartialEq)]
pub struct EffectiveView {
    /// Every preference field and its source.
    pub preferences: ResolvedPreferences,
    /// Every setting some layer has, by key.
    pub settings: BTreeMap<String, EffectiveSetting>,
}

/// Builds effective views from the layers' stores.
pub struct EffectiveService<R, P, A> {
    settings: R,
    devices: Arc<dyn DeviceSettingsRepository>,
    preferences: P,
    audit: A,
    registry: Arc<KeyRegistry>,
    defaults: DeploymentSource,
}

impl<R, P, A> EffectiveService<R, P, A>
where
    R: SettingsRepository,
    P: PreferencesRepository,
    A: AuditLog,
{
    /// A service over the user layer's stores, the registry (the builtin layer) and the
    /// deployment layer.
    pub fn new(
        settings: R,
        devices: Arc<dyn DeviceSettingsRepository>,
        preferences: P,
        audit: A,
        registry: Arc<KeyRegistry>,
        defaults: Arc<dyn DefaultsRepository>,
    ) -> Self {
        Self {
            settings,
            devices,
            preferences,
            audit,
            registry,
            defaults: DeploymentSource::new(defaults),
        }
    }

    /// The user's effective view, on `device` when one is named.
    ///
    /// # Errors
    /// When a store fails.
    pub async fn view(
        &self,
        user: UserId,
        device: Option<&DeviceId>,
    ) -> Result<EffectiveView, RepositoryError> {
        let deployment = self.defaults.load().await?;
        let overrides = self
            .preferences
            .get(user)
            .await?
            .map(|stored| stored.overrides)
            .unwrap_or_default();
        let own = self.all_settings(user).await?;
        let (on_device, device_preferences) = match device {
            Some(device) => (
                self.devices.list(user, device).await?,
                self.devices
                    .preferences(user, device)
                    .await?
                    .map(|stored| stored.overrides),
            ),
            None => (Vec::new(), None),
        };
        Ok(EffectiveView {
            preferences: resolve_preferences(
                &deployment.preferences,
                &overrides,
                device_preferences.as_ref(),
            ),
            settings: effective_settings(&self.registry, &deployment, own, on_device),
        })
    }

    /// The value of one key in effect for `user` (on `device` when one is named); `None` when
    /// no layer has one.
    ///
    /// # Errors
    /// When a store fails.
    pub async fn setting(
        &self,
        user: UserId,
        key: &SettingKey,
        device: Option<&DeviceId>,
    ) -> Result<Option<EffectiveSetting>, RepositoryError> {
        let deployment = self.defaults.load().await?;
        let own = self.settings.get(user, key).await?;
        let on_device = match device {
            Some(device) => self.devices.get(user, device, key).await?,
            None => None,
        };
        Ok(effective_setting(
            key,
            &self.registry,
            &deployment,
            own,
            on_device,
        ))
    }

    /// Support's read of any user's effective view, audited first.
    ///
    /// # Errors
    /// When the audit log or a store fails (nothing is disclosed without the record).
    pub async fn view_as_admin(
        &self,
        actor: &Actor,
        subject: UserId,
        device: Option<&DeviceId>,
    ) -> Result<EffectiveView, RepositoryError> {
        self.audit
            .record(AuditEntry::admin_read(actor, subject))
            .await?;
        self.view(subject, device).await
    }

    /// Every setting of the user layer, page by page (the store's listing is bounded).
    async fn all_settings(&self, user: UserId) -> Result<Vec<Setting>, RepositoryError> {
        let mut all: Vec<Setting> = Vec::new();
        loop {
            let after = all.last().map(|s| s.key.clone());
            let page = self
                .settings
                .list(
                    user,
                    None,
                    Page {
                        after,
                        limit: Page::MAX_LIMIT,
                    },
                )
                .await?;
            let last_page = page.len() < Page::MAX_LIMIT as usize;
            all.extend(page);
            if last_page {
                return Ok(all);
            }
        }
    }
}
