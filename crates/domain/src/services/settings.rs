//! The settings use cases: get, list, set, delete, bulk set, and the encrypted paths.

use std::{collections::HashSet, sync::Arc};

use serde::Deserialize;
use serde_json::Value;

use crate::{
    audit::{Actor, AuditAction, AuditEntry},
    error::{FieldError, RepositoryError, ValidationErrors},
    ids::UserId,
    ports::{AuditLog, SecretCipher, SettingDeleteError, SettingWriteError, SettingsRepository},
    registry::KeyRegistry,
    secrets::{CipherError, Envelope, SecretValue},
    settings::{
        AllowedCategories, DataType, Description, Limits, Precondition, SettingKey, SettingView,
        SettingWrite, check_value_shape,
    },
};

/// A setting as a client submits it (`PUT .../settings/{key}` or one bulk item). Its `Debug`
/// never shows the value: it may be a secret on its way to encryption.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingInput {
    /// The key (taken from the path for single writes).
    #[serde(default)]
    pub key: String,
    /// The value; `null` or absent is rejected.
    #[serde(default)]
    pub value: Value,
    /// Optional description.
    #[serde(default)]
    pub description: Option<String>,
    /// Optional category.
    #[serde(default)]
    pub category: Option<String>,
    /// Optional data type; inferred from the value when absent.
    #[serde(default)]
    pub data_type: Option<String>,
}

impl std::fmt::Debug for SettingInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingInput")
            .field("key", &self.key)
            .field("value", &"[REDACTED]")
            .field("description", &self.description)
            .field("category", &self.category)
            .field("data_type", &self.data_type)
            .finish()
    }
}

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
    /// The user is at the per-user settings limit.
    #[error("the user already has the maximum of {limit} settings")]
    QuotaExceeded {
        /// The limit.
        limit: u32,
    },
    /// The user does not exist (external provisioning).
    #[error("the user does not exist")]
    UserNotFound,
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
            SettingWriteError::QuotaExceeded { limit } => Self::QuotaExceeded { limit },
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
    /// The precondition did not hold.
    #[error("the setting was changed concurrently (current version {current})")]
    VersionConflict {
        /// The version now stored.
        current: i64,
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
    cipher: C,
    audit: A,
    registry: Arc<KeyRegistry>,
    limits: Limits,
    categories: AllowedCategories,
}

impl<R, C, A> SettingsService<R, C, A>
where
    R: SettingsRepository,
    C: SecretCipher,
    A: AuditLog,
{
    /// Builds the service from its ports and rules.
    pub fn new(
        repo: R,
        cipher: C,
        audit: A,
        registry: Arc<KeyRegistry>,
        limits: Limits,
        categories: AllowedCategories,
    ) -> Self {
        Self {
            repo,
            cipher,
            audit,
            registry,
            limits,
            categories,
        }
    }

    /// The known-key registry in force.
    pub fn registry(&self) -> &KeyRegistry {
        &self.registry
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The categories accepted.
    pub fn categories(&self) -> &AllowedCategories {
        &self.categories
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

    /// The user's settings ordered by key, optionally one category (GetSettings); secrets
    /// are redacted.
    ///
    /// # Errors
    /// [`ListSettingsError::Validation`] for an unknown category, or `Repository`.
    pub async fn list_settings(
        &self,
        user: UserId,
        category: Option<&str>,
    ) -> Result<Vec<SettingView>, ListSettingsError> {
        let category = category
            .map(|c| self.categories.parse(c))
            .transpose()
            .map_err(|e| ListSettingsError::Validation(ValidationErrors::single(e)))?;
        let settings = self.repo.list(user, category).await?;
        Ok(settings.into_iter().map(|s| s.redacted()).collect())
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
    ) -> Result<Vec<SettingView>, ListSettingsError> {
        self.audit
            .record(AuditEntry {
                actor: actor.clone(),
                subject,
                action: AuditAction::AdminRead,
                key: None,
            })
            .await?;
        self.list_settings(subject, category).await
    }

    /// Creates or replaces one setting (SetSetting). Sensitive known keys and
    /// `data_type: encrypted` are sealed before they reach the store. Returns the stored
    /// setting (redacted) and whether it was created.
    ///
    /// # Errors
    /// Every validation problem at once, a failed precondition, the quota, an unknown user
    /// (external provisioning), a cipher or a store failure.
    pub async fn set_setting(
        &self,
        user: UserId,
        input: SettingInput,
        expected: Precondition,
    ) -> Result<(SettingView, bool), SetSettingError> {
        let write = self
            .prepare(user, &input)
            .map_err(PrepareError::into_set_error)?;
        let outcome = self
            .repo
            .upsert(user, &write, expected, self.limits.max_settings_per_user)
            .await?;
        Ok((outcome.setting.redacted(), outcome.created))
    }

    /// Writes many settings in one transaction (SetSettings): all or nothing. Every bad item
    /// is reported, under `settings[i]`.
    ///
    /// # Errors
    /// As [`Self::set_setting`]; `Validation` also for too many items or repeated keys.
    pub async fn set_settings(
        &self,
        user: UserId,
        inputs: Vec<SettingInput>,
    ) -> Result<Vec<(SettingView, bool)>, SetSettingError> {
        let mut errors = ValidationErrors::new();
        if inputs.len() > self.limits.max_bulk_items {
            errors.push(FieldError::new(
                "settings",
                "too_many",
                format!(
                    "at most {} settings per bulk write",
                    self.limits.max_bulk_items
                ),
            ));
            return Err(SetSettingError::Validation(errors));
        }
        let mut seen = HashSet::new();
        let mut writes = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.iter().enumerate() {
            let prefix = format!("settings[{i}]");
            if !seen.insert(input.key.as_str()) {
                errors.push(
                    FieldError::new("key", "duplicate_key", "the key appears twice in this bulk")
                        .prefixed(&prefix),
                );
                continue;
            }
            match self.prepare(user, input) {
                Ok(write) => writes.push(write),
                Err(PrepareError::Invalid(e)) => errors.extend_prefixed(&prefix, e),
                Err(PrepareError::Cipher(e)) => return Err(SetSettingError::Cipher(e)),
            }
        }
        if !errors.is_empty() {
            return Err(SetSettingError::Validation(errors));
        }
        let outcomes = self
            .repo
            .upsert_many(user, &writes, self.limits.max_settings_per_user)
            .await?;
        Ok(outcomes
            .into_iter()
            .map(|o| (o.setting.redacted(), o.created))
            .collect())
    }

    /// Deletes one setting (DeleteSetting).
    ///
    /// # Errors
    /// `Validation` for a malformed key, `NotFound`, `VersionConflict`, or `Repository`.
    pub async fn delete_setting(
        &self,
        user: UserId,
        key: &str,
        expected: Precondition,
    ) -> Result<(), DeleteSettingError> {
        let key = SettingKey::parse(key)
            .map_err(|e| DeleteSettingError::Validation(ValidationErrors::single(e)))?;
        self.repo
            .delete(user, &key, expected)
            .await
            .map_err(|e| match e {
                SettingDeleteError::NotFound => DeleteSettingError::NotFound,
                SettingDeleteError::VersionConflict { current } => {
                    DeleteSettingError::VersionConflict { current }
                }
                SettingDeleteError::Repository(r) => DeleteSettingError::Repository(r),
            })
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
        let value = secret.expose_json().map_err(|_| {
            SetSettingError::Validation(ValidationErrors::single(FieldError::new(
                "value",
                "invalid_type",
                "the secret must be JSON",
            )))
        })?;
        let input = SettingInput {
            key: key.to_owned(),
            value,
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
        if setting.data_type != DataType::Encrypted {
            return Err(GetSecretError::NotASecret);
        }
        let envelope = Envelope::from_value(&setting.value)?;
        self.audit
            .record(AuditEntry {
                actor: actor.clone(),
                subject: user,
                action: AuditAction::SecretRead,
                key: Some(key.clone()),
            })
            .await?;
        let plaintext = self.cipher.open(user, &key, &envelope)?;
        Ok(SecretValue::from_bytes(plaintext))
    }

    /// Validates one input into a store write, sealing it when it is a secret.
    fn prepare(&self, user: UserId, input: &SettingInput) -> Result<SettingWrite, PrepareError> {
        let mut errors = ValidationErrors::new();
        let key = errors.collect(SettingKey::parse(&input.key));
        let known = key.as_ref().and_then(|k| self.registry.lookup(k));
        let requested_type = input
            .data_type
            .as_deref()
            .and_then(|t| errors.collect(DataType::parse(t)));

        let data_type = match (known, requested_type) {
            (Some(entry), Some(requested)) if requested != entry.data_type() => {
                errors.push(FieldError::new(
                    "data_type",
                    "data_type_mismatch",
                    format!("this key requires data_type {}", entry.data_type()),
                ));
                None
            }
            (Some(entry), _) => Some(entry.data_type()),
            (None, Some(requested)) => Some(requested),
            (None, None) => DataType::infer(&input.value),
        };
        match data_type {
            _ if input.value.is_null() => errors.push(FieldError::new(
                "value",
                "required",
                "a value is required; delete the setting to remove it",
            )),
            Some(t) if !t.accepts(&input.value) => errors.push(FieldError::new(
                "value",
                "type_mismatch",
                format!("the value is not a {t}"),
            )),
            _ => {}
        }
        let value_shape_ok = errors
            .collect(check_value_shape(&input.value, &self.limits))
            .is_some();
        if let (Some(entry), true, false) = (known, value_shape_ok, input.value.is_null())
            && let Err(e) = entry.validate(&input.value)
        {
            errors.extend(e);
        }

        let requested_category = input
            .category
            .as_deref()
            .and_then(|c| errors.collect(self.categories.parse(c)));
        let category = match (known.and_then(|e| e.category()), requested_category) {
            (Some(fixed), Some(requested)) if fixed != requested => {
                errors.push(FieldError::new(
                    "category",
                    "category_mismatch",
                    format!("this key belongs to category {fixed}"),
                ));
                None
            }
            (Some(fixed), _) => Some(fixed),
            (None, requested) => requested,
        };
        let description = input
            .description
            .as_deref()
            .and_then(|d| errors.collect(Description::parse(d, self.limits.max_description_chars)));

        let (Some(key), Some(data_type), true) = (key, data_type, errors.is_empty()) else {
            return Err(PrepareError::Invalid(errors));
        };
        let value = if data_type == DataType::Encrypted {
            let plaintext = SecretValue::from_json(&input.value);
            self.cipher
                .seal(user, &key, plaintext.expose_bytes())
                .map_err(PrepareError::Cipher)?
                .to_value()
        } else {
            input.value.clone()
        };
        Ok(SettingWrite {
            key,
            value,
            description,
            category,
            data_type,
        })
    }
}

enum PrepareError {
    Invalid(ValidationErrors),
    Cipher(CipherError),
}

impl PrepareError {
    fn into_set_error(self) -> SetSettingError {
        match self {
            PrepareError::Invalid(e) => SetSettingError::Validation(e),
            PrepareError::Cipher(e) => SetSettingError::Cipher(e),
        }
    }
}
