//! Use cases, generic over the ports: the settings service and the preferences service.

mod preferences;
mod rotation;
mod settings;

pub use preferences::{PreferencesError, PreferencesService};
pub use rotation::{KeyRotation, RewrapFailure, RewrapOptions, RewrapProgress, RewrapReport};
pub use settings::{
    DeleteSettingError, GetSecretError, GetSettingError, ListSettingsError, SetSettingError,
    SettingInput, SettingsPage, SettingsService,
};

#[cfg(test)]
mod tests;
