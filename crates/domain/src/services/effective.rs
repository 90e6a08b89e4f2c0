//! The effective view: everything a client reads at start-up in one answer — every
//! preference field and every setting some layer has, each with its value in effect and the
//! layer it comes from. Secrets are withheld.

use std::{collections::BTreeMap, sync::Arc};

use super::defaults::DeploymentSource;
use crate::{
    audit::{Actor, AuditEntry},
    defaults::{EffectiveSetting, effective_settings},
    error::RepositoryError,
    ids::UserId,
    ports::{AuditLog, DefaultsRepository, PreferencesRepository, SettingsRepository},
    preferences::{ResolvedPreferences, resolve_preferences},
    registry::KeyRegistry,
    settings::{Page, Setting},
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
        preferences: P,
        audit: A,
        registry: Arc<KeyRegistry>,
        defaults: Arc<dyn DefaultsRepository>,
    ) -> Self {
        Self {
            settings,
            preferences,
            audit,
            registry,
            defaults: DeploymentSource::new(defaults),
        }
    }

    /// The user's effective view.
    ///
    /// # Errors
    /// When a store fails.
    pub async fn view(&self, user: UserId) -> Result<EffectiveView, RepositoryError> {
        let deployment = self.defaults.load().await?;
        let overrides = self
            .preferences
            .get(user)
            .await?
            .map(|stored| stored.overrides)
            .unwrap_or_default();
        let own = self.all_settings(user).await?;
        Ok(EffectiveView {
            preferences: resolve_preferences(&deployment.preferences, &overrides, None),
            settings: effective_settings(&self.registry, &deployment, own, Vec::new()),
        })
    }

    /// Support's read of any user's effective view, audited first.
    ///
    /// # Errors
    /// When the audit log or a store fails (nothing is disclosed without the record).
    pub async fn view_as_admin(
        &self,
        actor: &Actor,
        subject: UserId,
    ) -> Result<EffectiveView, RepositoryError> {
        self.audit
            .record(AuditEntry::admin_read(actor, subject))
            .await?;
        self.view(subject).await
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
