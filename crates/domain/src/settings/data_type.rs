//! `DataType`: what kind of value a setting holds.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::FieldError;

/// The declared type of a setting's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    /// A JSON string.
    String,
    /// A JSON number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// Any JSON value; inferred for objects and arrays.
    Json,
    /// Any JSON value, stored only as an encrypted envelope.
    Encrypted,
}

impl DataType {
    /// Every data type, in documentation order.
    pub const ALL: [DataType; 5] = [
        DataType::String,
        DataType::Number,
        DataType::Boolean,
        DataType::Json,
        DataType::Encrypted,
    ];

    /// The name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            DataType::String => "string",
            DataType::Number => "number",
            DataType::Boolean => "boolean",
            DataType::Json => "json",
            DataType::Encrypted => "encrypted",
        }
    }

    /// The type a value has when the client does not say (`None` for `null`).
    pub fn infer(value: &Value) -> Option<DataType> {
        match value {
            Value::Null => None,
            Value::Bool(_) => Some(DataType::Boolean),
            Value::Number(_) => Some(DataType::Number),
            Value::String(_) => Some(DataType::String),
            Value::Array(_) | Value::Object(_) => Some(DataType::Json),
        }
    }

    /// Whether `value` may be stored under this type. `null` is never a value: delete instead.
    pub fn accepts(self, value: &Value) -> bool {
        match self {
            DataType::String => value.is_string(),
            DataType::Number => value.is_number(),
            DataType::Boolean => value.is_boolean(),
            DataType::Json | DataType::Encrypted => !value.is_null(),
        }
    }

    /// Parses a data type name given by a client.
    ///
    /// # Errors
    /// A [`FieldError`] on field `data_type` with code `unknown_data_type`.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        raw.parse().map_err(|()| {
            FieldError::new(
                "data_type",
                "unknown_data_type",
                "the data_type must be one of: string, number, boolean, json, encrypted",
            )
        })
    }
}

impl FromStr for DataType {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        DataType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or(())
    }
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn infers_type_from_value() {
        assert_eq!(DataType::infer(&json!("x")), Some(DataType::String));
        assert_eq!(DataType::infer(&json!(1.5)), Some(DataType::Number));
        assert_eq!(DataType::infer(&json!(false)), Some(DataType::Boolean));
        assert_eq!(DataType::infer(&json!({"a": 1})), Some(DataType::Json));
        assert_eq!(DataType::infer(&json!([1])), Some(DataType::Json));
        assert_eq!(DataType::infer(&json!(null)), None);
    }

    #[test]
    fn scalar_types_accept_only_their_kind() {
        assert!(DataType::String.accepts(&json!("x")));
        assert!(!DataType::String.accepts(&json!(1)));
        assert!(DataType::Number.accepts(&json!(-3)));
        assert!(!DataType::Number.accepts(&json!("3")));
        assert!(DataType::Boolean.accepts(&json!(true)));
        assert!(!DataType::Boolean.accepts(&json!("true")));
    }

    #[test]
    fn json_and_encrypted_accept_anything_but_null() {
        for t in [DataType::Json, DataType::Encrypted] {
            assert!(t.accepts(&json!({"a": 1})));
            assert!(t.accepts(&json!("token")));
            assert!(!t.accepts(&json!(null)));
        }
    }

    #[test]
    fn parses_names_and_rejects_unknown() {
        for t in DataType::ALL {
            assert_eq!(DataType::parse(t.as_str()), Ok(t));
        }
        assert_eq!(
            DataType::parse("text").unwrap_err().code,
            "unknown_data_type"
        );
    }
}
