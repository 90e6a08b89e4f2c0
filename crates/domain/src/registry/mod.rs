//! The known-key registry: per-key (or per-pattern) JSON Schema, category, type, default and
//! sensitivity, loaded from `known_keys.json` (data, not code).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    error::{FieldError, ValidationErrors},
    settings::{Category, DataType, SettingKey},
};

const BUILTIN: &str = include_str!("known_keys.json");

/// One segment of a key pattern: a literal, or `{name}` matching any single segment.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Placeholder,
}

/// A registry entry as written in the data file and served at `GET /api/v1/settings/schema`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownKeySpec {
    /// An exact key or a pattern whose `{name}` segments match any one segment.
    pub pattern: String,
    /// Category given to the setting.
    pub category: Option<String>,
    /// Required data type.
    pub data_type: DataType,
    /// Sensitive keys are always stored encrypted and never shown in clear.
    pub sensitive: bool,
    /// What the setting is for.
    pub description: String,
    /// Value a client may assume when the setting is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// JSON Schema (draft 2020-12) of the value (the plaintext, for sensitive keys).
    pub schema: Value,
}

/// A compiled registry entry.
#[derive(Debug)]
pub struct KnownKey {
    spec: KnownKeySpec,
    segments: Vec<Segment>,
    validator: jsonschema::Validator,
}

impl KnownKey {
    /// The entry as written in the data file.
    pub fn spec(&self) -> &KnownKeySpec {
        &self.spec
    }

    /// Required data type.
    pub fn data_type(&self) -> DataType {
        self.spec.data_type
    }

    /// Whether values are always encrypted.
    pub fn sensitive(&self) -> bool {
        self.spec.sensitive
    }

    /// The entry's category, when it has one.
    pub fn category(&self) -> Option<Category> {
        self.spec.category.clone().map(Category::from_stored)
    }

    fn matches(&self, key: &SettingKey) -> bool {
        let mut segments = key.segments();
        let all_match = self
            .segments
            .iter()
            .all(|expected| match (expected, segments.next()) {
                (Segment::Literal(lit), Some(seg)) => lit == seg,
                (Segment::Placeholder, Some(_)) => true,
                (_, None) => false,
            });
        all_match && segments.next().is_none()
    }

    fn is_exact(&self) -> bool {
        self.segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
    }

    /// Validates a (plaintext) value against the entry's schema. For sensitive keys the
    /// messages name only the failing rule, never the submitted value.
    ///
    /// # Errors
    /// One `schema_violation` error per failing location, under `value`.
    pub fn validate(&self, value: &Value) -> Result<(), ValidationErrors> {
        let mut errors = ValidationErrors::new();
        for error in self.validator.iter_errors(value) {
            let pointer = error.instance_path().to_string();
            let field = if pointer.is_empty() {
                "value".to_owned()
            } else {
                format!("value{}", pointer.replace('/', "."))
            };
            let message = if self.spec.sensitive {
                let rule = error.schema_path().to_string();
                let rule = rule.rsplit('/').next().unwrap_or("schema").to_owned();
                format!("the value does not satisfy the `{rule}` rule of its schema")
            } else {
                error.to_string()
            };
            errors.push(FieldError::new(field, "schema_violation", message));
        }
        errors.into_result(())
    }
}

/// Why the registry could not be built. Only happens with a broken data file.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The data file is not a list of entries.
    #[error("the known-key registry is not valid JSON: {0}")]
    Parse(#[from] serde_json::Error),
    /// A pattern is not a valid key shape.
    #[error("known key pattern {0:?} is invalid")]
    Pattern(String),
    /// A schema does not compile.
    #[error("the schema of known key {pattern:?} is invalid: {message}")]
    Schema {
        /// The entry.
        pattern: String,
        /// What is wrong.
        message: String,
    },
    /// A default does not satisfy its own schema or data type.
    #[error("the default of known key {0:?} violates its schema or data type")]
    Default(String),
    /// A sensitive entry is not typed `encrypted`.
    #[error("sensitive known key {0:?} must have data_type encrypted")]
    Sensitivity(String),
}

/// Every known key, exact keys taking precedence over patterns.
#[derive(Debug)]
pub struct KeyRegistry {
    entries: Vec<KnownKey>,
}

impl KeyRegistry {
    /// The registry shipped in the binary.
    ///
    /// # Errors
    /// A [`RegistryError`] when the embedded data file is broken (a test guards this).
    pub fn builtin() -> Result<Self, RegistryError> {
        Self::from_json(BUILTIN)
    }

    /// An empty registry: every key is dynamic.
    pub fn empty() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Builds a registry from a JSON list of [`KnownKeySpec`].
    ///
    /// # Errors
    /// A [`RegistryError`] naming the first broken entry.
    pub fn from_json(json: &str) -> Result<Self, RegistryError> {
        let specs: Vec<KnownKeySpec> = serde_json::from_str(json)?;
        let mut entries = specs
            .into_iter()
            .map(compile)
            .collect::<Result<Vec<_>, _>>()?;
        // Stable sort: exact keys first, patterns after, each in file order.
        entries.sort_by_key(|e| !e.is_exact());
        Ok(Self { entries })
    }

    /// The entry governing `key`, if any.
    pub fn lookup(&self, key: &SettingKey) -> Option<&KnownKey> {
        self.entries.iter().find(|e| e.matches(key))
    }

    /// Every entry, exact keys first.
    pub fn entries(&self) -> impl Iterator<Item = &KnownKey> {
        self.entries.iter()
    }
}

fn compile(spec: KnownKeySpec) -> Result<KnownKey, RegistryError> {
    let segments = spec
        .pattern
        .split('.')
        .map(|seg| {
            if seg.len() > 2 && seg.starts_with('{') && seg.ends_with('}') {
                Ok(Segment::Placeholder)
            } else if SettingKey::parse(seg).is_ok() {
                Ok(Segment::Literal(seg.to_owned()))
            } else {
                Err(RegistryError::Pattern(spec.pattern.clone()))
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    if spec.sensitive && spec.data_type != DataType::Encrypted {
        return Err(RegistryError::Sensitivity(spec.pattern.clone()));
    }
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&spec.schema)
        .map_err(|e| RegistryError::Schema {
            pattern: spec.pattern.clone(),
            message: e.to_string(),
        })?;
    let entry = KnownKey {
        spec,
        segments,
        validator,
    };
    if let Some(default) = &entry.spec.default
        && (entry.validate(default).is_err() || !entry.spec.data_type.accepts(default))
    {
        return Err(RegistryError::Default(entry.spec.pattern.clone()));
    }
    Ok(entry)
}

#[cfg(test)]
mod tests;
