//! What the handlers share: the services (behind trait objects, so the app can decorate the
//! ports), the readiness probe and the HTTP options.

use std::sync::Arc;

use async_trait::async_trait;
use domain::{
    ports::{
        AuditLog, DefaultsRepository, DeviceSettingsRepository, PreferencesRepository,
        SecretCipher, SettingsRepository,
    },
    services::{
        DefaultsService, DevicesService, EffectiveService, PortabilityService, PreferencesService,
        SettingsService, SupportService,
    },
};

/// The settings service as the HTTP layer holds it.
pub type DynSettingsService =
    SettingsService<Arc<dyn SettingsRepository>, Arc<dyn SecretCipher>, Arc<dyn AuditLog>>;
/// The preferences service as the HTTP layer holds it.
pub type DynPreferencesService =
    PreferencesService<Arc<dyn PreferencesRepository>, Arc<dyn AuditLog>>;

/// The deployment layer's service as the HTTP layer holds it.
pub type DynDefaultsService = DefaultsService<Arc<dyn DefaultsRepository>, Arc<dyn SecretCipher>>;

/// The effective view's service as the HTTP layer holds it.
pub type DynEffectiveService = EffectiveService<
    Arc<dyn SettingsRepository>,
    Arc<dyn PreferencesRepository>,
    Arc<dyn AuditLog>,
>;
/// The device layer's service as the HTTP layer holds it.
pub type DynDevicesService =
    DevicesService<Arc<dyn DeviceSettingsRepository>, Arc<dyn SecretCipher>>;

/// Export and import as the HTTP layer holds them.
pub type DynPortabilityService = PortabilityService<Arc<dyn SecretCipher>>;

/// Answers whether the service can do its job (the database is reachable).
#[async_trait]
pub trait Readiness: Send + Sync {
    /// `Err` names what is not ready.
    async fn check(&self) -> Result<(), String>;
}

/// Tunables of the HTTP layer.
#[derive(Clone, Debug)]
pub struct ApiOptions {
    /// Refuse writes without `If-Match`/`If-None-Match` (428).
    pub require_if_match: bool,
    /// Largest body of a single-resource request.
    pub max_body_bytes: usize,
    /// Largest body of a bulk write.
    pub max_bulk_body_bytes: usize,
    /// Requests that take at least this long are logged at `warn` ("slow request"), the
    /// others at `info`; `None` logs every request at `info`.
    pub slow_request: Option<std::time::Duration>,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            require_if_match: false,
            max_body_bytes: 256 * 1024,
            max_bulk_body_bytes: 1024 * 1024,
            slow_request: Some(std::time::Duration::from_secs(1)),
        }
    }
}

/// Everything the routes need.
#[derive(Clone)]
pub struct ApiState {
    /// Settings use cases.
    pub settings: Arc<DynSettingsService>,
    /// Preferences use cases.
    pub preferences: Arc<DynPreferencesService>,
    /// The deployment layer's use cases.
    pub defaults: Arc<DynDefaultsService>,
    /// The effective view across every layer.
    pub effective: Arc<DynEffectiveService>,
    /// Rendered effective views (`None`: every read builds its view).
    pub views: Option<Arc<dyn crate::views::ViewCache>>,
    /// The device layer's use cases.
    pub devices: Arc<DynDevicesService>,
    /// Export and import.
    pub portability: Arc<DynPortabilityService>,
    /// Support's audited reads that no other service audits, and the audit trail.
    pub support: Arc<SupportService>,
    /// The live change streams.
    pub events: crate::events::EventsApi,
    /// Readiness probe.
    pub readiness: Arc<dyn Readiness>,
    /// Options.
    pub options: ApiOptions,
    /// External service integrations (`None`: their routes are not mounted).
    pub integrations: Option<crate::handlers::integrations::IntegrationsApi>,
    /// Settings writes in flight per user, shared by every worker.
    pub write_permits: Arc<crate::write_permits::WritePermits>,
}
