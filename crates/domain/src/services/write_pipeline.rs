//! The one write pipeline: a setting as submitted becomes a store write by a single path —
//! its text checked for size and depth, then key, data type, registry schema, category
//! allowlist and description validated (every problem collected), and, for a secret, the
//! plaintext sealed for its cell. The settings use cases and the credential vault both
//! write through it, so a secret obeys the same rules whoever stores it.

use std::sync::Arc;

use serde_json::{Value, value::RawValue};

use crate::{
    error::{FieldError, ValidationErrors},
    history::ChangeOrigin,
    ids::UserId,
    ports::SecretCipher,
    registry::KeyRegistry,
    secrets::{CipherError, SecretValue},
    settings::{
        AllowedCategories, DataType, Description, Limits, SettingKey, SettingWrite, StoredValue,
        check_value_text, seal,
    },
};

/// A setting as a client submits it, still unvalidated (the HTTP adapter builds it from its
/// wire types). Its `Debug` never shows the value: it may be a secret on its way to
/// encryption.
#[derive(Clone, Default)]
pub struct SettingInput {
    /// The key.
    pub key: String,
    /// The value as JSON text; `None` (absent or `null`) is rejected.
    pub value: Option<Box<RawValue>>,
    /// Optional description.
    pub description: Option<String>,
    /// Optional category.
    pub category: Option<String>,
    /// Optional data type; inferred from the value when absent.
    pub data_type: Option<String>,
}

impl std::fmt::Debug for SettingInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SettingInput")
            .field("key", &self.key)
            .field("value", &"[REDACTED]")
            .field("description", &self.description)
            .field("category", &self.category)
            .field("data_type", &self.data_type)
            .finish()
    }
}

/// Why an input could not become a write.
#[derive(Debug)]
pub enum PrepareError {
    /// Every problem with the input.
    Invalid(ValidationErrors),
    /// Sealing the secret failed.
    Cipher(CipherError),
}

/// Why an input could not become a write of a layer that holds no secrets.
#[derive(Debug)]
pub enum PlainPrepareError {
    /// Every problem with the input.
    Invalid(ValidationErrors),
    /// The input is a secret: secrets exist only in the user layer.
    NotLayerable,
}

/// The rules every stored setting obeys, and the cipher that seals its secrets.
#[derive(Clone)]
pub struct WritePipeline<C> {
    cipher: C,
    registry: Arc<KeyRegistry>,
    limits: Limits,
    categories: AllowedCategories,
}

impl<C: SecretCipher> WritePipeline<C> {
    /// A pipeline with these rules.
    pub fn new(
        cipher: C,
        registry: Arc<KeyRegistry>,
        limits: Limits,
        categories: AllowedCategories,
    ) -> Self {
        Self {
            cipher,
            registry,
            limits,
            categories,
        }
    }

    /// The cipher that seals (and opens) secrets.
    pub fn cipher(&self) -> &C {
        &self.cipher
    }

    /// The known-key registry in force.
    pub fn registry(&self) -> &KeyRegistry {
        &self.registry
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The categories accepted.
    pub fn categories(&self) -> &AllowedCategories {
        &self.categories
    }

    /// Validates one input into a store write, sealing it when it is a secret.
    ///
    /// # Errors
    /// [`PrepareError::Invalid`] with every problem of the input, or
    /// [`PrepareError::Cipher`].
    pub fn prepare(&self, user: UserId, input: SettingInput) -> Result<SettingWrite, PrepareError> {
        let mut write = self.validate(input).map_err(PrepareError::Invalid)?;
        if let StoredValue::Plain(value) = &write.value
            && write.data_type == DataType::Encrypted
        {
            let plaintext = SecretValue::from_json(value);
            write.value = StoredValue::Sealed(
                seal(&self.cipher, user, &write.key, &plaintext).map_err(PrepareError::Cipher)?,
            );
        }
        Ok(write)
    }

    /// Validates one input for a layer that holds no secrets (the deployment's, a device's):
    /// the same rules, and a secret is refused rather than sealed.
    ///
    /// # Errors
    /// [`PlainPrepareError::Invalid`] with every problem of the input, or
    /// [`PlainPrepareError::NotLayerable`] for a secret.
    pub fn prepare_plain(&self, input: SettingInput) -> Result<SettingWrite, PlainPrepareError> {
        let write = self.validate(input).map_err(PlainPrepareError::Invalid)?;
        if write.data_type == DataType::Encrypted {
            return Err(PlainPrepareError::NotLayerable);
        }
        Ok(write)
    }

    /// The rules themselves: the value's text is checked for size and depth before it is
    /// parsed, and dropped as soon as its tree exists. The result holds the value in clear.
    fn validate(&self, input: SettingInput) -> Result<SettingWrite, ValidationErrors> {
        let mut errors = ValidationErrors::new();
        let key = errors.collect(SettingKey::parse(&input.key));
        let known = key.as_ref().and_then(|k| self.registry.lookup(k));
        let requested_type = input
            .data_type
            .as_deref()
            .and_then(|t| errors.collect(DataType::parse(t)));
        let value: Option<Value> = match &input.value {
            None => {
                errors.push(FieldError::new(
                    "value",
                    "required",
                    "a value is required; delete the setting to remove it",
                ));
                None
            }
            Some(raw) => errors
                .collect(check_value_text(raw.get(), &self.limits))
                .and_then(|()| errors.collect(parse_value(raw))),
        };
        drop(input.value);

        let data_type = match (known, requested_type) {
            (Some(entry), Some(requested)) if requested != entry.data_type() => {
                errors.push(FieldError::new(
                    "data_type",
                    "data_type_mismatch",
                    format!("this key requires data_type {}", entry.data_type()),
                ));
                None
            }
            (Some(entry), _) => Some(entry.data_type()),
            (None, Some(requested)) => Some(requested),
            (None, None) => value.as_ref().and_then(DataType::infer),
        };
        if let (Some(t), Some(v)) = (data_type, &value)
            && !t.accepts(v)
        {
            errors.push(FieldError::new(
                "value",
                "type_mismatch",
                format!("the value is not a {t}"),
            ));
        }
        if let (Some(entry), Some(v)) = (known, &value)
            && let Err(e) = entry.validate(v)
        {
            errors.extend(e);
        }

        let requested_category = input
            .category
            .as_deref()
            .and_then(|c| errors.collect(self.categories.parse(c)));
        let category = match (known.and_then(|e| e.category()), requested_category) {
            (Some(fixed), Some(requested)) if fixed != requested => {
                errors.push(FieldError::new(
                    "category",
                    "category_mismatch",
                    format!("this key belongs to category {fixed}"),
                ));
                None
            }
            (Some(fixed), _) => Some(fixed),
            (None, requested) => requested,
        };
        let description = input
            .description
            .as_deref()
            .and_then(|d| errors.collect(Description::parse(d, self.limits.max_description_chars)));

        let (Some(key), Some(data_type), Some(value), true) =
            (key, data_type, value, errors.is_empty())
        else {
            return Err(errors);
        };
        Ok(SettingWrite {
            key,
            value: StoredValue::Plain(value),
            description,
            category,
            data_type,
            origin: ChangeOrigin::User,
        })
    }
}

/// The tree of a value whose text passed [`check_value_text`] (so its depth is bounded).
fn parse_value(raw: &RawValue) -> Result<Value, FieldError> {
    serde_json::from_str(raw.get())
        .map_err(|_| FieldError::new("value", "invalid_json", "the value is not valid JSON"))
}
