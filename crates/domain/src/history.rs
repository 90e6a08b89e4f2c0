//! The history of changes: every committed change of a user's settings, preferences and
//! devices' overrides is kept (by the store, in the transaction of the change), so a value
//! overwritten or deleted by mistake can be seen and written again ("restored").
//!
//! A secret's history holds no value, only that it changed and when: keeping old ciphertexts
//! would widen what a leaked key exposes.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::{
    devices::DeviceId,
    settings::{Category, DataType, Description, SettingKey},
};

/// What a change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    /// The row did not exist.
    Created,
    /// The row changed.
    Updated,
    /// The row was removed.
    Deleted,
    /// An earlier version was written again.
    Restored,
    /// Written by an import of an export document.
    Imported,
}

impl ChangeOp {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::Deleted => "deleted",
            Self::Restored => "restored",
            Self::Imported => "imported",
        }
    }

    /// The operation of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Created,
            Self::Updated,
            Self::Deleted,
            Self::Restored,
            Self::Imported,
        ]
        .into_iter()
        .find(|op| op.as_str() == name)
    }
}

/// Who made a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeActor {
    /// The user, through one of their clients.
    User,
    /// An operator, in the deployment layer.
    Operator,
    /// An integration on the user's behalf (connect, token refresh, disconnect).
    Integration,
    /// An import of an export document.
    Import,
    /// Anything else that changed the store (a migration, another program).
    System,
}

impl ChangeActor {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Operator => "operator",
            Self::Integration => "integration",
            Self::Import => "import",
            Self::System => "system",
        }
    }

    /// The actor of a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::User,
            Self::Operator,
            Self::Integration,
            Self::Import,
            Self::System,
        ]
        .into_iter()
        .find(|actor| actor.as_str() == name)
    }
}

/// Why a write is made, as its history records it. A write is the user's own unless it says
/// otherwise.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChangeOrigin {
    /// The user's request (the operation follows from the write).
    #[default]
    User,
    /// An integration's connect, refresh or disconnect.
    Integration,
    /// The user restoring an earlier version.
    Restore,
    /// An import.
    Import,
}

impl ChangeOrigin {
    /// Who the history names.
    pub fn actor(self) -> ChangeActor {
        match self {
            Self::User | Self::Restore => ChangeActor::User,
            Self::Integration => ChangeActor::Integration,
            Self::Import => ChangeActor::Import,
        }
    }

    /// The operation the history names instead of the one the write implies, if any.
    pub fn op(self) -> Option<ChangeOp> {
        match self {
            Self::User | Self::Integration => None,
            Self::Restore => Some(ChangeOp::Restored),
            Self::Import => Some(ChangeOp::Imported),
        }
    }
}

/// Whose history: a setting, or the preferences, of the user's own layer or of a device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryTarget {
    /// The device, for a device's layer; `None` for the user's own.
    pub device: Option<DeviceId>,
    /// The setting's key; `None` for the preferences.
    pub key: Option<SettingKey>,
}

impl HistoryTarget {
    /// A setting of the user's own layer (`device: None`) or of a device.
    pub fn setting(device: Option<DeviceId>, key: SettingKey) -> Self {
        Self {
            device,
            key: Some(key),
        }
    }

    /// The preferences of the user's own layer (`device: None`) or of a device.
    pub fn preferences(device: Option<DeviceId>) -> Self {
        Self { device, key: None }
    }
}

/// One kept change.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    /// The version the change gave (a delete takes a version of its own).
    pub version: i64,
    /// What the change did.
    pub op: ChangeOp,
    /// Who made it.
    pub actor: ChangeActor,
    /// The value after the change: `None` after a delete, and always for a secret.
    pub value: Option<Value>,
    /// A setting's declared type (`None` for preferences).
    pub data_type: Option<DataType>,
    /// A setting's category.
    pub category: Option<Category>,
    /// A setting's description.
    pub description: Option<Description>,
    /// When it was committed.
    pub changed_at: OffsetDateTime,
}

impl HistoryEntry {
    /// Whether the entry is a secret's (whose value is never kept).
    pub fn is_secret(&self) -> bool {
        self.data_type == Some(DataType::Encrypted)
    }
}

/// One page of a history, newest first.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryPage {
    /// The entries.
    pub entries: Vec<HistoryEntry>,
    /// Where the next page starts (before this version), when more follow.
    pub next_before: Option<i64>,
}

/// How much history is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// The last versions of each key (and of each layer's preferences) that are kept.
    pub keep_versions: u32,
    /// Older changes are removed, whatever their number.
    pub max_age: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep_versions: 50,
            max_age: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// What one round of pruning removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Rows removed for being beyond the versions kept.
    pub beyond_versions: u64,
    /// Rows removed for being older than the maximum age.
    pub too_old: u64,
}
