//! `Category`: the group a setting belongs to, from a configured list.

use std::fmt;

use serde::Serialize;

use crate::error::FieldError;

/// A category name that is in the configured list.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Category(String);

impl Category {
    /// The category as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Accepts a category read back from the store without checking the list: rows were
    /// validated on write, and the list may since have shrunk.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The categories a deployment accepts (configurable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedCategories(Vec<String>);

impl Default for AllowedCategories {
    fn default() -> Self {
        Self(
            [
                "ui",
                "playback",
                "integrations",
                "sync",
                "notifications",
                "privacy",
            ]
            .map(String::from)
            .to_vec(),
        )
    }
}

impl AllowedCategories {
    /// A custom list. Names must satisfy `^[a-z0-9_-]{1,100}$`.
    ///
    /// # Errors
    /// Returns the first invalid name.
    pub fn new(names: Vec<String>) -> Result<Self, String> {
        for name in &names {
            let ok = !name.is_empty()
                && name.len() <= 100
                && name
                    .chars()
                    .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'));
            if !ok {
                return Err(name.clone());
            }
        }
        Ok(Self(names))
    }

    /// Validates `raw` against the list.
    ///
    /// # Errors
    /// A [`FieldError`] on field `category` with code `unknown_category`.
    pub fn parse(&self, raw: &str) -> Result<Category, FieldError> {
        if self.0.iter().any(|c| c == raw) {
            Ok(Category(raw.to_owned()))
        } else {
            Err(FieldError::new(
                "category",
                "unknown_category",
                format!("the category must be one of: {}", self.0.join(", ")),
            ))
        }
    }

    /// The names in the list.
    pub fn names(&self) -> &[String] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_list_is_the_designs() {
        let allowed = AllowedCategories::default();
        for name in [
            "ui",
            "playback",
            "integrations",
            "sync",
            "notifications",
            "privacy",
        ] {
            assert_eq!(
                allowed.parse(name).map(|c| c.as_str().to_owned()),
                Ok(name.to_owned())
            );
        }
    }

    #[test]
    fn category_outside_the_list_is_rejected() {
        let err = AllowedCategories::default().parse("games").unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.code),
            ("category", "unknown_category")
        );
    }

    #[test]
    fn custom_list_rejects_bad_names() {
        assert!(AllowedCategories::new(vec!["games".into()]).is_ok());
        assert_eq!(
            AllowedCategories::new(vec!["ok".into(), "Bad Name".into()]),
            Err("Bad Name".to_owned())
        );
    }
}
