//! The deployment layer's use cases: read it, set or remove an operator's value of a key.

use serde_json::value::RawValue;

use super::write_pipeline::{PlainPrepareError, SettingInput, WritePipeline};
use crate::{
    audit::Actor,
    defaults::{DeploymentDefaults, DeploymentSetting},
    error::{RepositoryError, ValidationErrors},
    integrations::{ProviderId, managing_provider},
    ports::{DefaultsRepository, SecretCipher},
    settings::SettingKey,
};
use std::sync::Arc;

/// Why the deployment layer could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum DefaultsError {
    /// Every problem with the input.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// A secret: secrets exist only in the user layer.
    #[error("secrets exist only in the user layer")]
    NotLayerable,
    /// The key belongs to an integration.
    #[error("the key {key} is managed by the {provider} integration")]
    ManagedByIntegration {
        /// The key.
        key: SettingKey,
        /// The integration that owns it.
        provider: ProviderId,
    },
    /// The deployment sets no value for the key.
    #[error("the deployment sets no value for this key")]
    NotFound,
    /// The store (or its audit) failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// The deployment layer's use cases.
pub struct DefaultsService<D, C> {
    repo: D,
    pipeline: WritePipeline<C>,
}

impl<D: DefaultsRepository, C: SecretCipher> DefaultsService<D, C> {
    /// A service over the layer's store; values obey `pipeline`'s rules.
    pub fn new(repo: D, pipeline: WritePipeline<C>) -> Self {
        Self { repo, pipeline }
    }

    /// The whole layer.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn get(&self) -> Result<Arc<DeploymentDefaults>, RepositoryError> {
        self.repo.load().await
    }

    /// Sets the deployment's value of `key` (audited as `defaults_write`). The value obeys
    /// the rules of every stored setting; a secret is refused.
    ///
    /// # Errors
    /// `Validation`, `NotLayerable`, `ManagedByIntegration` or `Repository`.
    pub async fn put_setting(
        &self,
        actor: &Actor,
        key: &str,
        value: Option<Box<RawValue>>,
        enforced: bool,
    ) -> Result<(DeploymentSetting, bool), DefaultsError> {
        let key_parsed = parse_key(key)?;
        if let Some(provider) = managing_provider(key) {
            return Err(DefaultsError::ManagedByIntegration {
                key: key_parsed,
                provider,
            });
        }
        let input = SettingInput {
            key: key.to_owned(),
            value,
            ..SettingInput::default()
        };
        let write = self.pipeline.prepare_plain(input).map_err(|e| match e {
            PlainPrepareError::Invalid(e) => DefaultsError::Validation(e),
            PlainPrepareError::NotLayerable => DefaultsError::NotLayerable,
        })?;
        Ok(self.repo.put_setting(&write, enforced, actor).await?)
    }

    /// Removes the deployment's value of `key` (audited as `defaults_write`).
    ///
    /// # Errors
    /// `Validation` for a malformed key, `NotFound`, or `Repository`.
    pub async fn delete_setting(&self, actor: &Actor, key: &str) -> Result<(), DefaultsError> {
        let key = parse_key(key)?;
        if self.repo.delete_setting(&key, actor).await? {
            Ok(())
        } else {
            Err(DefaultsError::NotFound)
        }
    }
}

fn parse_key(key: &str) -> Result<SettingKey, DefaultsError> {
    SettingKey::parse(key).map_err(|e| DefaultsError::Validation(ValidationErrors::single(e)))
}
