//! Export and import of everything a user stored.
//!
//! The export is one document (see [`crate::portability`]). An import validates every item
//! of a document by the rules of a normal write and reports every problem at once; it then
//! plans, item by item, what would be created, updated, deleted or left unchanged against the
//! user's data as it is, and writes the plan in one transaction, each write under the
//! precondition of the state it was planned on.
//!
//! Never imported: secrets (the document names them only; a value is refused), integrations
//! (a connection needs the user at the provider), keys an integration manages and keys or
//! preference fields the deployment enforces (refused, as for a normal write). A replace
//! leaves all of those where they are.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};

use serde_json::Value;
use time::OffsetDateTime;

use super::{
    defaults::DeploymentSource,
    write_pipeline::{PlainPrepareError, PrepareError, SettingInput, WritePipeline},
};
use crate::{
    audit::{Actor, AuditEntry},
    defaults::DeploymentDefaults,
    devices::DeviceId,
    error::{FieldError, RepositoryError, ValidationErrors},
    history::ChangeOrigin,
    ids::UserId,
    integrations::managing_provider,
    portability::{
        DeviceChanges, EXPORT_FORMAT, EXPORT_FORMAT_VERSION, ExportDocument, ExportedDevice,
        ExportedIntegration, ExportedSecret, ExportedSetting, ImportChanges, ImportDocument,
        ImportMode, ImportPlan, ImportedSetting,
    },
    ports::{
        AuditLog, DefaultsRepository, DeviceSettingsRepository, ImportRepository,
        PreferencesRepository, SecretCipher, SettingWriteError, SettingsRepository,
    },
    preferences::PreferenceOverrides,
    settings::{Page, Precondition, QuotaExceeded, Setting, SettingKey, SettingWrite},
};

/// Why an import was refused.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Every problem of the document.
    #[error("invalid document: {0}")]
    Validation(ValidationErrors),
    /// The user's data changed between the plan and the write: nothing was written.
    #[error("the user's data changed during the import")]
    Conflict,
    /// The result would take the user over a quota: nothing was written.
    #[error("{0}")]
    QuotaExceeded(QuotaExceeded),
    /// The user does not exist (external provisioning).
    #[error("the user does not exist")]
    UserNotFound,
    /// The store or the audit log failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

impl From<SettingWriteError> for ImportError {
    fn from(e: SettingWriteError) -> Self {
        match e {
            SettingWriteError::VersionConflict { .. } => Self::Conflict,
            SettingWriteError::QuotaExceeded(q) => Self::QuotaExceeded(q),
            SettingWriteError::UserNotFound => Self::UserNotFound,
            SettingWriteError::Repository(r) => Self::Repository(r),
        }
    }
}

/// The stores an export reads and an import writes.
pub struct PortabilityPorts {
    /// The user's own settings.
    pub settings: Arc<dyn SettingsRepository>,
    /// The devices' overrides.
    pub devices: Arc<dyn DeviceSettingsRepository>,
    /// The user's own preferences.
    pub preferences: Arc<dyn PreferencesRepository>,
    /// The deployment layer (what it enforces is never imported).
    pub defaults: Arc<dyn DefaultsRepository>,
    /// Support's exports are audited.
    pub audit: Arc<dyn AuditLog>,
    /// Writes an import in one transaction.
    pub importer: Arc<dyn ImportRepository>,
}

/// Export and import.
pub struct PortabilityService<C> {
    ports: PortabilityPorts,
    defaults: DeploymentSource,
    pipeline: WritePipeline<C>,
}

/// What a user holds now, as an import compares it.
struct Holdings {
    settings: BTreeMap<SettingKey, Setting>,
    preferences: (PreferenceOverrides, i64),
    devices: BTreeMap<DeviceId, DeviceHoldings>,
}

struct DeviceHoldings {
    settings: BTreeMap<SettingKey, Setting>,
    /// The overrides and their version; version 0: none stored.
    preferences: (PreferenceOverrides, i64),
}

impl<C: SecretCipher> PortabilityService<C> {
    /// A service over `ports`; imported values obey `pipeline`'s rules.
    pub fn new(ports: PortabilityPorts, pipeline: WritePipeline<C>) -> Self {
        Self {
            defaults: DeploymentSource::new(Arc::clone(&ports.defaults)),
            ports,
            pipeline,
        }
    }

    /// Everything `user` stored, with `integrations` (their connections, from the
    /// integrations service).
    ///
    /// # Errors
    /// When a store fails.
    pub async fn export(
        &self,
        user: UserId,
        integrations: Vec<ExportedIntegration>,
    ) -> Result<ExportDocument, RepositoryError> {
        let holdings = self.holdings(user).await?;
        let mut settings = Vec::new();
        let mut secrets = Vec::new();
        for setting in holdings.settings.into_values() {
            if managing_provider(setting.key.as_str()).is_some() {
                continue;
            }
            match setting.value.plain() {
                Some(_) => settings.push(exported(setting)),
                None => secrets.push(ExportedSecret {
                    key: setting.key.as_str().to_owned(),
                    updated_at: setting.updated_at,
                }),
            }
        }
        let devices = holdings
            .devices
            .into_iter()
            .map(|(device, held)| {
                let exported_device = ExportedDevice {
                    preferences: held.preferences.0.to_document(),
                    settings: held.settings.into_values().map(exported).collect(),
                };
                (device.as_str().to_owned(), exported_device)
            })
            .collect();
        Ok(ExportDocument {
            format: EXPORT_FORMAT,
            format_version: EXPORT_FORMAT_VERSION,
            exported_at: OffsetDateTime::now_utc(),
            user_id: user.as_uuid(),
            preferences: holdings.preferences.0.to_document(),
            devices,
            settings,
            secrets,
            integrations,
        })
    }

    /// Support's export of `subject` for an access request: audited first.
    ///
    /// # Errors
    /// As [`Self::export`]; an audit failure refuses it.
    pub async fn export_as_admin(
        &self,
        actor: &Actor,
        subject: UserId,
        integrations: Vec<ExportedIntegration>,
    ) -> Result<ExportDocument, RepositoryError> {
        self.ports
            .audit
            .record(AuditEntry::admin_read(actor, subject))
            .await?;
        self.export(subject, integrations).await
    }

    /// Validates `document` and plans its import against what `user` holds now. Nothing is
    /// written.
    ///
    /// # Errors
    /// `Validation` listing every problem of the document; `Repository`.
    pub async fn plan(
        &self,
        user: UserId,
        document: &ImportDocument,
        mode: ImportMode,
    ) -> Result<(ImportPlan, ImportChanges), ImportError> {
        let mut errors = ValidationErrors::new();
        check_envelope(document, &mut errors);
        let deployment = self.defaults.load().await?;
        let holdings = self.holdings(user).await?;
        let mut planner = Planner {
            mode,
            deployment: &deployment,
            plan: ImportPlan::default(),
            errors,
        };
        let mut changes = ImportChanges::default();

        let writes = planner.settings("settings", &document.settings, |input| {
            self.prepare_user(user, input)
        });
        (changes.settings, changes.deletes) =
            planner.setting_changes("settings", writes, &holdings.settings);
        changes.preferences = planner.preferences(
            "preferences",
            "preferences",
            document.preferences.as_ref(),
            &holdings.preferences,
        );
        changes.devices = self.plan_devices(&mut planner, document, &holdings);

        if !planner.errors.is_empty() {
            return Err(ImportError::Validation(planner.errors));
        }
        let mut plan = planner.plan;
        for list in [
            &mut plan.create,
            &mut plan.update,
            &mut plan.delete,
            &mut plan.unchanged,
        ] {
            list.sort();
        }
        Ok((plan, changes))
    }

    /// Writes a planned import in one transaction, within the user's quotas.
    ///
    /// # Errors
    /// `Conflict` when the user's data changed since the plan, `QuotaExceeded`,
    /// `UserNotFound`, `Repository`; nothing is written then.
    pub async fn apply(&self, user: UserId, changes: &ImportChanges) -> Result<(), ImportError> {
        if changes.is_empty() {
            return Ok(());
        }
        let quota = self.pipeline.limits().quota();
        Ok(self.ports.importer.apply(user, changes, quota).await?)
    }

    fn plan_devices(
        &self,
        planner: &mut Planner<'_>,
        document: &ImportDocument,
        holdings: &Holdings,
    ) -> Vec<DeviceChanges> {
        let mut devices = Vec::new();
        let mut named = BTreeSet::new();
        for (raw, imported) in &document.devices {
            let prefix = format!("devices[{raw}]");
            let Some(device) = planner.errors.collect(
                DeviceId::parse(raw)
                    .map_err(|e| FieldError::new(prefix.clone(), e.code, e.message)),
            ) else {
                continue;
            };
            named.insert(device.clone());
            let held = holdings.devices.get(&device);
            let empty_settings = BTreeMap::new();
            let path = format!("devices/{raw}");
            let writes = planner.settings(&prefix, &imported.settings, |input| {
                self.prepare_device(input)
            });
            let (settings, deletes) = planner.setting_changes(
                &format!("{path}/settings"),
                writes,
                held.map_or(&empty_settings, |h| &h.settings),
            );
            let none = (PreferenceOverrides::default(), 0);
            let preferences = planner.preferences(
                &format!("{path}/preferences"),
                &format!("{prefix}.preferences"),
                imported.preferences.as_ref(),
                held.map_or(&none, |h| &h.preferences),
            );
            devices.push(DeviceChanges {
                device,
                settings,
                deletes,
                preferences,
            });
        }
        if planner.mode == ImportMode::Replace {
            for (device, held) in &holdings.devices {
                if named.contains(device) {
                    continue;
                }
                let path = format!("devices/{}", device.as_str());
                let (settings, deletes) = planner.setting_changes(
                    &format!("{path}/settings"),
                    Vec::new(),
                    &held.settings,
                );
                // No document: nothing to report, so the field is never named.
                let preferences = planner.preferences(
                    &format!("{path}/preferences"),
                    "",
                    None,
                    &held.preferences,
                );
                devices.push(DeviceChanges {
                    device: device.clone(),
                    settings,
                    deletes,
                    preferences,
                });
            }
        }
        devices
            .retain(|d| !d.settings.is_empty() || !d.deletes.is_empty() || d.preferences.is_some());
        devices
    }

    /// A setting of the user's own layer, by the rules of a normal write; never a secret.
    fn prepare_user(
        &self,
        user: UserId,
        input: SettingInput,
    ) -> Result<SettingWrite, ValidationErrors> {
        match self.pipeline.prepare(user, input) {
            Ok(write) if write.value.is_sealed() => Err(secret_refused()),
            Ok(write) => Ok(write),
            Err(PrepareError::Invalid(errors)) => Err(errors),
            // Only a secret is sealed, and a secret is refused before it is.
            Err(_) => Err(secret_refused()),
        }
    }

    /// A device's override, by the rules of a device's write.
    fn prepare_device(&self, input: SettingInput) -> Result<SettingWrite, ValidationErrors> {
        self.pipeline.prepare_plain(input).map_err(|e| match e {
            PlainPrepareError::Invalid(errors) => errors,
            PlainPrepareError::NotLayerable => secret_refused(),
        })
    }

    /// Everything `user` holds: settings, preferences, devices' overrides.
    async fn holdings(&self, user: UserId) -> Result<Holdings, RepositoryError> {
        let mut settings = BTreeMap::new();
        let mut after = None;
        loop {
            let page = Page {
                after: after.clone(),
                limit: Page::MAX_LIMIT,
            };
            let batch = self.ports.settings.list(user, None, page).await?;
            let full = batch.len() == Page::MAX_LIMIT as usize;
            after = batch.last().map(|s| s.key.clone());
            settings.extend(batch.into_iter().map(|s| (s.key.clone(), s)));
            if !full {
                break;
            }
        }
        let preferences = match self.ports.preferences.get(user).await? {
            Some(stored) => (stored.overrides, stored.version),
            None => (PreferenceOverrides::default(), 0),
        };
        let mut devices = BTreeMap::new();
        for summary in self.ports.devices.devices(user).await? {
            let device = summary.device_id;
            let settings = self
                .ports
                .devices
                .list(user, &device)
                .await?
                .into_iter()
                .map(|s| (s.key.clone(), s))
                .collect();
            let preferences = match self.ports.devices.preferences(user, &device).await? {
                Some(stored) => (stored.overrides, stored.version),
                None => (PreferenceOverrides::default(), 0),
            };
            devices.insert(
                device,
                DeviceHoldings {
                    settings,
                    preferences,
                },
            );
        }
        Ok(Holdings {
            settings,
            preferences,
            devices,
        })
    }
}

/// Builds the plan and the errors of one document.
struct Planner<'a> {
    mode: ImportMode,
    deployment: &'a DeploymentDefaults,
    plan: ImportPlan,
    errors: ValidationErrors,
}

impl Planner<'_> {
    /// The valid writes of `items` (every problem recorded under `prefix[i]`).
    fn settings(
        &mut self,
        prefix: &str,
        items: &[ImportedSetting],
        prepare: impl Fn(SettingInput) -> Result<SettingWrite, ValidationErrors>,
    ) -> Vec<SettingWrite> {
        let mut seen = BTreeSet::new();
        let mut writes = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = format!("{prefix}[{i}]");
            if item.data_type.as_deref() == Some("encrypted") {
                self.errors.push(secret_refused_at().prefixed(&at));
                continue;
            }
            if let Some(provider) = managing_provider(&item.key) {
                self.errors.push(
                    FieldError::new(
                        "key",
                        "managed_by_integration",
                        format!(
                            "the key is managed by the {} integration",
                            provider.as_str()
                        ),
                    )
                    .prefixed(&at),
                );
                continue;
            }
            if self.deployment.enforces(&item.key) {
                self.errors.push(
                    FieldError::new(
                        "key",
                        "enforced_by_deployment",
                        "the deployment enforces this key: its value is the operator's",
                    )
                    .prefixed(&at),
                );
                continue;
            }
            if !seen.insert(item.key.clone()) {
                self.errors.push(
                    FieldError::new("key", "duplicate_key", "the key appears twice").prefixed(&at),
                );
                continue;
            }
            let input = SettingInput {
                key: item.key.clone(),
                value: item.value.clone(),
                description: item.description.clone(),
                category: item.category.clone(),
                data_type: item.data_type.clone(),
            };
            match prepare(input) {
                Ok(mut write) => {
                    write.origin = ChangeOrigin::Import;
                    writes.push(write);
                }
                Err(errors) => self.errors.extend_prefixed(&at, errors),
            }
        }
        writes
    }

    /// The writes and deletes that make `held` hold `writes` (deletes in a replace only, never
    /// of a secret, a managed or an enforced key); every item planned under `path/{key}`.
    #[allow(clippy::type_complexity)]
    fn setting_changes(
        &mut self,
        path: &str,
        writes: Vec<SettingWrite>,
        held: &BTreeMap<SettingKey, Setting>,
    ) -> (Vec<(SettingWrite, Precondition)>, Vec<(SettingKey, i64)>) {
        let mut changes = Vec::new();
        let named: BTreeSet<SettingKey> = writes.iter().map(|w| w.key.clone()).collect();
        for write in writes {
            let item = format!("{path}/{}", write.key.as_str());
            match held.get(&write.key) {
                None => {
                    self.plan.create.push(item);
                    changes.push((write, Precondition::Absent));
                }
                Some(current) if same(current, &write) => self.plan.unchanged.push(item),
                Some(current) => {
                    self.plan.update.push(item);
                    changes.push((write, Precondition::Version(current.version)));
                }
            }
        }
        let mut deletes = Vec::new();
        if self.mode == ImportMode::Replace {
            for (key, current) in held {
                let kept = named.contains(key)
                    || current.value.is_sealed()
                    || managing_provider(key.as_str()).is_some()
                    || self.deployment.enforces(key.as_str());
                if !kept {
                    self.plan.delete.push(format!("{path}/{}", key.as_str()));
                    deletes.push((key.clone(), current.version));
                }
            }
        }
        (changes, deletes)
    }

    /// The write that makes the preferences `held` (overrides, version) hold `document`:
    /// merged over them, or replacing them. An enforced field may not change.
    fn preferences(
        &mut self,
        path: &str,
        field: &str,
        document: Option<&Value>,
        held: &(PreferenceOverrides, i64),
    ) -> Option<(PreferenceOverrides, Precondition)> {
        let imported = match document {
            Some(document) => match PreferenceOverrides::from_document(document) {
                Ok(overrides) => overrides,
                Err(errors) => {
                    self.errors.extend_prefixed(field, errors);
                    return None;
                }
            },
            None if self.mode == ImportMode::Merge => return None,
            None => PreferenceOverrides::default(),
        };
        let (current, version) = held;
        let mut next = match self.mode {
            ImportMode::Merge => {
                let mut next = current.clone();
                for f in imported.fields() {
                    next.take_field(f, &imported);
                }
                next
            }
            ImportMode::Replace => imported.clone(),
        };
        for enforced in &self.deployment.preferences.enforced {
            if current.same(&next, *enforced) {
                continue;
            }
            if imported.has(*enforced) {
                self.errors.push(
                    FieldError::new(
                        enforced.as_str(),
                        "enforced_by_deployment",
                        "the deployment enforces this field: its value is the operator's",
                    )
                    .prefixed(field),
                );
            } else {
                next.take_field(*enforced, current);
            }
        }
        if next == *current {
            if *version != 0 || !next.is_empty() {
                self.plan.unchanged.push(path.to_owned());
            }
            return None;
        }
        if *version == 0 {
            self.plan.create.push(path.to_owned());
        } else if next.is_empty() && path.starts_with("devices/") {
            self.plan.delete.push(path.to_owned());
        } else {
            self.plan.update.push(path.to_owned());
        }
        let expected = match *version {
            0 => Precondition::Absent,
            version => Precondition::Version(version),
        };
        Some((next, expected))
    }
}

/// Whether `current` already holds exactly what `write` would write.
fn same(current: &Setting, write: &SettingWrite) -> bool {
    current.value.plain().is_some()
        && current.value.plain() == write.value.plain()
        && current.data_type == write.data_type
        && current.category == write.category
        && current.description == write.description
}

fn exported(setting: Setting) -> ExportedSetting {
    ExportedSetting {
        key: setting.key.as_str().to_owned(),
        value: setting.value.plain().cloned().unwrap_or(Value::Null),
        category: setting.category.map(|c| c.as_str().to_owned()),
        data_type: setting.data_type.as_str(),
        description: setting.description.map(|d| d.as_str().to_owned()),
        updated_at: setting.updated_at,
    }
}

/// The document's own members: its format, and no secret value anywhere.
fn check_envelope(document: &ImportDocument, errors: &mut ValidationErrors) {
    if document.format.as_deref() != Some(EXPORT_FORMAT) {
        errors.push(FieldError::new(
            "format",
            "invalid_format",
            format!("the document's format must be \"{EXPORT_FORMAT}\""),
        ));
    }
    if document.format_version != Some(u64::from(EXPORT_FORMAT_VERSION)) {
        errors.push(FieldError::new(
            "format_version",
            "unsupported_version",
            format!("only format_version {EXPORT_FORMAT_VERSION} is read"),
        ));
    }
    for (i, secret) in document.secrets.iter().enumerate() {
        if secret.get("value").is_some() {
            errors.push(secret_refused_at().prefixed(&format!("secrets[{i}]")));
        }
    }
}

fn secret_refused_at() -> FieldError {
    FieldError::new(
        "value",
        "secret_not_importable",
        "secrets are never imported: store them again through the secrets API",
    )
}

fn secret_refused() -> ValidationErrors {
    ValidationErrors::single(secret_refused_at())
}
