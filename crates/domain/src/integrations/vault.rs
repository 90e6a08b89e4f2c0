//! `CredentialVault`: the settings rows of a connection — the sealed credentials under the
//! seed's storage key and the clear metadata under `integrations.{provider}.connection` —
//! read, written (validated against the registry, sealed, version-checked) and removed.

use std::{collections::HashMap, sync::Arc};

use serde_json::Value;

use super::{
    catalogue::{ProviderId, metadata_key},
    connection::ConnectionMetadata,
    credentials::{Grant, MalformedCredentials},
};
use crate::{
    error::{RepositoryError, ValidationErrors},
    ids::UserId,
    ports::{SecretCipher, SettingDeleteError, SettingWriteError, SettingsRepository},
    registry::KeyRegistry,
    secrets::{CipherError, Envelope, SecretValue},
    settings::{Category, DataType, Limits, Precondition, SettingKey, SettingWrite},
};

/// The category every row of a connection is stored under.
const CATEGORY: &str = "integrations";

/// Stored credentials and the version of their row (for version-checked replacement).
#[derive(Debug)]
pub struct StoredGrant {
    /// The credentials and account.
    pub grant: Grant,
    /// The row's version.
    pub version: i64,
}

/// What is stored for one provider, as the listing needs it (nothing decrypted).
#[derive(Clone, Debug, Default)]
pub struct StoredConnection {
    /// The credentials row exists.
    pub has_credentials: bool,
    /// The metadata, when present and readable.
    pub metadata: Option<ConnectionMetadata>,
}

/// Why stored credentials could not be read.
#[derive(Debug, thiserror::Error)]
pub enum VaultReadError {
    /// The envelope could not be opened.
    #[error("the stored credentials could not be decrypted: {0}")]
    Cipher(#[from] CipherError),
    /// The plaintext is not in the expected shape.
    #[error(transparent)]
    Malformed(#[from] MalformedCredentials),
    /// The store failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Why a connection could not be written.
#[derive(Debug, thiserror::Error)]
pub enum VaultWriteError {
    /// The value does not satisfy the key's schema (a provider answer missing a field the
    /// seed requires, e.g. no refresh token).
    #[error("the credentials do not satisfy the schema of their key: {0}")]
    Invalid(ValidationErrors),
    /// The row changed since it was read.
    #[error("the credentials were changed concurrently")]
    VersionConflict,
    /// The user is at the per-user settings limit.
    #[error("the user already has the maximum of {limit} settings")]
    QuotaExceeded {
        /// The limit.
        limit: u32,
    },
    /// The user does not exist (external provisioning).
    #[error("the user does not exist")]
    UserNotFound,
    /// Sealing failed.
    #[error("the credentials could not be encrypted: {0}")]
    Cipher(#[from] CipherError),
    /// The store failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

impl From<SettingWriteError> for VaultWriteError {
    fn from(e: SettingWriteError) -> Self {
        match e {
            SettingWriteError::VersionConflict { .. } => Self::VersionConflict,
            SettingWriteError::QuotaExceeded { limit } => Self::QuotaExceeded { limit },
            SettingWriteError::UserNotFound => Self::UserNotFound,
            SettingWriteError::Repository(r) => Self::Repository(r),
        }
    }
}

/// The rows of every connection of every user.
pub struct CredentialVault<R, C> {
    repo: R,
    cipher: C,
    registry: Arc<KeyRegistry>,
    limits: Limits,
}

impl<R: SettingsRepository, C: SecretCipher> CredentialVault<R, C> {
    /// A vault over the settings store. `registry` validates what is written; `limits`
    /// gives the per-user quota.
    pub fn new(repo: R, cipher: C, registry: Arc<KeyRegistry>, limits: Limits) -> Self {
        Self {
            repo,
            cipher,
            registry,
            limits,
        }
    }

    /// The cipher, for sealing values bound to a user (the PKCE verifier).
    pub fn cipher(&self) -> &C {
        &self.cipher
    }

    /// The decrypted credentials of a connection, if stored.
    ///
    /// # Errors
    /// [`VaultReadError`].
    pub async fn read(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<StoredGrant>, VaultReadError> {
        let key = storage_key(provider)?;
        let Some(setting) = self.repo.get(user, &key).await? else {
            return Ok(None);
        };
        if setting.data_type != DataType::Encrypted {
            // Only the service writes this key encrypted; a clear value is not ours to use.
            return Err(MalformedCredentials { provider }.into());
        }
        let envelope = Envelope::from_value(&setting.value)?;
        let plaintext = SecretValue::from_bytes(self.cipher.open(user, &key, &envelope)?);
        let value = plaintext
            .expose_json()
            .map_err(|_| MalformedCredentials { provider })?;
        let grant = Grant::from_stored_json(provider, &value)?;
        Ok(Some(StoredGrant {
            grant,
            version: setting.version,
        }))
    }

    /// The connection metadata, if stored and readable.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn read_metadata(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<ConnectionMetadata>, RepositoryError> {
        let key = key(&metadata_key(provider))?;
        Ok(self
            .repo
            .get(user, &key)
            .await?
            .and_then(|s| ConnectionMetadata::from_json(&s.value)))
    }

    /// What is stored for every provider (one query; nothing decrypted).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn list(
        &self,
        user: UserId,
    ) -> Result<HashMap<ProviderId, StoredConnection>, RepositoryError> {
        let rows = self
            .repo
            .list(user, Some(Category::from_stored(CATEGORY.to_owned())))
            .await?;
        let mut found: HashMap<ProviderId, StoredConnection> = HashMap::new();
        for provider in ProviderId::ALL {
            let spec = provider.spec();
            let metadata_key = metadata_key(provider);
            let mut entry = StoredConnection::default();
            for row in &rows {
                if row.key.as_str() == spec.storage_key {
                    entry.has_credentials = row.data_type == DataType::Encrypted;
                } else if row.key.as_str() == metadata_key {
                    entry.metadata = ConnectionMetadata::from_json(&row.value);
                }
            }
            found.insert(provider, entry);
        }
        Ok(found)
    }

    /// Stores a new connection: credentials and metadata in one transaction.
    ///
    /// # Errors
    /// [`VaultWriteError`].
    pub async fn store_connection(
        &self,
        user: UserId,
        provider: ProviderId,
        grant: &Grant,
        metadata: &ConnectionMetadata,
    ) -> Result<(), VaultWriteError> {
        let writes = [
            self.sealed_write(user, provider, grant)?,
            self.clear_write(provider, metadata)?,
        ];
        self.repo
            .upsert_many(user, &writes, self.limits.max_settings_per_user)
            .await?;
        Ok(())
    }

    /// Replaces the credentials if their row still has `version`; returns the new version.
    ///
    /// # Errors
    /// [`VaultWriteError::VersionConflict`] when the row changed (or vanished) meanwhile.
    pub async fn replace_grant(
        &self,
        user: UserId,
        provider: ProviderId,
        grant: &Grant,
        version: i64,
    ) -> Result<i64, VaultWriteError> {
        let write = self.sealed_write(user, provider, grant)?;
        let outcome = self
            .repo
            .upsert(
                user,
                &write,
                Precondition::Version(version),
                self.limits.max_settings_per_user,
            )
            .await?;
        Ok(outcome.setting.version)
    }

    /// Writes the metadata, whatever is there.
    ///
    /// # Errors
    /// [`VaultWriteError`].
    pub async fn write_metadata(
        &self,
        user: UserId,
        provider: ProviderId,
        metadata: &ConnectionMetadata,
    ) -> Result<(), VaultWriteError> {
        let write = self.clear_write(provider, metadata)?;
        self.repo
            .upsert(
                user,
                &write,
                Precondition::Any,
                self.limits.max_settings_per_user,
            )
            .await?;
        Ok(())
    }

    /// Removes every row of the connection (credentials, legacy copies, metadata). Returns
    /// whether anything was removed. The per-service sync settings are kept: they are the
    /// user's preferences, not part of the connection.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn remove(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<bool, RepositoryError> {
        let spec = provider.spec();
        let metadata = metadata_key(provider);
        let names = std::iter::once(spec.storage_key)
            .chain(spec.legacy_keys.iter().copied())
            .chain(std::iter::once(metadata.as_str()));
        let mut removed = false;
        for name in names {
            match self.repo.delete(user, &key(name)?, Precondition::Any).await {
                Ok(()) => removed = true,
                Err(SettingDeleteError::NotFound | SettingDeleteError::VersionConflict { .. }) => {}
                Err(SettingDeleteError::Repository(e)) => return Err(e),
            }
        }
        Ok(removed)
    }

    fn sealed_write(
        &self,
        user: UserId,
        provider: ProviderId,
        grant: &Grant,
    ) -> Result<SettingWrite, VaultWriteError> {
        let key = storage_key(provider)?;
        let plaintext = grant.to_stored_json();
        self.validate(&key, &plaintext)?;
        let secret = SecretValue::from_json(&plaintext);
        drop(plaintext);
        let envelope = self.cipher.seal(user, &key, secret.expose_bytes())?;
        Ok(SettingWrite {
            key,
            value: envelope.to_value(),
            description: None,
            category: Some(Category::from_stored(CATEGORY.to_owned())),
            data_type: DataType::Encrypted,
        })
    }

    fn clear_write(
        &self,
        provider: ProviderId,
        metadata: &ConnectionMetadata,
    ) -> Result<SettingWrite, VaultWriteError> {
        let key = key(&metadata_key(provider))?;
        let value = metadata.to_json();
        self.validate(&key, &value)?;
        Ok(SettingWrite {
            key,
            value,
            description: None,
            category: Some(Category::from_stored(CATEGORY.to_owned())),
            data_type: DataType::Json,
        })
    }

    fn validate(&self, key: &SettingKey, value: &Value) -> Result<(), VaultWriteError> {
        match self.registry.lookup(key) {
            Some(entry) => entry.validate(value).map_err(VaultWriteError::Invalid),
            None => Ok(()),
        }
    }
}

fn storage_key(provider: ProviderId) -> Result<SettingKey, RepositoryError> {
    key(provider.spec().storage_key)
}

/// The catalogue's keys are valid by construction (a unit test parses them all); this only
/// turns the impossible failure into an error instead of a panic.
fn key(name: &str) -> Result<SettingKey, RepositoryError> {
    SettingKey::parse(name).map_err(|e| {
        RepositoryError::Unknown(anyhow::anyhow!(
            "catalogue key {name:?} is invalid: {}",
            e.message
        ))
    })
}
