//! The structured per-user preferences: value objects, defaults, replace and merge-patch.

mod choices;
mod language;
mod layered;
mod model;
mod notification;

pub use choices::{Frequency, ProfileVisibility, Theme};
pub use language::{
    ContentLanguages, LanguageTag, MAX_CONTENT_LANGUAGE_LEN, MAX_DISPLAY_LANGUAGE_LEN,
};
pub use layered::{
    DeploymentPreferences, PreferenceField, PreferenceOverrides, ResolvedPreferences,
    changed_enforced_field, resolve_preferences,
};
pub use model::{Preferences, PrivacyPrefs, StoredPreferences};
pub use notification::{
    Channel, MAX_DEVICE_TOKEN_LEN, MAX_DEVICE_TOKENS, MAX_TYPES, NotificationPrefs,
};

#[cfg(test)]
mod tests;
