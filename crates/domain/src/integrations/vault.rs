//! `CredentialVault`: the settings rows of a connection — the sealed credentials under the
//! provider's storage key and the clear metadata under `integrations.{provider}.connection` —
//! read, written (validated against the registry, sealed, version-checked) and removed; and
//! the sealing of the PKCE verifier of a pending authorization. The cipher stays inside.
//!
//! Writes go through the (cached) settings repository, so local caches are invalidated at
//! once. Reads that decide a refresh or a metadata write (`read_current`,
//! `current_metadata`, `update_metadata`) go to the store itself when the vault has an
//! uncached reader: another instance's token rotation must be seen even while the change
//! feed that would invalidate the cache is down.

use std::collections::HashMap;

use secrecy::{ExposeSecret, SecretString};

use super::{
    catalogue::{ProviderId, metadata_key},
    connection::ConnectionMetadata,
    credentials::{Grant, MalformedCredentials},
};
use crate::{
    error::{RepositoryError, ValidationErrors},
    history::ChangeOrigin,
    ids::UserId,
    ports::{SecretCipher, SettingDeleteError, SettingWriteError, SettingsRepository},
    secrets::{CipherError, Envelope, SecretValue},
    services::{PrepareError, SettingInput, WritePipeline},
    settings::{
        Category, DataType, Page, Precondition, QuotaExceeded, SettingKey, SettingWrite,
        StoredValue,
    },
};

/// The category every row of a connection is stored under.
const CATEGORY: &str = "integrations";

/// How often a metadata write is tried when the metadata row changes under it.
const METADATA_ATTEMPTS: usize = 3;

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
    /// The value breaks a rule of every stored setting, such as its key's schema (a
    /// provider answer missing a field the provider requires, e.g. no refresh token).
    #[error("the credentials do not satisfy the rules of their key: {0}")]
    Invalid(ValidationErrors),
    /// The row changed since it was read.
    #[error("the credentials were changed concurrently")]
    VersionConflict,
    /// The write would take the user over a per-user quota.
    #[error("{0}")]
    QuotaExceeded(QuotaExceeded),
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

impl From<PrepareError> for VaultWriteError {
    fn from(e: PrepareError) -> Self {
        match e {
            PrepareError::Invalid(e) => Self::Invalid(e),
            PrepareError::Cipher(e) => Self::Cipher(e),
        }
    }
}

impl From<SettingWriteError> for VaultWriteError {
    fn from(e: SettingWriteError) -> Self {
        match e {
            SettingWriteError::VersionConflict { .. } => Self::VersionConflict,
            SettingWriteError::QuotaExceeded(q) => Self::QuotaExceeded(q),
            SettingWriteError::UserNotFound => Self::UserNotFound,
            SettingWriteError::Repository(r) => Self::Repository(r),
        }
    }
}

/// What a metadata update did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataUpdate {
    /// The metadata was written.
    Written,
    /// Not written: the credentials are gone or were replaced (a disconnect or a new
    /// connection since they were read), or the metadata kept changing under the write.
    Skipped,
}

/// The rows of every connection of every user.
pub struct CredentialVault<R, C> {
    repo: R,
    /// Reads that must not be served from a cache; `None`: `repo` reads the store itself.
    uncached: Option<R>,
    pipeline: WritePipeline<C>,
}

impl<R: SettingsRepository, C: SecretCipher> CredentialVault<R, C> {
    /// A vault over the settings store, writing through `pipeline` (the rules of every
    /// stored setting, the cipher, the per-user quota).
    pub fn new(repo: R, pipeline: WritePipeline<C>) -> Self {
        Self {
            repo,
            uncached: None,
            pipeline,
        }
    }

    /// Reads that decide a refresh or a metadata write use `uncached` (the store without
    /// the cache that decorates `repo`); writes still go through `repo`.
    #[must_use]
    pub fn with_uncached_reads(mut self, uncached: R) -> Self {
        self.uncached = Some(uncached);
        self
    }

    /// The repository that reads the store itself.
    fn store(&self) -> &R {
        self.uncached.as_ref().unwrap_or(&self.repo)
    }

    /// Seals the PKCE verifier of a pending authorization for `user`, bound to a key of its
    /// own so it cannot be opened as anything else.
    ///
    /// # Errors
    /// When sealing fails.
    pub fn seal_pkce(
        &self,
        user: UserId,
        provider: ProviderId,
        verifier: &SecretString,
    ) -> Result<Envelope, CipherError> {
        self.pipeline.cipher().seal(
            user,
            &pkce_key(provider)?,
            verifier.expose_secret().as_bytes(),
        )
    }

    /// Opens what [`Self::seal_pkce`] sealed.
    ///
    /// # Errors
    /// When the envelope does not open for this user and provider.
    pub fn open_pkce(
        &self,
        user: UserId,
        provider: ProviderId,
        sealed: &Envelope,
    ) -> Result<SecretString, CipherError> {
        let bytes = SecretValue::from_bytes(self.pipeline.cipher().open(
            user,
            &pkce_key(provider)?,
            sealed,
        )?);
        let verifier =
            std::str::from_utf8(bytes.expose_bytes()).map_err(|_| CipherError::Malformed)?;
        Ok(SecretString::from(verifier.to_owned()))
    }

    /// The decrypted credentials of a connection, if stored (may be served from a cache).
    ///
    /// # Errors
    /// [`VaultReadError`].
    pub async fn read(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<StoredGrant>, VaultReadError> {
        self.read_from(&self.repo, user, provider).await
    }

    /// As [`Self::read`], from the store itself (never a cache).
    ///
    /// # Errors
    /// [`VaultReadError`].
    pub async fn read_current(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<StoredGrant>, VaultReadError> {
        self.read_from(self.store(), user, provider).await
    }

    async fn read_from(
        &self,
        repo: &R,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<StoredGrant>, VaultReadError> {
        let key = storage_key(provider)?;
        let Some(setting) = repo.get(user, &key).await? else {
            return Ok(None);
        };
        let StoredValue::Sealed(envelope) = &setting.value else {
            // Only the service writes this key sealed; a clear value is not ours to use.
            return Err(MalformedCredentials { provider }.into());
        };
        let plaintext = SecretValue::from_bytes(self.pipeline.cipher().open(user, &key, envelope)?);
        let value = plaintext
            .expose_json()
            .map_err(|_| MalformedCredentials { provider })?;
        let grant = Grant::from_stored_json(provider, &value)?;
        Ok(Some(StoredGrant {
            grant,
            version: setting.version,
        }))
    }

    /// The connection metadata, if stored and readable, from the store itself (never a
    /// cache).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn current_metadata(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<ConnectionMetadata>, RepositoryError> {
        let key = setting_key(&metadata_key(provider))?;
        Ok(self
            .store()
            .get(user, &key)
            .await?
            .and_then(|s| s.value.plain().and_then(ConnectionMetadata::from_json)))
    }

    /// Rewrites the metadata with `update` (given what is stored, if readable), but only
    /// while the credentials row still has `credentials_version`: a disconnect or a new
    /// connection since the credentials were read wins, so a stale writer can neither mark a
    /// fresh connection nor re-create the metadata of a removed one. The write carries the
    /// metadata row's own version; when that row changes meanwhile the update is tried
    /// again, a few times.
    ///
    /// # Errors
    /// [`VaultWriteError`] (never `VersionConflict`: a lost race is
    /// [`MetadataUpdate::Skipped`]).
    pub async fn update_metadata(
        &self,
        user: UserId,
        provider: ProviderId,
        credentials_version: i64,
        mut update: impl FnMut(Option<ConnectionMetadata>) -> ConnectionMetadata + Send,
    ) -> Result<MetadataUpdate, VaultWriteError> {
        let key = setting_key(&metadata_key(provider))?;
        for _ in 0..METADATA_ATTEMPTS {
            // The metadata row first, then the credentials: a connection made after this read
            // has either changed the credentials' version (seen below) or the metadata row's
            // (the write conflicts), since it writes both in one transaction.
            let row = self.store().get(user, &key).await?;
            if !self
                .credentials_at(user, provider, credentials_version)
                .await?
            {
                return Ok(MetadataUpdate::Skipped);
            }
            let expected = row
                .as_ref()
                .map_or(Precondition::Absent, |r| Precondition::Version(r.version));
            let metadata =
                update(row.and_then(|r| r.value.plain().and_then(ConnectionMetadata::from_json)));
            let write = self.clear_write(user, provider, &metadata)?;
            let outcome = match self
                .repo
                .upsert(user, &write, expected, self.pipeline.limits().quota())
                .await
            {
                Ok(outcome) => outcome,
                Err(SettingWriteError::VersionConflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            if outcome.created
                && !self
                    .credentials_at(user, provider, credentials_version)
                    .await?
            {
                // A disconnect removed the credentials between the check and this insert:
                // take the row back rather than leave metadata without a connection.
                let undo = self
                    .repo
                    .delete(
                        user,
                        &key,
                        Precondition::Version(outcome.setting.version),
                        ChangeOrigin::Integration,
                    )
                    .await;
                return match undo {
                    Ok(())
                    | Err(
                        SettingDeleteError::NotFound | SettingDeleteError::VersionConflict { .. },
                    ) => Ok(MetadataUpdate::Skipped),
                    Err(SettingDeleteError::Repository(e)) => Err(e.into()),
                };
            }
            return Ok(MetadataUpdate::Written);
        }
        Ok(MetadataUpdate::Skipped)
    }

    /// Whether the credentials row exists with `version` (in the store itself).
    async fn credentials_at(
        &self,
        user: UserId,
        provider: ProviderId,
        version: i64,
    ) -> Result<bool, RepositoryError> {
        let key = storage_key(provider)?;
        Ok(self
            .store()
            .get(user, &key)
            .await?
            .is_some_and(|row| row.version == version))
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
            .list(
                user,
                Some(Category::from_stored(CATEGORY.to_owned())),
                Page::first(Page::MAX_LIMIT),
            )
            .await?;
        let mut found: HashMap<ProviderId, StoredConnection> = HashMap::new();
        for provider in ProviderId::ALL {
            let spec = provider.spec();
            let metadata_key = metadata_key(provider);
            let mut entry = StoredConnection::default();
            for row in &rows {
                if row.key.as_str() == spec.storage_key {
                    entry.has_credentials = row.value.is_sealed();
                } else if row.key.as_str() == metadata_key {
                    entry.metadata = row.value.plain().and_then(ConnectionMetadata::from_json);
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
            self.clear_write(user, provider, metadata)?,
        ];
        self.repo
            .upsert_many(user, &writes, self.pipeline.limits().quota())
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
                self.pipeline.limits().quota(),
            )
            .await?;
        Ok(outcome.setting.version)
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
            match self
                .repo
                .delete(
                    user,
                    &setting_key(name)?,
                    Precondition::Any,
                    ChangeOrigin::Integration,
                )
                .await
            {
                Ok(()) => removed = true,
                Err(SettingDeleteError::NotFound | SettingDeleteError::VersionConflict { .. }) => {}
                Err(SettingDeleteError::Repository(e)) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// The credentials row, through the write pipeline: validated like any setting and
    /// sealed for its cell.
    fn sealed_write(
        &self,
        user: UserId,
        provider: ProviderId,
        grant: &Grant,
    ) -> Result<SettingWrite, VaultWriteError> {
        let plaintext = grant.to_stored_json();
        self.write(
            user,
            provider.spec().storage_key,
            &plaintext,
            DataType::Encrypted,
        )
    }

    /// The metadata row, through the write pipeline.
    fn clear_write(
        &self,
        user: UserId,
        provider: ProviderId,
        metadata: &ConnectionMetadata,
    ) -> Result<SettingWrite, VaultWriteError> {
        let value = metadata.to_json();
        self.write(user, &metadata_key(provider), &value, DataType::Json)
    }

    fn write(
        &self,
        user: UserId,
        key: &str,
        value: &serde_json::Value,
        data_type: DataType,
    ) -> Result<SettingWrite, VaultWriteError> {
        // Serializing a tree of plain JSON does not fail.
        let text = serde_json::value::to_raw_value(value).map_err(|_| CipherError::Malformed)?;
        let input = SettingInput {
            key: key.to_owned(),
            value: Some(text),
            description: None,
            // The registry files every key of a connection under `integrations`, as it
            // would a client's write of the same key.
            category: None,
            data_type: Some(data_type.as_str().to_owned()),
        };
        let mut write = self.pipeline.prepare(user, input)?;
        write.origin = ChangeOrigin::Integration;
        Ok(write)
    }
}

fn storage_key(provider: ProviderId) -> Result<SettingKey, RepositoryError> {
    setting_key(provider.spec().storage_key)
}

/// The key the PKCE verifier is sealed for. It is never stored as a setting: it only binds
/// the ciphertext to its purpose, user and provider.
fn pkce_key(provider: ProviderId) -> Result<SettingKey, CipherError> {
    setting_key(&format!("integrations.{}.pkce_verifier", provider.as_str()))
        .map_err(|e| CipherError::Internal(e.to_string()))
}

/// The vault's keys come from the catalogue's slugs and keys, valid by construction (a unit
/// test parses them all); this only turns the impossible failure into an error instead of a
/// panic.
fn setting_key(name: &str) -> Result<SettingKey, RepositoryError> {
    SettingKey::parse(name).map_err(|e| {
        RepositoryError::Unknown(anyhow::anyhow!("key {name:?} is invalid: {}", e.message))
    })
}
