//! Errors shared by several operations: field-level validation errors and store failures.

use std::fmt;

use serde::Serialize;

/// One problem with one input field, in the shape the HTTP API reports (`{field, code, message}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Path of the field, e.g. `key`, `value.style.size` or `settings[3].category`.
    pub field: String,
    /// Stable machine-readable code, e.g. `invalid_characters`.
    pub code: &'static str,
    /// Human-readable explanation. Never contains a submitted secret.
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }

    /// The same error reported under `prefix` (e.g. `settings[2]`).
    #[must_use]
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.field = if self.field.is_empty() {
            prefix.to_owned()
        } else {
            format!("{prefix}.{}", self.field)
        };
        self
    }
}

/// Every problem found in one request: validation never stops at the first error.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(transparent)]
pub struct ValidationErrors(Vec<FieldError>);

impl ValidationErrors {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// A collection holding one error.
    pub fn single(error: FieldError) -> Self {
        Self(vec![error])
    }

    /// Adds an error.
    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    /// Adds every error of `other`, each reported under `prefix`.
    pub fn extend_prefixed(&mut self, prefix: &str, other: ValidationErrors) {
        self.0
            .extend(other.0.into_iter().map(|e| e.prefixed(prefix)));
    }

    /// Adds every error of `other` as it is.
    pub fn extend(&mut self, other: ValidationErrors) {
        self.0.extend(other.0);
    }

    /// Records the error of `result`, if any, and returns its value.
    pub fn collect<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.push(error);
                None
            }
        }
    }

    /// True when nothing was wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The errors, in the order found.
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// `Ok(value)` when empty, else `Err(self)`.
    ///
    /// # Errors
    /// Returns `self` when it holds at least one error.
    pub fn into_result<T>(self, value: T) -> Result<T, Self> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} validation error(s)", self.0.len())?;
        for e in &self.0 {
            write!(f, "; {}: {}", e.field, e.message)?;
        }
        Ok(())
    }
}

/// A failure of the store that is not about the data itself.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// The store cannot be reached or did not answer in time; retrying later may succeed.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Anything else; the cause is kept for the logs, never shown to clients.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}
