//! `SettingKey`: the validated name of a setting (`category.service.field`).

use std::fmt;

use serde::Serialize;

use crate::error::FieldError;

/// Longest key accepted, in bytes (the column is `varchar(255)`).
pub const MAX_KEY_LEN: usize = 255;

/// A setting key: `^[a-z0-9._-]+$`, 1..=255 bytes, no empty dot-segment.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SettingKey(String);

impl SettingKey {
    /// Validates `raw` as a key.
    ///
    /// # Errors
    /// A [`FieldError`] on field `key` with code `required`, `too_long`, `invalid_characters`
    /// or `empty_segment`.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() {
            return Err(FieldError::new(
                "key",
                "required",
                "the key must not be empty",
            ));
        }
        if raw.len() > MAX_KEY_LEN {
            return Err(FieldError::new(
                "key",
                "too_long",
                format!("the key must be at most {MAX_KEY_LEN} bytes"),
            ));
        }
        let allowed = |c: char| matches!(c, 'a'..='z' | '0'..='9' | '.' | '_' | '-');
        if !raw.chars().all(allowed) {
            return Err(FieldError::new(
                "key",
                "invalid_characters",
                "the key may contain only a-z, 0-9, '.', '_' and '-'",
            ));
        }
        if raw.split('.').any(str::is_empty) {
            return Err(FieldError::new(
                "key",
                "empty_segment",
                "the key must not start or end with '.' or contain '..'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The dot-separated segments.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('.')
    }
}

impl fmt::Display for SettingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_well_formed_keys() {
        for key in [
            "a",
            "ui.theme",
            "playback.subtitles.defaults",
            "scrobbling.trakt.oauth_tokens",
            "sync.auto_import_enabled",
            "x-1.y_2.z-3",
            "0",
        ] {
            assert!(SettingKey::parse(key).is_ok(), "{key} should be valid");
        }
    }

    #[test]
    fn rejects_malformed_keys_with_precise_codes() {
        let cases = [
            ("", "required"),
            ("UI.theme", "invalid_characters"),
            ("ui theme", "invalid_characters"),
            ("ui/theme", "invalid_characters"),
            ("ui.thème", "invalid_characters"),
            (".ui", "empty_segment"),
            ("ui.", "empty_segment"),
            ("ui..theme", "empty_segment"),
            (".", "empty_segment"),
        ];
        for (key, code) in cases {
            let err = SettingKey::parse(key).expect_err(key);
            assert_eq!(err.code, code, "{key:?}");
            assert_eq!(err.field, "key");
        }
    }

    #[test]
    fn key_length_limit_is_255_bytes() {
        assert!(SettingKey::parse(&"a".repeat(255)).is_ok());
        assert_eq!(
            SettingKey::parse(&"a".repeat(256)).unwrap_err().code,
            "too_long"
        );
    }
}
