//! The deployment layer's use cases: read it, set or remove an operator's value of a key.

use std::collections::BTreeSet;

use serde_json::{Value, value::RawValue};

use super::write_pipeline::{PlainPrepareError, SettingInput, WritePipeline};
use crate::{
    audit::Actor,
    defaults::{DeploymentDefaults, DeploymentSetting},
    error::{FieldError, RepositoryError, ValidationErrors},
    integrations::{ProviderId, managing_provider},
    ports::{DefaultsRepository, SecretCipher},
    preferences::{PreferenceField, PreferenceOverrides, resolve_preferences},
    settings::SettingKey,
};
use std::sync::Arc;

/// Where the read use cases find the deployment layer: a store, or none (every value then
/// comes from the user layer or the builtin defaults).
#[derive(Clone, Default)]
pub(crate) struct DeploymentSource(Option<Arc<dyn DefaultsRepository>>);

impl DeploymentSource {
    pub(crate) fn new(defaults: Arc<dyn DefaultsRepository>) -> Self {
        Self(Some(defaults))
    }

    /// Whether a deployment layer exists at all.
    pub(crate) fn is_configured(&self) -> bool {
        self.0.is_some()
    }

    /// The layer; empty without a store.
    pub(crate) async fn load(&self) -> Result<Arc<DeploymentDefaults>, RepositoryError> {
        match &self.0 {
            Some(defaults) => defaults.load().await,
            None => Ok(Arc::default()),
        }
    }
}

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

impl<D: DefaultsRepository, C: SecretCipher> DefaultsService<D, C> {
    /// Changes the preferences of the deployment layer (audited as `defaults_write`):
    /// `values` is a merge patch of its fields (`null` stops setting a field), `enforced`,
    /// when given, replaces the list of enforced fields. Returns the layer after the write.
    ///
    /// # Errors
    /// `Validation` listing every bad member, or `Repository`.
    pub async fn patch_preferences(
        &self,
        actor: &Actor,
        values: Option<&Value>,
        enforced: Option<&[String]>,
    ) -> Result<Arc<DeploymentDefaults>, DefaultsError> {
        let enforced = enforced.map(parse_fields).transpose()?;
        for _ in 0..WRITE_ATTEMPTS {
            let layer = self.repo.load().await?;
            let current = &layer.preferences;
            let mut next = current.clone();
            if let Some(patch) = values {
                let seen = resolve_preferences(current, &PreferenceOverrides::default(), None);
                next.values = current
                    .values
                    .merge_patch(patch, &seen.preferences)
                    .map_err(DefaultsError::Validation)?;
            }
            if let Some(enforced) = &enforced {
                next.enforced = enforced.clone();
            }
            if self
                .repo
                .put_preferences(&next, layer.preferences_version, actor)
                .await?
            {
                return Ok(self.repo.load().await?);
            }
        }
        Err(DefaultsError::Repository(RepositoryError::Unknown(
            anyhow::anyhow!("the deployment's preferences kept changing under the write"),
        )))
    }
}

/// How often a write of the deployment's preferences is tried when another write comes first.
const WRITE_ATTEMPTS: usize = 3;

/// Field names, every unknown one reported.
fn parse_fields(names: &[String]) -> Result<BTreeSet<PreferenceField>, DefaultsError> {
    let mut errors = ValidationErrors::new();
    let mut fields = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        match PreferenceField::from_name(name) {
            Some(field) => {
                fields.insert(field);
            }
            None => errors.push(FieldError::new(
                format!("enforced[{i}]"),
                "unknown_field",
                "not a preference field",
            )),
        }
    }
    errors
        .into_result(fields)
        .map_err(DefaultsError::Validation)
}

fn parse_key(key: &str) -> Result<SettingKey, DefaultsError> {
    SettingKey::parse(key).map_err(|e| DefaultsError::Validation(ValidationErrors::single(e)))
}
