//! The device layer of settings: `DeviceId`, the name of one of the user's clients, and what
//! the listing of a user's devices says of each.
//!
//! A device exists only through what it overrides: it has no row of its own, so "inherit
//! everything" is the absence of any override, and removing a device removes its overrides.

use std::fmt;

use serde::Serialize;
use time::OffsetDateTime;

use crate::error::FieldError;

/// Longest device id, in bytes (the column is `varchar(64)`).
pub const MAX_DEVICE_ID_LEN: usize = 64;

/// What [`DeviceId::parse`] accepts, as a regular expression (the store's CHECK and the API
/// document state it too).
pub const DEVICE_ID_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";

/// The id a client gives itself: `^[A-Za-z0-9._-]{1,64}$`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DeviceId(String);

impl DeviceId {
    /// Validates `raw` as a device id.
    ///
    /// # Errors
    /// A [`FieldError`] on field `device_id` with code `invalid_device_id`.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        if (1..=MAX_DEVICE_ID_LEN).contains(&raw.len()) && raw.bytes().all(allowed) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::new(
                "device_id",
                "invalid_device_id",
                format!(
                    "a device id is 1 to {MAX_DEVICE_ID_LEN} characters of A-Z, a-z, 0-9, '.', '_' and '-'"
                ),
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One of the user's devices, as the listing shows it: what it overrides, per kind of value.
/// Each layered kind adds its own member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSummary {
    /// The device.
    pub device_id: DeviceId,
    /// How many settings it overrides.
    pub settings: u64,
    /// The preference fields it overrides.
    pub preferences: Vec<crate::preferences::PreferenceField>,
    /// The last change of any of its overrides.
    pub updated_at: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ids_of_letters_digits_dots_underscores_and_dashes() {
        for id in [
            "a",
            "Phone-1",
            "tv.living_room",
            "0",
            &"x".repeat(64),
            "...",
        ] {
            assert_eq!(DeviceId::parse(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn refuses_empty_long_and_foreign_ids_on_the_device_id_field() {
        for id in [
            "",
            &"x".repeat(65),
            "a b",
            "a/b",
            "tél",
            "a%2Fb",
            "a\0",
            "a\n",
        ] {
            let error = DeviceId::parse(id).unwrap_err();
            assert_eq!(
                (error.field.as_str(), error.code),
                ("device_id", "invalid_device_id"),
                "{id:?}"
            );
        }
    }
}
