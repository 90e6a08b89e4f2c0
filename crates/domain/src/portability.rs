//! The export document (everything a user stored, as one JSON document) and what an import of
//! one changes.
//!
//! The document names secrets and integrations but never holds their values: it is meant to
//! be downloaded, mailed and kept. An import writes the settings, preferences and devices'
//! overrides it holds, by the rules of any write, in one transaction.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, value::RawValue};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    devices::DeviceId,
    preferences::PreferenceOverrides,
    settings::{Precondition, SettingKey, SettingWrite},
};

/// The `format` member of every export document.
pub const EXPORT_FORMAT: &str = "user-settings-export";
/// The `format_version` this service writes and reads.
pub const EXPORT_FORMAT_VERSION: u32 = 1;

/// Everything a user stored.
#[derive(Clone, Debug, Serialize)]
pub struct ExportDocument {
    /// Always [`EXPORT_FORMAT`].
    pub format: &'static str,
    /// Always [`EXPORT_FORMAT_VERSION`].
    pub format_version: u32,
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub exported_at: OffsetDateTime,
    /// Whose data it is.
    pub user_id: Uuid,
    /// The user's own preferences: the fields they set (the others inherit).
    pub preferences: Value,
    /// Each device's own overrides, by device id.
    pub devices: BTreeMap<String, ExportedDevice>,
    /// The user's own settings, secrets and integrations' rows left out, ordered by key.
    pub settings: Vec<ExportedSetting>,
    /// The user's secrets, by name only.
    pub secrets: Vec<ExportedSecret>,
    /// The user's connections to external services, without their tokens.
    pub integrations: Vec<ExportedIntegration>,
}

/// One device's overrides.
#[derive(Clone, Debug, Serialize)]
pub struct ExportedDevice {
    /// The preference fields it overrides.
    pub preferences: Value,
    /// The settings it overrides, ordered by key.
    pub settings: Vec<ExportedSetting>,
}

/// One stored setting.
#[derive(Clone, Debug, Serialize)]
pub struct ExportedSetting {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Value,
    /// The category, if any.
    pub category: Option<String>,
    /// The declared type.
    pub data_type: &'static str,
    /// The description, if any.
    pub description: Option<String>,
    /// The last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A secret, by name only.
#[derive(Clone, Debug, Serialize)]
pub struct ExportedSecret {
    /// The key.
    pub key: String,
    /// The last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A connection to an external service, without its tokens.
#[derive(Clone, Debug, Serialize)]
pub struct ExportedIntegration {
    /// The provider's id.
    pub provider: String,
    /// Whether credentials are stored.
    pub connected: bool,
    /// The remote account's name.
    pub username: Option<String>,
    /// When the user connected.
    #[serde(with = "time::serde::rfc3339::option")]
    pub connected_at: Option<OffsetDateTime>,
}

/// A document to import, as sent: every member is checked by the import, which reports every
/// problem at once, so the shapes here are lenient (a `null` member is an absent one).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ImportDocument {
    /// Must be [`EXPORT_FORMAT`].
    pub format: Option<String>,
    /// Must be [`EXPORT_FORMAT_VERSION`].
    pub format_version: Option<u64>,
    /// The preferences to set (absent: left as they are in a merge, all inherit in a
    /// replace).
    pub preferences: Option<Value>,
    /// Devices' overrides, by device id.
    #[serde(deserialize_with = "nullable")]
    pub devices: BTreeMap<String, ImportedDevice>,
    /// Settings of the user's own layer.
    #[serde(deserialize_with = "nullable")]
    pub settings: Vec<ImportedSetting>,
    /// Secrets, by name: never imported. An entry holding a value is refused.
    #[serde(deserialize_with = "nullable")]
    pub secrets: Vec<serde_json::Map<String, Value>>,
    /// Connections: never imported (they need the user to sign in to the provider).
    #[serde(deserialize_with = "nullable")]
    pub integrations: Vec<serde_json::Map<String, Value>>,
    /// Also in every export; not read (another user's export may be imported).
    pub user_id: Option<Uuid>,
    /// Also in every export; not read.
    pub exported_at: Option<String>,
}

/// One device's overrides, as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ImportedDevice {
    /// The preference fields it overrides.
    pub preferences: Option<Value>,
    /// The settings it overrides.
    #[serde(deserialize_with = "nullable")]
    pub settings: Vec<ImportedSetting>,
}

/// `null` read as the empty collection.
fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// One setting, as sent.
#[derive(Debug, Deserialize)]
pub struct ImportedSetting {
    /// The key.
    #[serde(default)]
    pub key: String,
    /// The value (absent or `null` is refused).
    #[serde(default)]
    pub value: Option<Box<RawValue>>,
    /// The category.
    #[serde(default)]
    pub category: Option<String>,
    /// The declared type; inferred when absent.
    #[serde(default)]
    pub data_type: Option<String>,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// Also in every export; not read.
    #[serde(default)]
    pub updated_at: Option<Value>,
}

/// How an import treats what the user has and the document does not.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportMode {
    /// Kept: the document only adds and changes.
    #[default]
    Merge,
    /// Removed (secrets, integrations and keys the deployment enforces excepted): the user
    /// then holds what the document holds.
    Replace,
}

/// What an import does, item by item. Items are named by path: `settings/{key}`,
/// `preferences`, `devices/{device_id}/settings/{key}` and `devices/{device_id}/preferences`
/// (a key or device id never holds a `/`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ImportPlan {
    /// Items the user does not have yet.
    pub create: Vec<String>,
    /// Items the user has with another value.
    pub update: Vec<String>,
    /// Items the user has that the document does not (replace only).
    pub delete: Vec<String>,
    /// Items the user already has exactly.
    pub unchanged: Vec<String>,
}

impl ImportPlan {
    /// How many items change: each counts as one write.
    pub fn changes(&self) -> usize {
        self.create.len() + self.update.len() + self.delete.len()
    }
}

/// The writes of an import, each under the precondition of the state it was planned on, so a
/// change made meanwhile fails the whole import rather than being overwritten.
#[derive(Clone, Debug, Default)]
pub struct ImportChanges {
    /// The user's own settings to write.
    pub settings: Vec<(SettingWrite, Precondition)>,
    /// The user's own settings to delete, at their planned version.
    pub deletes: Vec<(SettingKey, i64)>,
    /// The user's own preferences to write.
    pub preferences: Option<(PreferenceOverrides, Precondition)>,
    /// The devices' changes.
    pub devices: Vec<DeviceChanges>,
}

impl ImportChanges {
    /// Whether nothing is written.
    pub fn is_empty(&self) -> bool {
        self.settings.is_empty()
            && self.deletes.is_empty()
            && self.preferences.is_none()
            && self.devices.is_empty()
    }
}

/// The changes of one device.
#[derive(Clone, Debug)]
pub struct DeviceChanges {
    /// The device.
    pub device: DeviceId,
    /// Overrides to write.
    pub settings: Vec<(SettingWrite, Precondition)>,
    /// Overrides to delete, at their planned version.
    pub deletes: Vec<(SettingKey, i64)>,
    /// Preference overrides to write (empty: remove them), under the precondition.
    pub preferences: Option<(PreferenceOverrides, Precondition)>,
}
