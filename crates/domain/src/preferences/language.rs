//! Language tags in BCP 47 shape, and comma-separated lists of them.

use std::fmt;

use serde::Serialize;

use crate::error::FieldError;

/// Longest display language accepted (the column is `varchar(10)`).
pub const MAX_DISPLAY_LANGUAGE_LEN: usize = 10;
/// Longest content-language list accepted (the column is `varchar(255)`).
pub const MAX_CONTENT_LANGUAGE_LEN: usize = 255;

/// A language tag with the shape of BCP 47 (`en`, `en-US`, `zh-Hant-TW`, `es-419`).
///
/// Only the shape is checked (a 2–3 or 5–8 letter language subtag followed by 1–8 character
/// alphanumeric subtags), not registry membership: new subtags must not need a deployment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct LanguageTag(String);

impl LanguageTag {
    /// Validates a tag of at most `max_len` bytes, reported on `field`.
    ///
    /// # Errors
    /// A [`FieldError`] with code `too_long` or `invalid_language_tag`.
    pub fn parse(raw: &str, max_len: usize, field: &str) -> Result<Self, FieldError> {
        if raw.len() > max_len {
            return Err(FieldError::new(
                field,
                "too_long",
                format!("the language tag must be at most {max_len} characters"),
            ));
        }
        if !has_bcp47_shape(raw) {
            return Err(FieldError::new(
                field,
                "invalid_language_tag",
                format!("{raw:?} is not a BCP 47 language tag such as \"en\" or \"en-US\""),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// A tag known valid at compile time (built-in defaults).
    pub(crate) fn trusted(raw: &'static str) -> Self {
        Self(raw.to_owned())
    }

    /// The tag as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LanguageTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn has_bcp47_shape(raw: &str) -> bool {
    let mut subtags = raw.split('-');
    let Some(language) = subtags.next() else {
        return false;
    };
    let language_ok = matches!(language.len(), 2 | 3 | 5..=8)
        && language.chars().all(|c| c.is_ascii_alphabetic());
    language_ok
        && subtags
            .all(|s| (1..=8).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Preferred content languages, in order (`"en,de,ja"`), each a [`LanguageTag`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ContentLanguages(String);

impl ContentLanguages {
    /// Validates a comma-separated list; blanks around commas are dropped.
    ///
    /// # Errors
    /// A [`FieldError`] on `content_language` with code `too_long`, `required` or
    /// `invalid_language_tag`.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        const FIELD: &str = "content_language";
        let tags: Vec<&str> = raw.split(',').map(str::trim).collect();
        if tags.iter().any(|t| t.is_empty()) {
            return Err(FieldError::new(
                FIELD,
                "required",
                "the list must not contain empty entries",
            ));
        }
        for tag in &tags {
            LanguageTag::parse(tag, MAX_CONTENT_LANGUAGE_LEN, FIELD)?;
        }
        let normalized = tags.join(",");
        if normalized.len() > MAX_CONTENT_LANGUAGE_LEN {
            return Err(FieldError::new(
                FIELD,
                "too_long",
                format!("the list must be at most {MAX_CONTENT_LANGUAGE_LEN} characters"),
            ));
        }
        Ok(Self(normalized))
    }

    /// The list as stored (`"en,de"`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tags, in order of preference.
    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.0.split(',')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_bcp47_shaped_tags() {
        for tag in ["en", "en-US", "zh-Hant", "es-419", "gsw", "de-CH-1996"] {
            assert!(
                LanguageTag::parse(tag, 10, "display_language").is_ok(),
                "{tag}"
            );
        }
    }

    #[test]
    fn rejects_malformed_tags() {
        for tag in [
            "", "e", "english!", "en_US", "en-", "-en", "1a", "en--US", "abcd",
        ] {
            let err = LanguageTag::parse(tag, 10, "display_language").unwrap_err();
            assert_eq!(err.code, "invalid_language_tag", "{tag}");
        }
    }

    #[test]
    fn display_language_is_at_most_ten_characters() {
        assert!(LanguageTag::parse("de-CH-1996", 10, "display_language").is_ok());
        let err = LanguageTag::parse("de-CH-19966", 10, "display_language").unwrap_err();
        assert_eq!(err.code, "too_long");
    }

    #[test]
    fn content_languages_are_normalized_and_validated() {
        assert_eq!(
            ContentLanguages::parse("en, de ,ja").unwrap().as_str(),
            "en,de,ja"
        );
        assert_eq!(
            ContentLanguages::parse("en,,de").unwrap_err().code,
            "required"
        );
        assert_eq!(
            ContentLanguages::parse("en,xx_YY").unwrap_err().code,
            "invalid_language_tag"
        );
        let long = vec!["en-US"; 43].join(",");
        assert_eq!(long.len(), 257);
        assert_eq!(ContentLanguages::parse(&long).unwrap_err().code, "too_long");
    }
}
