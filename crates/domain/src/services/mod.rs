//! Use cases, generic over the ports: the settings service and the preferences service.

mod defaults;
mod devices;
mod effective;
mod history;
mod portability;
mod preferences;
mod rotation;
mod settings;
mod support;
mod write_pipeline;

pub use defaults::{DefaultsError, DefaultsService};
pub use devices::{DeleteDeviceError, DevicesService};
pub use effective::{EffectiveService, EffectiveView};
pub use history::{DEFAULT_HISTORY_LIMIT, HistoryError, MAX_HISTORY_LIMIT, NotRestorable};
pub use portability::{ImportError, PortabilityPorts, PortabilityService};
pub use preferences::{EffectivePreferences, PreferencesError, PreferencesService};
pub use rotation::{KeyRotation, RewrapFailure, RewrapOptions, RewrapProgress, RewrapReport};
pub use settings::{
    DeleteSettingError, GetSecretError, GetSettingError, ListSettingsError, SetSettingError,
    SettingsPage, SettingsService,
};
pub use support::{AuditTrailError, SupportService};
pub use write_pipeline::{PlainPrepareError, PrepareError, SettingInput, WritePipeline};

#[cfg(test)]
mod tests;
