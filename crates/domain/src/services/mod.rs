//! Use cases, generic over the ports: the settings service and the preferences service.

mod preferences;
mod rotation;
mod settings;
mod write_pipeline;

pub use preferences::{PreferencesError, PreferencesService};
pub use rotation::{KeyRotation, RewrapFailure, RewrapOptions, RewrapProgress, RewrapReport};
pub use settings::{
    DeleteSettingError, GetSecretError, GetSettingError, ListSettingsError, SetSettingError,
    SettingsPage, SettingsService,
};
pub use write_pipeline::{PrepareError, SettingInput, WritePipeline};

#[cfg(test)]
mod tests;
