//! The settings use cases: get, list, set, delete, bulk set, and the encrypted paths.
//!
//! Values arrive as JSON text (`RawValue`): their size and depth are checked on the text
//! before a tree is built, and each tree is moved, never copied, into its write.

use std::{collections::HashSet, sync::Arc};

use super::{
    defaults::DeploymentSource,
    history::{HistoryError, HistorySource, NotRestorable, restore_input},
    write_pipeline::{PrepareError, SettingInput, WritePipeline},
};
use crate::{
    audit::{Actor, AuditAction, AuditEntry},
    error::{FieldError, RepositoryError, ValidationErrors},
    history::{ChangeOrigin, HistoryPage, HistoryTarget},
    ids::UserId,
    integrations::{ProviderId, managing_provider},
    ports::{
        AuditLog, DefaultsRepository, HistoryRepository, SecretCipher, SettingDeleteError,
        SettingWriteError, SettingsRepository,
    },
    registry::KeyRegistry,
    secrets::{CipherError, SecretValue},
    settings::{
        AllowedCategories, Category, DataType, Limits, Page, Precondition, QuotaExceeded,
        SettingKey, SettingView, StoredValue,
    },
};

/// Why a setting could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GetSettingError {
    /// The key is malformed.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// No such setting.
    #[error("the setting does not exist")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// One page of a listing.
#[derive(Debug)]
pub struct SettingsPage {
    /// The settings, ordered by key; secrets redacted.
    pub settings: Vec<SettingView>,
    /// The last key of this page when more settings follow (the next page starts after it).
    pub next_after: Option<SettingKey>,
}

/// Why settings could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum ListSettingsError {
    /// The category filter is not an allowed category.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// The store (or the audit log, for admin reads) failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Why a setting (or a bulk of settings) could not be written.
#[derive(Debug, thiserror::Error)]
pub enum SetSettingError {
    /// Every problem with the input.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// The precondition did not hold.
    #[error("the setting was changed concurrently")]
    VersionConflict {
        /// The version now stored, `None` when absent.
        current: Option<i64>,
    },
    /// The write would take the user over a per-user quota.
    #[error("{0}")]
    QuotaExceeded(QuotaExceeded),
    /// The key belongs to an integration: it changes only through that integration's routes.
    #[error("the key {key} is managed by the {provider} integration")]
    ManagedByIntegration {
        /// The key.
        key: SettingKey,
        /// The integration that owns it.
        provider: ProviderId,
    },
    /// The user does not exist (external provisioning).
    #[error("the user does not exist")]
    UserNotFound,
    /// The key is enforced by the deployment: user and device writes are refused.
    #[error("the key {key} is enforced by the deployment")]
    EnforcedByDeployment {
        /// The key.
        key: SettingKey,
    },
    /// A secret written to a layer that holds none (a device's): secrets are sealed for the
    /// user's own cell only.
    #[error("secrets exist only in the user layer")]
    NotLayerable,
    /// A restore named a version that holds no value to write again.
    #[error(transparent)]
    NotRestorable(NotRestorable),
    /// The value could not be encrypted.
    #[error("the value could not be encrypted: {0}")]
    Cipher(CipherError),
    /// The store failed.
    #[error(transparent)]
    Repository(RepositoryError),
}

impl From<SettingWriteError> for SetSettingError {
    fn from(e: SettingWriteError) -> Self {
        match e {
            SettingWriteError::VersionConflict { current } => Self::VersionConflict { current },
            SettingWriteError::QuotaExceeded(q) => Self::QuotaExceeded(q),
            SettingWriteError::UserNotFound => Self::UserNotFound,
            SettingWriteError::Repository(r) => Self::Repository(r),
        }
    }
}

/// Why a setting could not be deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteSettingError {
    /// The key is malformed.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// No such setting.
    #[error("the setting does not exist")]
    NotFound,
    /// The key belongs to an integration: disconnecting removes it.
    #[error("the key {key} is managed by the {provider} integration")]
    ManagedByIntegration {
        /// The key.
        key: SettingKey,
        /// The integration that owns it.
        provider: ProviderId,
    },
    /// The key is enforced by the deployment: the user's value stays as stored.
    #[error("the key {key} is enforced by the deployment")]
    EnforcedByDeployment {
        /// The key.
        key: SettingKey,
    },
    /// The precondition did not hold.
    #[error("the setting was changed concurrently (current version {current:?})")]
    VersionConflict {
        /// The version now stored, `None` when absent (under [`Precondition::Exists`]).
        current: Option<i64>,
    },
    /// The store failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Why the plaintext of a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GetSecretError {
    /// The key is malformed.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// No such setting.
    #[error("the setting does not exist")]
    NotFound,
    /// The setting is not encrypted, so it is not a secret.
    #[error("the setting is not an encrypted setting")]
    NotASecret,
    /// The envelope could not be opened.
    #[error("the secret could not be decrypted: {0}")]
    Cipher(#[from] CipherError),
    /// The store or the audit log failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// The settings use cases.
pub struct SettingsService<R, C, A> {
    repo: R,
    audit: A,
    pipeline: WritePipeline<C>,
    /// The deployment layer: enforced keys refuse user writes, effective reads fall back
    /// to it.
    defaults: DeploymentSource,
    /// The kept versions, for history reads and restores.
    history: HistorySource,
}

impl<R, C, A> SettingsService<R, C, A>
where
    R: SettingsRepository,
    C: SecretCipher,
    A: AuditLog,
{
    /// Builds the service from its ports and the write pipeline (rules and cipher).
    pub fn new(repo: R, audit: A, pipeline: WritePipeline<C>) -> Self {
        Self {
            repo,
            audit,
            pipeline,
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

    /// Reads the deployment layer from `defaults`.
    #[must_use]
    pub fn with_defaults(mut self, defaults: Arc<dyn DefaultsRepository>) -> Self {
        self.defaults = DeploymentSource::new(defaults);
        self
    }

    /// Refuses a user write of a key the deployment enforces.
    async fn refuse_enforced<'a>(
        &self,
        keys: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), SetSettingError> {
        if !self.defaults.is_configured() {
            return Ok(());
        }
        let deployment = self
            .defaults
            .load()
            .await
            .map_err(SetSettingError::Repository)?;
        match keys.into_iter().find(|k| deployment.enforces(k)) {
            Some(key) => Err(SetSettingError::EnforcedByDeployment {
                key: SettingKey::parse(key)
                    .map_err(|e| SetSettingError::Validation(ValidationErrors::single(e)))?,
            }),
            None => Ok(()),
        }
    }

    /// The known-key registry in force.
    pub fn registry(&self) -> &KeyRegistry {
        self.pipeline.registry()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        self.pipeline.limits()
    }

    /// The categories accepted.
    pub fn categories(&self) -> &AllowedCategories {
        self.pipeline.categories()
    }

    /// One setting (GetSetting); secrets are redacted.
    ///
    /// # Errors
    /// [`GetSettingError::Validation`] for a malformed key, `NotFound`, or `Repository`.
    pub async fn get_setting(
        &self,
        user: UserId,
        key: &str,
    ) -> Result<SettingView, GetSettingError> {
        let key = SettingKey::parse(key)
            .map_err(|e| GetSettingError::Validation(ValidationErrors::single(e)))?;
        self.repo
            .get(user, &key)
            .await?
            .map(|s| s.redacted())
            .ok_or(GetSettingError::NotFound)
    }

    /// One page of the user's settings ordered by key, optionally one category
    /// (GetSettings); secrets are redacted. `after` is the last key of the previous page;
    /// `limit` defaults to, and may not exceed, [`Page::MAX_LIMIT`].
    ///
    /// # Errors
    /// [`ListSettingsError::Validation`] for an unknown category, a malformed `after` or a
    /// `limit` out of range; or `Repository`.
    pub async fn list_settings(
        &self,
        user: UserId,
        category: Option<&str>,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<SettingsPage, ListSettingsError> {
        let mut errors = ValidationErrors::new();
        let category: Option<Category> =
            category.and_then(|c| errors.collect(self.categories().parse(c)));
        let after = after.and_then(|k| {
            errors.collect(SettingKey::parse(k).map_err(|_| {
                FieldError::new(
                    "cursor",
                    "invalid_cursor",
                    "the cursor is not one this API gave",
                )
            }))
        });
        let limit = limit.unwrap_or(Page::MAX_LIMIT);
        if !(1..=Page::MAX_LIMIT).contains(&limit) {
            errors.push(FieldError::new(
                "limit",
                "out_of_range",
                format!("limit must be between 1 and {}", Page::MAX_LIMIT),
            ));
        }
        if !errors.is_empty() {
            return Err(ListSettingsError::Validation(errors));
        }
        // One more than asked tells whether another page follows.
        let page = Page {
            after,
            limit: limit + 1,
        };
        let mut settings = self.repo.list(user, category, page).await?;
        let more = settings.len() > limit as usize;
        settings.truncate(limit as usize);
        let next_after = more
            .then(|| settings.last().map(|s| s.key.clone()))
            .flatten();
        Ok(SettingsPage {
            settings: settings.into_iter().map(|s| s.redacted()).collect(),
            next_after,
        })
    }

    /// An admin's read of another user's settings: audited first, secrets redacted.
    ///
    /// # Errors
    /// As [`Self::list_settings`]; an audit failure refuses the read.
    pub async fn list_settings_as_admin(
        &self,
        actor: &Actor,
        subject: UserId,
        category: Option<&str>,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<SettingsPage, ListSettingsError> {
        self.audit
            .record(AuditEntry::admin_read(actor, subject))
            .await?;
        self.list_settings(subject, category, after, limit).await
    }

    /// Creates or replaces one setting (SetSetting). Sensitive known keys and
    /// `data_type: encrypted` are sealed before they reach the store. Returns the stored
    /// setting (redacted) and whether it was created.
    ///
    /// # Errors
    /// `ManagedByIntegration` for a key an integration owns; every validation problem at
    /// once, a failed precondition, a quota, an unknown user (external provisioning), a
    /// cipher or a store failure.
    pub async fn set_setting(
        &self,
        user: UserId,
        input: SettingInput,
        expected: Precondition,
    ) -> Result<(SettingView, bool), SetSettingError> {
        self.write_setting(user, input, expected, ChangeOrigin::User)
            .await
    }

    async fn write_setting(
        &self,
        user: UserId,
        input: SettingInput,
        expected: Precondition,
        origin: ChangeOrigin,
    ) -> Result<(SettingView, bool), SetSettingError> {
        refuse_managed(&input.key)?;
        self.refuse_enforced([input.key.as_str()]).await?;
        let mut write = self
            .pipeline
            .prepare(user, input)
            .map_err(PrepareError::into_set_error)?;
        write.origin = origin;
        let outcome = self
            .repo
            .upsert(user, &write, expected, self.limits().quota())
            .await?;
        Ok((outcome.setting.redacted(), outcome.created))
    }

    /// The kept versions of one of the user's settings, newest first; `before` is the
    /// `next_before` of the previous page. A secret's entries hold no value.
    ///
    /// # Errors
    /// `Validation` for a malformed key or a limit out of range; `Repository`.
    pub async fn history(
        &self,
        user: UserId,
        key: &str,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Result<HistoryPage, HistoryError> {
        let key = SettingKey::parse(key)
            .map_err(|e| HistoryError::Validation(ValidationErrors::single(e)))?;
        self.history
            .page(user, &HistoryTarget::setting(None, key), before, limit)
            .await
    }

    /// Support's read of a user's history of a key: audited first.
    ///
    /// # Errors
    /// As [`Self::history`]; an audit failure refuses the read.
    pub async fn history_as_admin(
        &self,
        actor: &Actor,
        subject: UserId,
        key: &str,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Result<HistoryPage, HistoryError> {
        let mut entry = AuditEntry::admin_read(actor, subject);
        entry.key = SettingKey::parse(key).ok();
        self.audit.record(entry).await?;
        self.history(subject, key, before, limit).await
    }

    /// Writes the value kept at `version` of `key` again, as a new version (recorded as
    /// `restored`), under `expected`. Returns the setting and whether it was created (the
    /// key had been deleted).
    ///
    /// # Errors
    /// `NotRestorable` for a version not kept, a deletion or a secret's; otherwise as
    /// [`Self::set_setting`] (the kept value obeys today's rules).
    pub async fn restore(
        &self,
        user: UserId,
        key: &str,
        version: i64,
        expected: Precondition,
    ) -> Result<(SettingView, bool), SetSettingError> {
        let key = SettingKey::parse(key)
            .map_err(|e| SetSettingError::Validation(ValidationErrors::single(e)))?;
        let entry = self
            .history
            .restorable(user, &HistoryTarget::setting(None, key.clone()), version)
            .await
            .map_err(SetSettingError::Repository)?
            .map_err(SetSettingError::NotRestorable)?;
        let input = restore_input(&key, &entry);
        self.write_setting(user, input, expected, ChangeOrigin::Restore)
            .await
    }

    /// Writes many settings in one transaction (SetSettings): all or nothing. Every bad item
    /// is reported, under `settings[i]`.
    ///
    /// # Errors
    /// As [`Self::set_setting`] (`ManagedByIntegration` for the first such item);
    /// `Validation` also for too many items or repeated keys.
    pub async fn set_settings(
        &self,
        user: UserId,
        inputs: Vec<SettingInput>,
    ) -> Result<Vec<(SettingView, bool)>, SetSettingError> {
        let mut errors = ValidationErrors::new();
        let max_items = self.limits().max_bulk_items;
        if inputs.len() > max_items {
            errors.push(FieldError::new(
                "settings",
                "too_many",
                format!("at most {max_items} settings per bulk write"),
            ));
            return Err(SetSettingError::Validation(errors));
        }
        for input in &inputs {
            refuse_managed(&input.key)?;
        }
        self.refuse_enforced(inputs.iter().map(|i| i.key.as_str()))
            .await?;
        let mut seen = HashSet::new();
        let mut writes = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.into_iter().enumerate() {
            let prefix = format!("settings[{i}]");
            if !seen.insert(input.key.clone()) {
                errors.push(
                    FieldError::new("key", "duplicate_key", "the key appears twice in this bulk")
                        .prefixed(&prefix),
                );
                continue;
            }
            match self.pipeline.prepare(user, input) {
                Ok(write) => writes.push(write),
                Err(PrepareError::Invalid(e)) => errors.extend_prefixed(&prefix, e),
                Err(e) => return Err(e.into_set_error()),
            }
        }
        if !errors.is_empty() {
            return Err(SetSettingError::Validation(errors));
        }
        let outcomes = self
            .repo
            .upsert_many(user, &writes, self.limits().quota())
            .await?;
        Ok(outcomes
            .into_iter()
            .map(|o| (o.setting.redacted(), o.created))
            .collect())
    }

    /// Deletes one setting (DeleteSetting).
    ///
    /// # Errors
    /// `Validation` for a malformed key, `ManagedByIntegration`, `NotFound`,
    /// `VersionConflict`, or `Repository`.
    pub async fn delete_setting(
        &self,
        user: UserId,
        key: &str,
        expected: Precondition,
    ) -> Result<(), DeleteSettingError> {
        let key = SettingKey::parse(key)
            .map_err(|e| DeleteSettingError::Validation(ValidationErrors::single(e)))?;
        if let Some(provider) = managing_provider(key.as_str()) {
            return Err(DeleteSettingError::ManagedByIntegration { key, provider });
        }
        if self.defaults.load().await?.enforces(key.as_str()) {
            return Err(DeleteSettingError::EnforcedByDeployment { key });
        }
        let must_exist = expected == Precondition::Exists;
        self.repo
            .delete(user, &key, expected, ChangeOrigin::User)
            .await
            .map_err(|e| DeleteSettingError::from_store(e, must_exist))
    }

    /// Stores a secret (SetEncryptedSetting): always sealed, whatever the key.
    ///
    /// # Errors
    /// As [`Self::set_setting`].
    pub async fn set_secret(
        &self,
        user: UserId,
        key: &str,
        secret: &SecretValue,
        description: Option<String>,
    ) -> Result<(SettingView, bool), SetSettingError> {
        let invalid = || {
            SetSettingError::Validation(ValidationErrors::single(FieldError::new(
                "value",
                "invalid_type",
                "the secret must be JSON",
            )))
        };
        let value = secret.expose_json().map_err(|_| invalid())?;
        let value = serde_json::value::to_raw_value(&value).map_err(|_| invalid())?;
        let input = SettingInput {
            key: key.to_owned(),
            value: Some(value),
            description,
            category: None,
            data_type: Some(DataType::Encrypted.as_str().to_owned()),
        };
        self.set_setting(user, input, Precondition::Any).await
    }

    /// The plaintext of a secret (GetEncryptedSetting). Writes a `secret_read` audit record
    /// before decrypting; if the record cannot be written, nothing is disclosed.
    ///
    /// # Errors
    /// `Validation`, `NotFound`, `NotASecret`, `Cipher` or `Repository`.
    pub async fn get_secret(
        &self,
        actor: &Actor,
        user: UserId,
        key: &str,
    ) -> Result<SecretValue, GetSecretError> {
        let key = SettingKey::parse(key)
            .map_err(|e| GetSecretError::Validation(ValidationErrors::single(e)))?;
        let setting = self
            .repo
            .get(user, &key)
            .await?
            .ok_or(GetSecretError::NotFound)?;
        let StoredValue::Sealed(envelope) = setting.value else {
            return Err(GetSecretError::NotASecret);
        };
        self.audit
            .record(AuditEntry {
                actor: actor.clone(),
                subject: user,
                action: AuditAction::SecretRead,
                key: Some(key.clone()),
            })
            .await?;
        let plaintext = self.pipeline.cipher().open(user, &key, &envelope)?;
        Ok(SecretValue::from_bytes(plaintext))
    }
}

impl DeleteSettingError {
    /// The store's refusal of a delete; `must_exist` when the precondition was
    /// [`Precondition::Exists`].
    pub(super) fn from_store(e: SettingDeleteError, must_exist: bool) -> Self {
        match e {
            // The condition, not the resource, is what failed.
            SettingDeleteError::NotFound if must_exist => Self::VersionConflict { current: None },
            SettingDeleteError::NotFound => Self::NotFound,
            SettingDeleteError::VersionConflict { current } => Self::VersionConflict {
                current: Some(current),
            },
            SettingDeleteError::Repository(r) => Self::Repository(r),
        }
    }
}

/// Refuses a key that an integration owns (its credentials, metadata or PKCE binding).
pub(super) fn refuse_managed(raw_key: &str) -> Result<(), SetSettingError> {
    match managing_provider(raw_key) {
        Some(provider) => Err(SetSettingError::ManagedByIntegration {
            key: SettingKey::parse(raw_key)
                .map_err(|e| SetSettingError::Validation(ValidationErrors::single(e)))?,
            provider,
        }),
        None => Ok(()),
    }
}

impl PrepareError {
    fn into_set_error(self) -> SetSettingError {
        match self {
            PrepareError::Invalid(e) => SetSettingError::Validation(e),
            PrepareError::Cipher(e) => SetSettingError::Cipher(e),
        }
    }
}
