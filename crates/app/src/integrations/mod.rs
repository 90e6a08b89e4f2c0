//! Wiring of the external service integrations: the provider gateway from the
//! `integrations:` configuration, the PostgreSQL store of pending authorizations, and the
//! domain's connection and token services, as the HTTP layer's [`IntegrationsApi`].

mod config;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use adapter_http::handlers::integrations::IntegrationsApi;
use adapter_postgres::{PgOAuthStateStore, Pool};
use adapter_providers::{GatewayConfig, HttpProviderGateway, ProviderSettings};
use anyhow::Context;
use domain::{
    integrations::{
        Clock, ConnectionService, CredentialVault, OAuthStateStore, ProviderGateway, ProviderId,
        SystemClock, TokenService,
    },
    ports::{AuditLog, SecretCipher, SettingsRepository},
    registry::KeyRegistry,
    settings::Limits,
};

pub use config::{IntegrationsConfig, MAX_STATE_TTL, ProviderConfig, env_path};

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
    /// The cipher.
    pub cipher: Arc<dyn SecretCipher>,
    /// The audit log (`token_read`).
    pub audit: Arc<dyn AuditLog>,
    /// The known-key registry (validates what is stored).
    pub registry: Arc<KeyRegistry>,
    /// The settings limits (per-user quota).
    pub limits: Limits,
    /// Client-side limit of one database operation.
    pub database_timeout: Duration,
}

/// Builds the integration services.
///
/// # Errors
/// A bad provider URL or duration, with a message naming the field.
pub fn build(
    config: &IntegrationsConfig,
    pool: &Pool,
    ports: IntegrationPorts,
) -> anyhow::Result<IntegrationsApi> {
    config.validate()?;
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
    let vault = CredentialVault::new(ports.settings, ports.cipher, ports.registry, ports.limits);
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
            config.state_ttl,
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
            .with_lock_wait(config.http_timeout.saturating_mul(2)),
        ),
    })
}

/// The adapter's view of the section.
fn gateway_config(config: &IntegrationsConfig) -> GatewayConfig {
    let providers = ProviderId::ALL
        .into_iter()
        .map(|id| (id, provider_settings(provider_config(config, id))))
        .collect::<BTreeMap<_, _>>();
    GatewayConfig {
        timeout: config.http_timeout,
        connect_timeout: config.connect_timeout,
        providers,
        ..GatewayConfig::default()
    }
}

fn provider_config(config: &IntegrationsConfig, id: ProviderId) -> &ProviderConfig {
    match id {
        ProviderId::Trakt => &config.trakt,
        ProviderId::Lastfm => &config.lastfm,
        ProviderId::Listenbrainz => &config.listenbrainz,
        ProviderId::Simkl => &config.simkl,
        ProviderId::Letterboxd => &config.letterboxd,
        ProviderId::Anilist => &config.anilist,
        ProviderId::Myanimelist => &config.myanimelist,
        ProviderId::Kitsu => &config.kitsu,
        ProviderId::Spotify => &config.spotify,
    }
}

fn provider_settings(p: &ProviderConfig) -> ProviderSettings {
    ProviderSettings {
        enabled: p.enabled,
        client_id: p.client_id.clone(),
        client_secret: p.client_secret.clone(),
        redirect_uris: p
            .redirect_uri
            .iter()
            .chain(&p.extra_redirect_uris)
            .cloned()
            .collect(),
        auth_url: p.auth_url.clone(),
        token_url: p.token_url.clone(),
        api_url: p.api_url.clone(),
        revoke_url: p.revoke_url.clone(),
        scopes: p.scopes.clone(),
    }
}
