//! Wiring of the external service integrations: the provider gateway from the
//! `integrations:` configuration, the PostgreSQL store of pending authorizations, and the
//! domain's connection and token services, as the HTTP layer's [`IntegrationsApi`].

mod config;

use std::{sync::Arc, time::Duration};

use adapter_http::handlers::integrations::IntegrationsApi;
use adapter_postgres::{PgOAuthStateStore, Pool};
use adapter_providers::{GatewayConfig, HttpProviderGateway};
use anyhow::Context;
use domain::{
    integrations::{
        Clock, ConnectionService, CredentialVault, OAuthStateStore, ProviderGateway, SystemClock,
        TokenService,
    },
    ports::{AuditLog, SecretCipher, SettingsRepository},
    services::WritePipeline,
};

pub use adapter_providers::ProviderSettings;
pub use config::{IntegrationsConfig, MAX_STATE_TTL, env_path, env_variable};

/// The ports the integration services share with the settings service. Pass the same
/// (decorated) handles, so caches see the integrations' writes.
pub struct IntegrationPorts {
    /// The settings store, as the settings service uses it (with its cache): every write
    /// goes through it, so local caches are invalidated at once.
    pub settings: Arc<dyn SettingsRepository>,
    /// The same store without the cache, for the reads that decide a token refresh: a
    /// rotation by another instance must be seen even while the change feed is down.
    /// `None` when `settings` has no cache.
    pub settings_uncached: Option<Arc<dyn SettingsRepository>>,
    /// The write pipeline of every setting (rules, cipher, per-user quota).
    pub pipeline: WritePipeline<Arc<dyn SecretCipher>>,
    /// The audit log (`token_read`).
    pub audit: Arc<dyn AuditLog>,
    /// Client-side limit of one database operation.
    pub database_timeout: Duration,
}

/// Builds the integration services.
///
/// # Errors
/// When the HTTP client for providers cannot be built (the section itself was checked when
/// the configuration was loaded).
pub fn build(
    config: &IntegrationsConfig,
    pool: &Pool,
    ports: IntegrationPorts,
) -> anyhow::Result<IntegrationsApi> {
    let gateway: Arc<dyn ProviderGateway> = Arc::new(
        HttpProviderGateway::new(&gateway_config(config))
            .context("invalid configuration: user_settings.integrations")?,
    );
    let states: Arc<dyn OAuthStateStore> = Arc::new(
        PgOAuthStateStore::new(pool.clone()).with_operation_timeout(ports.database_timeout),
    );
    // With tokio's timer, so the domain can bound how long a caller waits for a refresh.
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::with_timer(|duration| {
        Box::pin(tokio::time::sleep(duration))
    }));
    let vault = CredentialVault::new(ports.settings, ports.pipeline);
    let vault = Arc::new(match ports.settings_uncached {
        Some(uncached) => vault.with_uncached_reads(uncached),
        None => vault,
    });
    Ok(IntegrationsApi {
        connections: Arc::new(ConnectionService::new(
            Arc::clone(&vault),
            Arc::clone(&gateway),
            states,
            Arc::clone(&clock),
            config.state_ttl.get(),
        )),
        tokens: Arc::new(
            TokenService::new(
                vault,
                ports.audit,
                gateway,
                clock,
                config.token_refresh_skew,
            )
            // A caller waits for another's refresh at most about two provider calls.
            .with_lock_wait(config.http_timeout.get().saturating_mul(2)),
        ),
    })
}

/// The adapter's view of the section: the provider entries as they are.
fn gateway_config(config: &IntegrationsConfig) -> GatewayConfig {
    GatewayConfig {
        timeout: config.http_timeout.get(),
        connect_timeout: config.connect_timeout.get(),
        providers: config.providers.clone(),
        ..GatewayConfig::default()
    }
}
