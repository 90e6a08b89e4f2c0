//! The `Setting` entity, what is written to the store, and its public (redacted) view.

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::{Category, DataType, SettingKey, StoredValue};
use crate::{error::FieldError, history::ChangeOrigin, ids::UserId};

/// A validated free-text description of a setting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Description(String);

impl Description {
    /// Validates a description against the length limit (in characters).
    ///
    /// # Errors
    /// A [`FieldError`] on field `description` with code `too_long`.
    pub fn parse(raw: &str, max_chars: usize) -> Result<Self, FieldError> {
        if raw.contains('\0') {
            return Err(FieldError::new(
                "description",
                "invalid_character",
                "the description must not contain the character U+0000",
            ));
        }
        let chars = raw.chars().count();
        if chars > max_chars {
            return Err(FieldError::new(
                "description",
                "too_long",
                format!("the description must be at most {max_chars} characters"),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// Accepts a description read back from the store.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The description as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stored setting. A secret's value is [`StoredValue::Sealed`].
#[derive(Clone, Debug, PartialEq)]
pub struct Setting {
    /// Owner.
    pub user_id: UserId,
    /// Name.
    pub key: SettingKey,
    /// The value: plain JSON, or the envelope of a secret.
    pub value: StoredValue,
    /// Optional description.
    pub description: Option<Description>,
    /// Optional category.
    pub category: Option<Category>,
    /// Declared type.
    pub data_type: DataType,
    /// Incremented on every change; the optimistic-concurrency token and the ETag.
    pub version: i64,
    /// When the setting was first written.
    pub created_at: OffsetDateTime,
    /// When the setting last changed.
    pub updated_at: OffsetDateTime,
}

impl Setting {
    /// The view of this setting that may leave the service: encrypted values are withheld.
    pub fn redacted(self) -> SettingView {
        let (value, redacted) = match self.value {
            StoredValue::Plain(value) => (value, false),
            StoredValue::Sealed(_) => (Value::Null, true),
        };
        SettingView {
            key: self.key,
            value,
            redacted,
            description: self.description,
            category: self.category,
            data_type: self.data_type,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// A setting as shown by every public read: secrets are `null` with `redacted: true`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SettingView {
    /// Name.
    pub key: SettingKey,
    /// The value, or `null` when redacted.
    pub value: Value,
    /// True when the value is a secret and was withheld.
    pub redacted: bool,
    /// Optional description.
    pub description: Option<Description>,
    /// Optional category.
    pub category: Option<Category>,
    /// Declared type.
    pub data_type: DataType,
    /// Optimistic-concurrency version.
    pub version: i64,
    /// First write.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// A validated write, ready for the store. A secret is already sealed.
#[derive(Clone, Debug, PartialEq)]
pub struct SettingWrite {
    /// Name.
    pub key: SettingKey,
    /// The value to store: plain JSON, or the envelope of a secret.
    pub value: StoredValue,
    /// Optional description.
    pub description: Option<Description>,
    /// Optional category.
    pub category: Option<Category>,
    /// Declared type.
    pub data_type: DataType,
    /// Why it is written, as the history records it.
    pub origin: ChangeOrigin,
}

/// What a write expects of the current row (HTTP `If-Match` / `If-None-Match`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Write whatever is there.
    Any,
    /// Only create: the row must not exist.
    Absent,
    /// Only change: the row must exist, at whatever version (`If-Match: *`).
    Exists,
    /// The row must exist with exactly this version.
    Version(i64),
    /// The row must exist at one of these versions (an `If-Match` listing several tags); the
    /// write is then conditioned on the version it found. Build it with
    /// [`Precondition::version_in`].
    VersionIn(Vec<i64>),
}

impl Precondition {
    /// The row must be at one of `versions`: [`Precondition::Version`] for a single one,
    /// `None` for none (nothing can match).
    pub fn version_in(mut versions: Vec<i64>) -> Option<Self> {
        versions.sort_unstable();
        versions.dedup();
        match versions.as_slice() {
            [] => None,
            [one] => Some(Precondition::Version(*one)),
            _ => Some(Precondition::VersionIn(versions)),
        }
    }

    /// Whether a row at `version` satisfies a version condition (`Version`/`VersionIn`).
    pub fn accepts_version(&self, version: i64) -> bool {
        match self {
            Precondition::Version(v) => *v == version,
            Precondition::VersionIn(versions) => versions.contains(&version),
            Precondition::Any | Precondition::Absent | Precondition::Exists => false,
        }
    }
}

/// The result of a successful upsert.
#[derive(Clone, Debug, PartialEq)]
pub struct UpsertOutcome {
    /// The row as stored after the write.
    pub setting: Setting,
    /// True when the row did not exist before.
    pub created: bool,
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::OffsetDateTime;

    use super::*;

    fn setting(data_type: DataType, value: StoredValue) -> Setting {
        Setting {
            user_id: UserId::new(uuid::Uuid::nil()),
            key: SettingKey::parse("a.b").unwrap(),
            value,
            description: None,
            category: None,
            data_type,
            version: 3,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn redaction_withholds_encrypted_values() {
        let envelope = crate::secrets::Envelope {
            v: 1,
            alg: "A256GCM-HKDF-SHA256".to_owned(),
            kid: "k".to_owned(),
            salt: "s".to_owned(),
            nonce: "n".to_owned(),
            ciphertext: "abc".to_owned(),
        };
        let view = setting(DataType::Encrypted, envelope.into()).redacted();
        assert!(view.redacted);
        assert_eq!(view.value, Value::Null);
        assert_eq!(view.version, 3);
    }

    #[test]
    fn redaction_keeps_plain_values() {
        let view = setting(DataType::Json, json!({"a": 1}).into()).redacted();
        assert!(!view.redacted);
        assert_eq!(view.value, json!({"a": 1}));
    }

    #[test]
    fn description_limit_counts_characters_not_bytes() {
        assert!(Description::parse(&"é".repeat(1024), 1024).is_ok());
        assert_eq!(
            Description::parse(&"é".repeat(1025), 1024)
                .unwrap_err()
                .code,
            "too_long"
        );
    }
}
