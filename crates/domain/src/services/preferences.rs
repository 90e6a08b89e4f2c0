//! The preferences use cases: read the effective preferences (every field resolved across
//! builtin, deployment and user, with its source), replace and merge-patch the user layer,
//! and field updates. The user layer stores only what the user set.

use std::{collections::BTreeSet, sync::Arc};

use serde_json::{Value, json};
use time::OffsetDateTime;

use super::{
    defaults::DeploymentSource,
    history::{HistoryError, HistorySource, NotRestorable},
};
use crate::{
    audit::{Actor, AuditEntry},
    defaults::DeploymentDefaults,
    devices::DeviceId,
    error::{FieldError, RepositoryError, ValidationErrors},
    history::{ChangeOrigin, HistoryPage, HistoryTarget},
    ids::UserId,
    ports::{
        AuditLog, DefaultsRepository, DeviceSettingsRepository, HistoryRepository,
        PreferencesRepository, PreferencesWriteError, SettingWriteError,
    },
    preferences::{
        Channel, NotificationPrefs, PreferenceField, PreferenceOverrides, Preferences,
        PrivacyPrefs, ResolvedPreferences, StoredPreferences, Theme, changed_enforced_field,
        resolve_preferences,
    },
    settings::{Precondition, QuotaExceeded, UserQuota},
};

/// How often a read-modify-write without a client precondition retries a lost race.
const MAX_ATTEMPTS: usize = 3;

/// Why preferences could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PreferencesError {
    /// Every problem with the input.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// The client's precondition did not hold.
    #[error("the preferences were changed concurrently (current version {current})")]
    VersionConflict {
        /// The version now stored.
        current: i64,
    },
    /// The field is enforced by the deployment: the user's value stays as stored.
    #[error("the field {} is enforced by the deployment", field.as_str())]
    EnforcedByDeployment {
        /// The field.
        field: PreferenceField,
    },
    /// A device's first override would take the user over their devices.
    #[error("{0}")]
    QuotaExceeded(QuotaExceeded),
    /// The user does not exist (external provisioning).
    #[error("the user does not exist")]
    UserNotFound,
    /// A restore named a version that holds no preferences to write again.
    #[error(transparent)]
    NotRestorable(NotRestorable),
    /// The store or the audit log failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

impl From<PreferencesWriteError> for PreferencesError {
    fn from(e: PreferencesWriteError) -> Self {
        match e {
            PreferencesWriteError::VersionConflict { current } => Self::VersionConflict { current },
            PreferencesWriteError::UserNotFound => Self::UserNotFound,
            PreferencesWriteError::Repository(r) => Self::Repository(r),
        }
    }
}

impl From<ValidationErrors> for PreferencesError {
    fn from(e: ValidationErrors) -> Self {
        Self::Validation(e)
    }
}

/// A user's preferences as the API shows them: the values in effect, where each comes from,
/// which the deployment enforces, and the user layer's version (the write precondition).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EffectivePreferences {
    /// Owner.
    pub user_id: UserId,
    /// The values in effect and the layer of each.
    pub resolved: ResolvedPreferences,
    /// The fields the deployment enforces.
    pub enforced: BTreeSet<PreferenceField>,
    /// The version of the user layer (0: nothing stored).
    pub version: i64,
    /// The version of the deployment's preferences (0: never written): with `version`, it
    /// tells whether a cached representation is still current.
    pub deployment_version: i64,
    /// First write of the user layer, when stored.
    pub created_at: Option<OffsetDateTime>,
    /// Last change of the user layer, when stored.
    pub updated_at: Option<OffsetDateTime>,
}

/// How a write treats an enforced field it leaves out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Omitted {
    /// A full replace: an omitted enforced field keeps what is stored (the user cannot
    /// change it, not even back to "inherit").
    KeepsStored,
    /// A merge patch: only the members sent count.
    Untouched,
}

/// The preferences use cases.
pub struct PreferencesService<P, A> {
    repo: P,
    audit: A,
    /// The device layer and the user's quota (its devices); `None`: no device layer.
    devices: Option<(Arc<dyn DeviceSettingsRepository>, UserQuota)>,
    /// The deployment layer (none: every field inherits the builtin default).
    defaults: DeploymentSource,
    /// The kept versions of the user layer.
    history: HistorySource,
}

impl<P, A> PreferencesService<P, A>
where
    P: PreferencesRepository,
    A: AuditLog,
{
    /// Builds the service from its ports.
    pub fn new(repo: P, audit: A) -> Self {
        Self {
            repo,
            audit,
            devices: None,
            defaults: DeploymentSource::default(),
            history: HistorySource::default(),
        }
    }

    /// Reads history (and restores from it) through `history`.
    #[must_use]
    pub fn with_history(mut self, history: Arc<dyn HistoryRepository>) -> Self {
        self.history = HistorySource::new(history);
        self
    }

    /// The kept versions of the user layer (the fields it set after each change), newest
    /// first.
    ///
    /// # Errors
    /// `Validation` for a limit out of range; `Repository`.
    pub async fn history(
        &self,
        user: UserId,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Result<HistoryPage, HistoryError> {
        self.history
            .page(user, &HistoryTarget::preferences(None), before, limit)
            .await
    }

    /// Writes the user layer kept at `version` again, as a new version (recorded as
    /// `restored`): the fields it set are set, every other field inherits. Fields the
    /// deployment now enforces keep what is stored, as for a full replace.
    ///
    /// # Errors
    /// `NotRestorable`, or as [`Self::replace`] (the kept document obeys today's rules).
    pub async fn restore(
        &self,
        user: UserId,
        version: i64,
        expected: Precondition,
    ) -> Result<EffectivePreferences, PreferencesError> {
        let entry = self
            .history
            .restorable(user, &HistoryTarget::preferences(None), version)
            .await?
            .map_err(PreferencesError::NotRestorable)?;
        let document = entry.value.unwrap_or_default();
        let next = PreferenceOverrides::from_document(&document)?;
        self.modify(
            user,
            expected,
            Omitted::KeepsStored,
            ChangeOrigin::Restore,
            |_, _| Ok(next.clone()),
        )
        .await
    }

    /// Stores the devices' overrides of the preferences in `devices`, within `quota`.
    #[must_use]
    pub fn with_devices(
        mut self,
        devices: Arc<dyn DeviceSettingsRepository>,
        quota: UserQuota,
    ) -> Self {
        self.devices = Some((devices, quota));
        self
    }

    /// What `device` overrides of the user's preferences (nothing, at version 0, when it
    /// overrides nothing).
    ///
    /// # Errors
    /// `Validation` for a malformed device id, or `Repository`.
    pub async fn device_preferences(
        &self,
        user: UserId,
        device: &str,
    ) -> Result<StoredPreferences, PreferencesError> {
        let device = parse_device(device)?;
        let (devices, _) = self.device_store()?;
        Ok(devices
            .preferences(user, &device)
            .await?
            .unwrap_or_else(|| StoredPreferences::defaults(user)))
    }

    /// Applies an RFC 7396 merge patch to what `device` overrides: a value overrides a field
    /// on that device, `null` removes the override. A field the deployment enforces cannot
    /// be overridden (sending the enforced value itself is no change).
    ///
    /// # Errors
    /// `Validation`, `EnforcedByDeployment`, `VersionConflict`, `QuotaExceeded` (the user's
    /// devices), `UserNotFound`, `Repository`.
    pub async fn patch_device(
        &self,
        user: UserId,
        device: &str,
        patch: &Value,
        expected: Precondition,
    ) -> Result<StoredPreferences, PreferencesError> {
        let device = parse_device(device)?;
        let (devices, quota) = self.device_store()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let deployment = self.defaults.load().await?;
            let own = self.stored(user).await?.overrides;
            let current = devices
                .preferences(user, &device)
                .await?
                .unwrap_or_else(|| StoredPreferences::defaults(user));
            let seen = resolve_preferences(&deployment.preferences, &own, Some(&current.overrides))
                .preferences;
            let mut next = current.overrides.merge_patch(patch, &seen)?;
            for field in &deployment.preferences.enforced {
                if next.matches(*field, &seen) {
                    next.take_field(*field, &current.overrides);
                }
            }
            if let Some(field) =
                changed_enforced_field(&deployment.preferences, &current.overrides, &next)
            {
                return Err(PreferencesError::EnforcedByDeployment { field });
            }
            // The patch was merged into the version read: the write is conditioned on it, so
            // a concurrent patch is never overwritten; without a client precondition a lost
            // race is tried again on fresh data.
            let result = self
                .put_device(user, &device, &next, &expected, current.version, *quota)
                .await;
            match result {
                Err(PreferencesError::VersionConflict { .. })
                    if matches!(expected, Precondition::Any) && attempt < MAX_ATTEMPTS => {}
                result => return result,
            }
        }
    }

    /// Removes every override of the preferences `device` holds.
    ///
    /// # Errors
    /// As [`Self::patch_device`].
    pub async fn delete_device(
        &self,
        user: UserId,
        device: &str,
        expected: Precondition,
    ) -> Result<StoredPreferences, PreferencesError> {
        let device = parse_device(device)?;
        let (devices, quota) = self.device_store()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = devices.preferences(user, &device).await?;
            let version = current.map_or(0, |c| c.version);
            let result = self
                .put_device(
                    user,
                    &device,
                    &PreferenceOverrides::default(),
                    &expected,
                    version,
                    *quota,
                )
                .await;
            match result {
                Err(PreferencesError::VersionConflict { .. })
                    if matches!(expected, Precondition::Any) && attempt < MAX_ATTEMPTS => {}
                result => return result,
            }
        }
    }

    fn device_store(
        &self,
    ) -> Result<&(Arc<dyn DeviceSettingsRepository>, UserQuota), RepositoryError> {
        self.devices.as_ref().ok_or_else(|| {
            RepositoryError::Unknown(anyhow::anyhow!(
                "no store of the device layer is configured"
            ))
        })
    }

    /// Writes a device's overrides computed from version `current`: the client's condition is
    /// checked against `current`, and the statement is conditioned on `current` itself.
    async fn put_device(
        &self,
        user: UserId,
        device: &DeviceId,
        next: &PreferenceOverrides,
        expected: &Precondition,
        current: i64,
        quota: UserQuota,
    ) -> Result<StoredPreferences, PreferencesError> {
        let (devices, _) = self.device_store()?;
        let holds = match expected {
            Precondition::Any => true,
            Precondition::Absent => current == 0,
            Precondition::Exists => current != 0,
            other => other.accepts_version(current),
        };
        if !holds {
            return Err(PreferencesError::VersionConflict { current });
        }
        // Always the version the write was computed from, never "whatever is stored".
        let precondition = if current == 0 {
            Precondition::Absent
        } else {
            Precondition::Version(current)
        };
        match devices
            .put_preferences(user, device, next, precondition, quota)
            .await
        {
            Ok(stored) => Ok(stored.unwrap_or_else(|| StoredPreferences::defaults(user))),
            Err(SettingWriteError::VersionConflict { current }) => {
                Err(PreferencesError::VersionConflict {
                    current: current.unwrap_or(0),
                })
            }
            Err(SettingWriteError::QuotaExceeded(q)) => Err(PreferencesError::QuotaExceeded(q)),
            Err(SettingWriteError::UserNotFound) => Err(PreferencesError::UserNotFound),
            Err(SettingWriteError::Repository(r)) => Err(r.into()),
        }
    }

    /// Reads the deployment layer from `defaults`.
    #[must_use]
    pub fn with_defaults(mut self, defaults: Arc<dyn DefaultsRepository>) -> Self {
        self.defaults = DeploymentSource::new(defaults);
        self
    }

    async fn stored(&self, user: UserId) -> Result<StoredPreferences, RepositoryError> {
        Ok(self
            .repo
            .get(user)
            .await?
            .unwrap_or_else(|| StoredPreferences::defaults(user)))
    }

    /// The user's effective preferences: builtin, deployment and user layers resolved, with
    /// the source of every field (GetPreferences).
    ///
    /// # Errors
    /// `Repository` when the store fails.
    pub async fn get(&self, user: UserId) -> Result<EffectivePreferences, PreferencesError> {
        let deployment = self.defaults.load().await?;
        let stored = self.stored(user).await?;
        Ok(effective(&deployment, stored))
    }

    /// An admin's read of another user's preferences, audited first.
    ///
    /// # Errors
    /// `Repository` when the store or the audit log fails.
    pub async fn get_as_admin(
        &self,
        actor: &Actor,
        subject: UserId,
    ) -> Result<EffectivePreferences, PreferencesError> {
        self.audit
            .record(AuditEntry::admin_read(actor, subject))
            .await?;
        self.get(subject).await
    }

    /// Full replace of the user layer (`PUT`): the fields of the document are the user's,
    /// every field omitted (or `null`) inherits again.
    ///
    /// # Errors
    /// `Validation` listing every bad field, `EnforcedByDeployment`, `VersionConflict`,
    /// `UserNotFound`, `Repository`.
    pub async fn replace(
        &self,
        user: UserId,
        document: &Value,
        expected: Precondition,
    ) -> Result<EffectivePreferences, PreferencesError> {
        let next = PreferenceOverrides::from_document(document)?;
        self.modify(
            user,
            expected,
            Omitted::KeepsStored,
            ChangeOrigin::User,
            |_, _| Ok(next.clone()),
        )
        .await
    }

    /// Applies an RFC 7396 merge patch to the user layer (`PATCH`); `null` makes a field
    /// inherit again.
    ///
    /// # Errors
    /// As [`Self::replace`].
    pub async fn patch(
        &self,
        user: UserId,
        patch: &Value,
        expected: Precondition,
    ) -> Result<EffectivePreferences, PreferencesError> {
        self.modify(
            user,
            expected,
            Omitted::Untouched,
            ChangeOrigin::User,
            |current, seen| current.merge_patch(patch, seen),
        )
        .await
    }

    /// Sets the theme (UpdateTheme).
    ///
    /// # Errors
    /// As [`Self::replace`].
    pub async fn update_theme(
        &self,
        user: UserId,
        theme: &str,
    ) -> Result<EffectivePreferences, PreferencesError> {
        let theme = Theme::parse(theme, "theme").map_err(ValidationErrors::single)?;
        self.set_fields(user, json!({"theme": theme.as_str()}))
            .await
    }

    /// Sets the display language and, when given, the content languages (UpdateLanguage).
    ///
    /// # Errors
    /// As [`Self::replace`].
    pub async fn update_language(
        &self,
        user: UserId,
        display_language: &str,
        content_language: Option<&str>,
    ) -> Result<EffectivePreferences, PreferencesError> {
        let mut fields = json!({"display_language": display_language});
        if let Some(content) = content_language {
            fields["content_language"] = json!(content);
        }
        self.set_fields(user, fields).await
    }

    /// Replaces one channel's notification settings (UpdateNotifications).
    ///
    /// # Errors
    /// As [`Self::replace`].
    pub async fn update_notifications(
        &self,
        user: UserId,
        channel: Channel,
        notifications: &Value,
    ) -> Result<EffectivePreferences, PreferencesError> {
        NotificationPrefs::parse(notifications, channel)?;
        self.set_fields(user, json!({channel.field(): notifications}))
            .await
    }

    /// Replaces the privacy settings (UpdatePrivacy).
    ///
    /// # Errors
    /// As [`Self::replace`] (without `Validation`: the input is already typed).
    pub async fn update_privacy(
        &self,
        user: UserId,
        privacy: PrivacyPrefs,
    ) -> Result<EffectivePreferences, PreferencesError> {
        let fields = json!({
            "profile_visibility": privacy.profile_visibility.as_str(),
            "show_email": privacy.show_email,
            "show_activity": privacy.show_activity,
        });
        self.set_fields(user, fields).await
    }

    /// Creates the user's (empty) preferences row for a new user: every field inherits; a
    /// user who already has preferences keeps them (InitializeDefaults).
    ///
    /// # Errors
    /// `UserNotFound` or `Repository`.
    pub async fn initialize_defaults(
        &self,
        user: UserId,
    ) -> Result<EffectivePreferences, PreferencesError> {
        match self
            .repo
            .upsert(
                user,
                &PreferenceOverrides::default(),
                Precondition::Absent,
                ChangeOrigin::User,
            )
            .await
        {
            Ok(_) | Err(PreferencesWriteError::VersionConflict { .. }) => self.get(user).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Sets the members of `fields` (whole values, each validated) in the user layer.
    async fn set_fields(
        &self,
        user: UserId,
        fields: Value,
    ) -> Result<EffectivePreferences, PreferencesError> {
        let set = PreferenceOverrides::from_document(&fields)?;
        self.modify(
            user,
            Precondition::Any,
            Omitted::Untouched,
            ChangeOrigin::User,
            |current, _| {
                let mut next = current.clone();
                for field in set.fields() {
                    next.take_field(field, &set);
                }
                Ok(next)
            },
        )
        .await
    }

    /// Read-modify-write of the user layer with optimistic concurrency. With a client
    /// precondition the stored version must match it; without one, a lost race is retried on
    /// fresh data. A write may not change an enforced field; sending the enforced value
    /// itself (as a client echoing a read does) is no change.
    async fn modify<F>(
        &self,
        user: UserId,
        expected: Precondition,
        omitted: Omitted,
        origin: ChangeOrigin,
        change: F,
    ) -> Result<EffectivePreferences, PreferencesError>
    where
        F: Fn(&PreferenceOverrides, &Preferences) -> Result<PreferenceOverrides, ValidationErrors>
            + Send
            + Sync,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let deployment = self.defaults.load().await?;
            let current = self.stored(user).await?;
            let precondition = match expected {
                Precondition::Version(v) if v != current.version => {
                    return Err(PreferencesError::VersionConflict {
                        current: current.version,
                    });
                }
                Precondition::VersionIn(ref versions) if !versions.contains(&current.version) => {
                    return Err(PreferencesError::VersionConflict {
                        current: current.version,
                    });
                }
                Precondition::Absent if current.version != 0 => {
                    return Err(PreferencesError::VersionConflict {
                        current: current.version,
                    });
                }
                _ => Precondition::Version(current.version),
            };
            let seen =
                resolve_preferences(&deployment.preferences, &current.overrides, None).preferences;
            let mut next = change(&current.overrides, &seen)?;
            for field in &deployment.preferences.enforced {
                let echoed = next.matches(*field, &seen);
                let left_out = omitted == Omitted::KeepsStored && !next.has(*field);
                if echoed || left_out {
                    next.take_field(*field, &current.overrides);
                }
            }
            if let Some(field) =
                changed_enforced_field(&deployment.preferences, &current.overrides, &next)
            {
                return Err(PreferencesError::EnforcedByDeployment { field });
            }
            match self.repo.upsert(user, &next, precondition, origin).await {
                Err(PreferencesWriteError::VersionConflict { .. })
                    if matches!(expected, Precondition::Any | Precondition::Exists)
                        && attempt < MAX_ATTEMPTS => {}
                result => return Ok(effective(&deployment, result?)),
            }
        }
    }
}

/// The user layer resolved over the deployment layer.
fn effective(deployment: &DeploymentDefaults, stored: StoredPreferences) -> EffectivePreferences {
    EffectivePreferences {
        user_id: stored.user_id,
        resolved: resolve_preferences(&deployment.preferences, &stored.overrides, None),
        enforced: deployment.preferences.enforced.clone(),
        version: stored.version,
        deployment_version: deployment.preferences_version,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    }
}

fn parse_device(raw: &str) -> Result<DeviceId, PreferencesError> {
    DeviceId::parse(raw).map_err(|e| PreferencesError::Validation(ValidationErrors::single(e)))
}

impl From<FieldError> for PreferencesError {
    fn from(e: FieldError) -> Self {
        Self::Validation(ValidationErrors::single(e))
    }
}
