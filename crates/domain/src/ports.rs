//! Ports: the traits the services need from the outside world. Adapters implement them;
//! unit tests use their mockall mocks (`MockSettingsRepository`, ...).

use async_trait::async_trait;
use zeroize::Zeroizing;

use std::sync::Arc;

use crate::{
    audit::{Actor, AuditEntry, AuditRecord},
    defaults::{DeploymentDefaults, DeploymentSetting},
    devices::{DeviceId, DeviceSummary},
    error::RepositoryError,
    history::{ChangeOrigin, HistoryEntry, HistoryTarget},
    ids::UserId,
    portability::ImportChanges,
    preferences::{DeploymentPreferences, PreferenceOverrides, StoredPreferences},
    secrets::{CipherError, Envelope},
    settings::{
        Category, Page, Precondition, QuotaExceeded, Setting, SettingKey, SettingWrite,
        UpsertOutcome, UserQuota,
    },
};

/// Why a settings write was refused by the store.
#[derive(Debug, thiserror::Error)]
pub enum SettingWriteError {
    /// The row's version is not the expected one (or it exists when it must not).
    #[error("the setting was changed concurrently (current version {current:?})")]
    VersionConflict {
        /// The version now stored, `None` when the row is absent.
        current: Option<i64>,
    },
    /// The write would take the user over a per-user quota.
    #[error("{0}")]
    QuotaExceeded(QuotaExceeded),
    /// The user does not exist and users are provisioned externally.
    #[error("the user does not exist")]
    UserNotFound,
    /// The store failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Why a settings delete was refused by the store.
#[derive(Debug, thiserror::Error)]
pub enum SettingDeleteError {
    /// There is no such setting.
    #[error("the setting does not exist")]
    NotFound,
    /// The row's version is not the expected one.
    #[error("the setting was changed concurrently (current version {current})")]
    VersionConflict {
        /// The version now stored.
        current: i64,
    },
    /// The store failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Why a preferences write was refused by the store.
#[derive(Debug, thiserror::Error)]
pub enum PreferencesWriteError {
    /// The row's version is not the expected one.
    #[error("the preferences were changed concurrently (current version {current})")]
    VersionConflict {
        /// The version now stored (0 when no row exists).
        current: i64,
    },
    /// The user does not exist and users are provisioned externally.
    #[error("the user does not exist")]
    UserNotFound,
    /// The store failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Storage of the key/value settings (`shared.user_settings`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SettingsRepository: Send + Sync {
    /// One setting, if stored.
    async fn get(&self, user: UserId, key: &SettingKey)
    -> Result<Option<Setting>, RepositoryError>;

    /// At most `page.limit` of the user's settings ordered by key, with keys after
    /// `page.after`, optionally only one category.
    async fn list(
        &self,
        user: UserId,
        category: Option<Category>,
        page: Page,
    ) -> Result<Vec<Setting>, RepositoryError>;

    /// Inserts or updates one setting if `expected` holds and the user stays within `quota`
    /// (checked under the same lock as the write; a write that does not add to a figure
    /// already over its quota is allowed). A write that changes nothing leaves the row (and
    /// version) as is.
    async fn upsert(
        &self,
        user: UserId,
        write: &SettingWrite,
        expected: Precondition,
        quota: UserQuota,
    ) -> Result<UpsertOutcome, SettingWriteError>;

    /// Upserts every write in one transaction: all are stored or none.
    async fn upsert_many(
        &self,
        user: UserId,
        writes: &[SettingWrite],
        quota: UserQuota,
    ) -> Result<Vec<UpsertOutcome>, SettingWriteError>;

    /// Deletes one setting if `expected` holds; its history names `origin`.
    async fn delete(
        &self,
        user: UserId,
        key: &SettingKey,
        expected: Precondition,
        origin: ChangeOrigin,
    ) -> Result<(), SettingDeleteError>;

    /// How many settings the user has.
    async fn count(&self, user: UserId) -> Result<u64, RepositoryError>;
}

/// Storage of the device layer of settings (`shared.user_device_settings`): each device's
/// overrides of the user's settings. Never a secret. Its rows count against the user's quotas
/// together with the user's own settings.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeviceSettingsRepository: Send + Sync {
    /// The device's override of one key, if it has one.
    async fn get(
        &self,
        user: UserId,
        device: &DeviceId,
        key: &SettingKey,
    ) -> Result<Option<Setting>, RepositoryError>;

    /// Every override of the device, ordered by key.
    async fn list(&self, user: UserId, device: &DeviceId) -> Result<Vec<Setting>, RepositoryError>;

    /// Inserts or updates one override if `expected` holds and the user stays within `quota`
    /// (settings and bytes counted with the user's own settings, and devices), checked under
    /// the same lock as the user's own writes. A write that changes nothing leaves the row (and
    /// version) as is.
    async fn upsert(
        &self,
        user: UserId,
        device: &DeviceId,
        write: &SettingWrite,
        expected: Precondition,
        quota: UserQuota,
    ) -> Result<UpsertOutcome, SettingWriteError>;

    /// Deletes one override if `expected` holds.
    async fn delete(
        &self,
        user: UserId,
        device: &DeviceId,
        key: &SettingKey,
        expected: Precondition,
    ) -> Result<(), SettingDeleteError>;

    /// The user's devices that hold overrides, ordered by id.
    async fn devices(&self, user: UserId) -> Result<Vec<DeviceSummary>, RepositoryError>;

    /// Deletes every override of the device; whether it had any.
    async fn delete_device(&self, user: UserId, device: &DeviceId)
    -> Result<bool, RepositoryError>;

    /// The device's overrides of the user's preferences, if it has any.
    async fn preferences(
        &self,
        user: UserId,
        device: &DeviceId,
    ) -> Result<Option<StoredPreferences>, RepositoryError>;

    /// Replaces the device's overrides of the preferences if `expected` holds (`Absent` and
    /// `Version(0)`: none stored); empty overrides remove them (`Ok(None)`). A device's first
    /// override counts against the user's devices, under the same lock as the settings.
    async fn put_preferences(
        &self,
        user: UserId,
        device: &DeviceId,
        overrides: &PreferenceOverrides,
        expected: Precondition,
        quota: UserQuota,
    ) -> Result<Option<StoredPreferences>, SettingWriteError>;
}

/// Storage of the structured preferences (`shared.user_preferences`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PreferencesRepository: Send + Sync {
    /// The stored row, if any.
    async fn get(&self, user: UserId) -> Result<Option<StoredPreferences>, RepositoryError>;

    /// Inserts or replaces the user layer if `expected` holds (`Version(0)` and `Absent` both
    /// mean "no row yet"). A write that changes nothing leaves the row (and version) as is.
    /// Its history names `origin`.
    async fn upsert(
        &self,
        user: UserId,
        overrides: &PreferenceOverrides,
        expected: Precondition,
        origin: ChangeOrigin,
    ) -> Result<StoredPreferences, PreferencesWriteError>;
}

/// Authenticated encryption of secret values, bound to their cell `(user, key)`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait SecretCipher: Send + Sync {
    /// Encrypts `plaintext` for the cell `(user, key)` under the current key.
    ///
    /// # Errors
    /// [`CipherError::Internal`] when the system cannot encrypt (e.g. no randomness).
    fn seal(
        &self,
        user: UserId,
        key: &SettingKey,
        plaintext: &[u8],
    ) -> Result<Envelope, CipherError>;

    /// Decrypts an envelope sealed for the cell `(user, key)`.
    ///
    /// # Errors
    /// [`CipherError::UnknownKid`], [`CipherError::Malformed`] or [`CipherError::Integrity`].
    fn open(
        &self,
        user: UserId,
        key: &SettingKey,
        envelope: &Envelope,
    ) -> Result<Zeroizing<Vec<u8>>, CipherError>;

    /// Id of the key new envelopes are sealed with.
    fn current_kid(&self) -> String;
}

/// Storage of the deployment layer (`shared.deployment_settings`). Every write is audited
/// (`defaults_write`, with the operator's id) in the same transaction.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DefaultsRepository: Send + Sync {
    /// The whole layer.
    async fn load(&self) -> Result<Arc<DeploymentDefaults>, RepositoryError>;

    /// Inserts or replaces the deployment's value of a key (a plain write); returns it as
    /// stored and whether it was created.
    async fn put_setting(
        &self,
        write: &SettingWrite,
        enforced: bool,
        actor: &Actor,
    ) -> Result<(DeploymentSetting, bool), RepositoryError>;

    /// Removes the deployment's value of a key; whether there was one.
    async fn delete_setting(
        &self,
        key: &SettingKey,
        actor: &Actor,
    ) -> Result<bool, RepositoryError>;

    /// Replaces the preferences of the deployment layer if it is still at `expected_version`
    /// (0: never written); `Ok(false)` when another write came first.
    async fn put_preferences(
        &self,
        preferences: &DeploymentPreferences,
        expected_version: i64,
        actor: &Actor,
    ) -> Result<bool, RepositoryError>;
}

/// The kept history of the users' settings and preferences (written by the store itself, in
/// the transaction of each change; see [`crate::history`]).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait HistoryRepository: Send + Sync {
    /// At most `limit` entries of `target`, newest first, older than version `before` when
    /// given.
    async fn history(
        &self,
        user: UserId,
        target: &HistoryTarget,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, RepositoryError>;

    /// The entry of `target` at `version`, if kept.
    async fn entry(
        &self,
        user: UserId,
        target: &HistoryTarget,
        version: i64,
    ) -> Result<Option<HistoryEntry>, RepositoryError>;
}

/// Writes an import (see [`crate::portability`]) in one transaction: every write and delete
/// under its precondition, the result within `quota`, all or nothing. Its history names the
/// import.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ImportRepository: Send + Sync {
    /// Writes `changes` for `user`.
    async fn apply(
        &self,
        user: UserId,
        changes: &ImportChanges,
        quota: UserQuota,
    ) -> Result<(), SettingWriteError>;
}

/// The append-only audit log of privileged reads.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends one record.
    async fn record(&self, entry: AuditEntry) -> Result<(), RepositoryError>;
}

/// Reading the audit log back: who acted on one user's data.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AuditTrail: Send + Sync {
    /// At most `limit` of `subject`'s records below id `before` (all when `None`), newest
    /// first.
    async fn trail(
        &self,
        subject: UserId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, RepositoryError>;
}

// Shared handles: the app holds adapters behind `Arc` (often `Arc<dyn Port>`) and the
// services take them by value, so every port is also implemented for `Arc<T>`.

#[async_trait]
impl<T: SettingsRepository + ?Sized> SettingsRepository for std::sync::Arc<T> {
    async fn get(
        &self,
        user: UserId,
        key: &SettingKey,
    ) -> Result<Option<Setting>, RepositoryError> {
        (**self).get(user, key).await
    }

    async fn list(
        &self,
        user: UserId,
        category: Option<Category>,
        page: Page,
    ) -> Result<Vec<Setting>, RepositoryError> {
        (**self).list(user, category, page).await
    }

    async fn upsert(
        &self,
        user: UserId,
        write: &SettingWrite,
        expected: Precondition,
        quota: UserQuota,
    ) -> Result<UpsertOutcome, SettingWriteError> {
        (**self).upsert(user, write, expected, quota).await
    }

    async fn upsert_many(
        &self,
        user: UserId,
        writes: &[SettingWrite],
        quota: UserQuota,
    ) -> Result<Vec<UpsertOutcome>, SettingWriteError> {
        (**self).upsert_many(user, writes, quota).await
    }

    async fn delete(
        &self,
        user: UserId,
        key: &SettingKey,
        expected: Precondition,
        origin: ChangeOrigin,
    ) -> Result<(), SettingDeleteError> {
        (**self).delete(user, key, expected, origin).await
    }

    async fn count(&self, user: UserId) -> Result<u64, RepositoryError> {
        (**self).count(user).await
    }
}

#[async_trait]
impl<T: DeviceSettingsRepository + ?Sized> DeviceSettingsRepository for Arc<T> {
    async fn get(
        &self,
        user: UserId,
        device: &DeviceId,
        key: &SettingKey,
    ) -> Result<Option<Setting>, RepositoryError> {
        (**self).get(user, device, key).await
    }

    async fn list(&self, user: UserId, device: &DeviceId) -> Result<Vec<Setting>, RepositoryError> {
        (**self).list(user, device).await
    }

    async fn upsert(
        &self,
        user: UserId,
        device: &DeviceId,
        write: &SettingWrite,
        expected: Precondition,
        quota: UserQuota,
    ) -> Result<UpsertOutcome, SettingWriteError> {
        (**self).upsert(user, device, write, expected, quota).await
    }

    async fn delete(
        &self,
        user: UserId,
        device: &DeviceId,
        key: &SettingKey,
        expected: Precondition,
    ) -> Result<(), SettingDeleteError> {
        (**self).delete(user, device, key, expected).await
    }

    async fn devices(&self, user: UserId) -> Result<Vec<DeviceSummary>, RepositoryError> {
        (**self).devices(user).await
    }

    async fn delete_device(
        &self,
        user: UserId,
        device: &DeviceId,
    ) -> Result<bool, RepositoryError> {
        (**self).delete_device(user, device).await
    }

    async fn preferences(
        &self,
        user: UserId,
        device: &DeviceId,
    ) -> Result<Option<StoredPreferences>, RepositoryError> {
        (**self).preferences(user, device).await
    }

    async fn put_preferences(
        &self,
        user: UserId,
        device: &DeviceId,
        overrides: &PreferenceOverrides,
        expected: Precondition,
        quota: UserQuota,
    ) -> Result<Option<StoredPreferences>, SettingWriteError> {
        (**self)
            .put_preferences(user, device, overrides, expected, quota)
            .await
    }
}

#[async_trait]
impl<T: PreferencesRepository + ?Sized> PreferencesRepository for std::sync::Arc<T> {
    async fn get(&self, user: UserId) -> Result<Option<StoredPreferences>, RepositoryError> {
        (**self).get(user).await
    }

    async fn upsert(
        &self,
        user: UserId,
        overrides: &PreferenceOverrides,
        expected: Precondition,
        origin: ChangeOrigin,
    ) -> Result<StoredPreferences, PreferencesWriteError> {
        (**self).upsert(user, overrides, expected, origin).await
    }
}

#[async_trait]
impl<T: HistoryRepository + ?Sized> HistoryRepository for Arc<T> {
    async fn history(
        &self,
        user: UserId,
        target: &HistoryTarget,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, RepositoryError> {
        (**self).history(user, target, before, limit).await
    }

    async fn entry(
        &self,
        user: UserId,
        target: &HistoryTarget,
        version: i64,
    ) -> Result<Option<HistoryEntry>, RepositoryError> {
        (**self).entry(user, target, version).await
    }
}

impl<T: SecretCipher + ?Sized> SecretCipher for std::sync::Arc<T> {
    fn seal(
        &self,
        user: UserId,
        key: &SettingKey,
        plaintext: &[u8],
    ) -> Result<Envelope, CipherError> {
        (**self).seal(user, key, plaintext)
    }

    fn open(
        &self,
        user: UserId,
        key: &SettingKey,
        envelope: &Envelope,
    ) -> Result<Zeroizing<Vec<u8>>, CipherError> {
        (**self).open(user, key, envelope)
    }

    fn current_kid(&self) -> String {
        (**self).current_kid()
    }
}

#[async_trait]
impl<T: DefaultsRepository + ?Sized> DefaultsRepository for Arc<T> {
    async fn load(&self) -> Result<Arc<DeploymentDefaults>, RepositoryError> {
        (**self).load().await
    }

    async fn put_setting(
        &self,
        write: &SettingWrite,
        enforced: bool,
        actor: &Actor,
    ) -> Result<(DeploymentSetting, bool), RepositoryError> {
        (**self).put_setting(write, enforced, actor).await
    }

    async fn delete_setting(
        &self,
        key: &SettingKey,
        actor: &Actor,
    ) -> Result<bool, RepositoryError> {
        (**self).delete_setting(key, actor).await
    }

    async fn put_preferences(
        &self,
        preferences: &DeploymentPreferences,
        expected_version: i64,
        actor: &Actor,
    ) -> Result<bool, RepositoryError> {
        (**self)
            .put_preferences(preferences, expected_version, actor)
            .await
    }
}

#[async_trait]
impl<T: AuditLog + ?Sized> AuditLog for std::sync::Arc<T> {
    async fn record(&self, entry: AuditEntry) -> Result<(), RepositoryError> {
        (**self).record(entry).await
    }
}

/// A stored encrypted setting, as key rotation sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct SealedCell {
    /// Owner.
    pub user_id: UserId,
    /// Name.
    pub key: SettingKey,
    /// Version when read; the rewrap writes only if it is unchanged.
    pub version: i64,
    /// The stored value (normally an envelope; may be corrupt).
    pub value: serde_json::Value,
}

/// Access to every encrypted setting, for key rotation and start-up checks.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EnvelopeStore: Send + Sync {
    /// How many encrypted settings each key id sealed (`None` for values without a kid).
    async fn count_by_kid(&self) -> Result<Vec<(Option<String>, u64)>, RepositoryError>;

    /// Up to `limit` encrypted settings not sealed with `current_kid`, ordered by
    /// `(user_id, key)` and strictly after `after`.
    async fn not_sealed_with(
        &self,
        current_kid: &str,
        after: Option<(UserId, SettingKey)>,
        limit: u32,
    ) -> Result<Vec<SealedCell>, RepositoryError>;

    /// Stores each envelope in place of its cell's value where the version is still
    /// `cell.version`, all in one statement; returns how many were stored (a row that
    /// changed or vanished meanwhile is left as it is). The version is kept: the plaintext,
    /// and so the setting, did not change.
    async fn replace_envelopes(
        &self,
        replacements: &[(SealedCell, Envelope)],
    ) -> Result<u64, RepositoryError>;
}
