//! The device layer's use cases: a device's override of a setting (get, put, delete), the
//! user's devices, and forgetting a device; and, for the effective view, a device's overrides
//! as stored.
//!
//! A device's override obeys the rules of any stored setting (`WritePipeline::prepare_plain`)
//! but is never a secret: a secret is sealed for the user's own cell. Keys an integration
//! manages and keys the deployment enforces are refused as for the user's own writes.

use std::sync::Arc;

use super::{
    history::{HistoryError, HistorySource, restore_input},
    settings::{DeleteSettingError, GetSettingError, SetSettingError, refuse_managed},
    write_pipeline::{PlainPrepareError, SettingInput, WritePipeline},
};
use crate::{
    devices::{DeviceId, DeviceSummary},
    error::{RepositoryError, ValidationErrors},
    history::{ChangeOrigin, HistoryPage, HistoryTarget},
    ids::UserId,
    integrations::managing_provider,
    ports::{DefaultsRepository, DeviceSettingsRepository, HistoryRepository, SecretCipher},
    settings::{Precondition, Setting, SettingKey, SettingView},
};

/// Why a device could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteDeviceError {
    /// The device id is malformed.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// The device has no overrides.
    #[error("the device has no overrides")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// The device layer's use cases.
pub struct DevicesService<R, C> {
    repo: R,
    pipeline: WritePipeline<C>,
    /// The deployment layer: a key it enforces refuses device writes and deletes.
    defaults: Arc<dyn DefaultsRepository>,
    /// The kept versions of the devices' overrides.
    history: HistorySource,
}

impl<R: DeviceSettingsRepository, C: SecretCipher> DevicesService<R, C> {
    /// A service over the devices' store; values obey `pipeline`'s rules, and `defaults` says
    /// which keys are enforced.
    pub fn new(repo: R, pipeline: WritePipeline<C>, defaults: Arc<dyn DefaultsRepository>) -> Self {
        Self {
            repo,
            pipeline,
            defaults,
            history: HistorySource::default(),
        }
    }

    /// Reads history (and restores from it) through `history`.
    #[must_use]
    pub fn with_history(mut self, history: Arc<dyn HistoryRepository>) -> Self {
        self.history = HistorySource::new(history);
        self
    }

    /// The kept versions of the device's override of a key, newest first.
    ///
    /// # Errors
    /// `Validation` for a malformed device id, key or limit; `Repository`.
    pub async fn history(
        &self,
        user: UserId,
        device: &str,
        key: &str,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Result<HistoryPage, HistoryError> {
        let (device, key) = parse_cell(device, key).map_err(HistoryError::Validation)?;
        self.history
            .page(
                user,
                &HistoryTarget::setting(Some(device), key),
                before,
                limit,
            )
            .await
    }

    /// Writes the device's override kept at `version` again, as a new version (recorded as
    /// `restored`).
    ///
    /// # Errors
    /// `NotRestorable`, or as [`Self::set_setting`].
    pub async fn restore(
        &self,
        user: UserId,
        device: &str,
        key: &str,
        version: i64,
        expected: Precondition,
    ) -> Result<(SettingView, bool), SetSettingError> {
        let (device_id, key) = parse_cell(device, key).map_err(SetSettingError::Validation)?;
        let entry = self
            .history
            .restorable(
                user,
                &HistoryTarget::setting(Some(device_id), key.clone()),
                version,
            )
            .await
            .map_err(SetSettingError::Repository)?
            .map_err(SetSettingError::NotRestorable)?;
        self.write_setting(
            user,
            device,
            restore_input(&key, &entry),
            expected,
            ChangeOrigin::Restore,
        )
        .await
    }

    /// The device's own override of a key (not the value in effect).
    ///
    /// # Errors
    /// `Validation` for a malformed device id or key (both reported), `NotFound` when the
    /// device does not override the key, or `Repository`.
    pub async fn get_setting(
        &self,
        user: UserId,
        device: &str,
        key: &str,
    ) -> Result<SettingView, GetSettingError> {
        let (device, key) = parse_cell(device, key).map_err(GetSettingError::Validation)?;
        self.repo
            .get(user, &device, &key)
            .await?
            .map(Setting::redacted)
            .ok_or(GetSettingError::NotFound)
    }

    /// Creates or replaces the device's override of a key. Returns it and whether it was
    /// created.
    ///
    /// # Errors
    /// `Validation` (the device id, or every problem of the input), `ManagedByIntegration`,
    /// `EnforcedByDeployment`, `NotLayerable` for a secret, `VersionConflict`,
    /// `QuotaExceeded` (the user's settings, bytes or devices), `UserNotFound`, `Repository`.
    pub async fn set_setting(
        &self,
        user: UserId,
        device: &str,
        input: SettingInput,
        expected: Precondition,
    ) -> Result<(SettingView, bool), SetSettingError> {
        self.write_setting(user, device, input, expected, ChangeOrigin::User)
            .await
    }

    async fn write_setting(
        &self,
        user: UserId,
        device: &str,
        input: SettingInput,
        expected: Precondition,
        origin: ChangeOrigin,
    ) -> Result<(SettingView, bool), SetSettingError> {
        let device = DeviceId::parse(device)
            .map_err(|e| SetSettingError::Validation(ValidationErrors::single(e)))?;
        refuse_managed(&input.key)?;
        // A malformed key is never enforced: the pipeline reports it below.
        if let Ok(key) = SettingKey::parse(&input.key)
            && self
                .enforces(&key)
                .await
                .map_err(SetSettingError::Repository)?
        {
            return Err(SetSettingError::EnforcedByDeployment { key });
        }
        let mut write = self.pipeline.prepare_plain(input).map_err(|e| match e {
            PlainPrepareError::Invalid(e) => SetSettingError::Validation(e),
            PlainPrepareError::NotLayerable => SetSettingError::NotLayerable,
        })?;
        write.origin = origin;
        let outcome = self
            .repo
            .upsert(
                user,
                &device,
                &write,
                expected,
                self.pipeline.limits().quota(),
            )
            .await?;
        Ok((outcome.setting.redacted(), outcome.created))
    }

    /// Deletes the device's override of a key: the device inherits the user's value again.
    ///
    /// # Errors
    /// `Validation`, `ManagedByIntegration`, `EnforcedByDeployment`, `NotFound`,
    /// `VersionConflict`, or `Repository`.
    pub async fn delete_setting(
        &self,
        user: UserId,
        device: &str,
        key: &str,
        expected: Precondition,
    ) -> Result<(), DeleteSettingError> {
        let (device, key) = parse_cell(device, key).map_err(DeleteSettingError::Validation)?;
        if let Some(provider) = managing_provider(key.as_str()) {
            return Err(DeleteSettingError::ManagedByIntegration { key, provider });
        }
        if self.enforces(&key).await? {
            return Err(DeleteSettingError::EnforcedByDeployment { key });
        }
        let must_exist = expected == Precondition::Exists;
        self.repo
            .delete(user, &device, &key, expected)
            .await
            .map_err(|e| DeleteSettingError::from_store(e, must_exist))
    }

    /// The user's devices that override anything, ordered by id.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn devices(&self, user: UserId) -> Result<Vec<DeviceSummary>, RepositoryError> {
        self.repo.devices(user).await
    }

    /// Forgets a device: every override it holds is deleted, enforced keys' included (the
    /// device is gone, not its value changed).
    ///
    /// # Errors
    /// `Validation` for a malformed id, `NotFound` when it overrides nothing, `Repository`.
    pub async fn delete_device(&self, user: UserId, device: &str) -> Result<(), DeleteDeviceError> {
        let device = DeviceId::parse(device)
            .map_err(|e| DeleteDeviceError::Validation(ValidationErrors::single(e)))?;
        if self.repo.delete_device(user, &device).await? {
            Ok(())
        } else {
            Err(DeleteDeviceError::NotFound)
        }
    }

    /// The device's override of `key` as stored, if any: the device layer of an effective read.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn device_setting(
        &self,
        user: UserId,
        device: &DeviceId,
        key: &SettingKey,
    ) -> Result<Option<Setting>, RepositoryError> {
        self.repo.get(user, device, key).await
    }

    /// Every override of the device as stored, ordered by key: the device layer of an
    /// effective listing.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn device_settings(
        &self,
        user: UserId,
        device: &DeviceId,
    ) -> Result<Vec<Setting>, RepositoryError> {
        self.repo.list(user, device).await
    }

    /// Whether the deployment enforces `key`.
    async fn enforces(&self, key: &SettingKey) -> Result<bool, RepositoryError> {
        Ok(self.defaults.load().await?.enforces(key.as_str()))
    }
}

/// A device id and a key from a path, every problem of both reported.
fn parse_cell(device: &str, key: &str) -> Result<(DeviceId, SettingKey), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let device = errors.collect(DeviceId::parse(device));
    let key = errors.collect(SettingKey::parse(key));
    match (device, key) {
        (Some(device), Some(key)) => Ok((device, key)),
        _ => Err(errors),
    }
}
