//! `Application`: builds every adapter from the configuration, wires the services (with
//! their caches, metrics and rate limiter), and serves HTTP until stopped.

use std::{net::TcpListener, sync::Arc};

use adapter_crypto::AesGcmKeyring;
use adapter_http::{
    ApiOptions, ApiState, AuthConfig, Authenticator, HttpMetrics, Operations, Routes,
    ServerOptions, VerificationKey, WritePermits, events::EventsApi, views::ViewCache,
};
use adapter_postgres::{
    ChangeFeed, PgAuditLog, PgConfig, PgDefaultsRepository, PgEventTickets, PgHistoryRepository,
    PgImportRepository, PgPreferencesRepository, PgSettingsRepository, Pool, Provisioning,
};
use adapter_redis::RedisGcra;
use anyhow::Context;
use domain::{
    ports::{
        AuditLog, DefaultsRepository, DeviceSettingsRepository, HistoryRepository,
        PreferencesRepository, SecretCipher, SettingsRepository,
    },
    registry::KeyRegistry,
    services::{
        DefaultsService, DevicesService, EffectiveService, PortabilityPorts, PortabilityService,
        PreferencesService, SettingsService, SupportService, WritePipeline,
    },
};
use prometheus::Registry;
use secrecy::ExposeSecret;
use tokio::task::JoinHandle;

use crate::{
    bounded_readiness::BoundedReadiness,
    cache::{
        CachedDefaultsRepository, CachedPreferencesRepository, CachedSettingsRepository, Caches,
        DefaultsCache, InvalidatingDeviceSettings, InvalidatingImport, PreferencesCache,
        RenderedViews, SettingsCache, VERIFIED_TOKENS_BYTES, VerifiedTokenCache,
        spawn_invalidation,
    },
    config::{Config, ProvisioningMode},
    counting_cipher::CountingCipher,
    event_hub::{EventHub, spawn_relay},
    history_pruner::spawn_pruner,
    metrics::{AppMetrics, PREFERENCES_CACHE, SETTINGS_CACHE, SETTINGS_LIST_CACHE},
    rate_limiter::{EVICTION_INTERVAL, GovernorRateLimiter, spawn_eviction},
    readiness::{CachedReadiness, PoolReadiness, READINESS_MAX_AGE},
    shared_rate_limiter::{KEY_PREFIX, SharedRateLimiter},
};

/// A built, not yet running, service.
pub struct Application {
    port: u16,
    server: adapter_http::Server,
    internal: Option<(u16, adapter_http::Server)>,
    background: Background,
    events: EventHub,
}

impl Application {
    /// Connects, migrates (unless disabled), checks the keys against the stored envelopes,
    /// wires everything, starts the change feed and binds the listener.
    ///
    /// # Errors
    /// Any configuration or start-up problem, with a message naming it.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pg = pg_config(&config)?;
        // Configuration problems first, before anything connects.
        let authenticator = Arc::new(authenticator(&config)?);
        let pool = adapter_postgres::build_pool(&pg).context("invalid DATABASE_URL")?;
        if config.database.migrate_on_start {
            adapter_postgres::migrate_pool(&pool)
                .await
                .context("running database migrations")?;
        }
        let keyring = Arc::new(keyring(&config)?);
        crate::keys::check_stored_kids(&pool, &keyring).await?;

        let registry = Registry::new();
        let metrics = AppMetrics::register(registry.clone()).context("registering metrics")?;
        let http_metrics =
            Arc::new(HttpMetrics::new(registry).context("registering HTTP metrics")?);
        let cipher: Arc<dyn SecretCipher> =
            Arc::new(CountingCipher::new(keyring, metrics.cipher_counters()));
        let caches = caches(&config, &metrics);
        let mut background = Background::default();
        // Always on: the change streams hear every commit through it, and the caches (when
        // on) are invalidated by it.
        let (feed, events) = ChangeFeed::spawn(&pg).context("starting the change feed")?;
        metrics
            .register_change_feed(feed.reconnect_counter())
            .context("registering metrics")?;
        let hub = EventHub::new(
            config.events.max_streams_per_user.get() as usize,
            config.events.max_streams.get() as usize,
        );
        background
            .tasks
            .push(spawn_relay(feed.subscribe(), hub.clone()));
        if caches.settings.is_some() || caches.preferences.is_some() {
            background
                .tasks
                .push(spawn_invalidation(events, caches.clone()));
        }
        background.change_feed = Some(feed);
        let local_limiter = Arc::new(GovernorRateLimiter::per_hour(
            config.rate_limiting.reads_per_hour,
            config.rate_limiting.writes_per_hour,
        ));
        background.tasks.push(spawn_eviction(
            Arc::clone(&local_limiter),
            EVICTION_INTERVAL,
        ));
        metrics
            .register_pool(&pool)
            .and_then(|()| metrics.register_cache_sizes(caches.clone()))
            .and_then(|()| metrics.register_rate_limiter(Arc::clone(&local_limiter)))
            .context("registering metrics")?;
        let limiter = shared_limiter(&config, local_limiter, &metrics)?;
        let history = PgHistoryRepository::new(pool.clone())
            .with_operation_timeout(config.database.timeout.get());
        background.tasks.push(spawn_pruner(
            history.clone(),
            config.history.retention(),
            config.history.prune_interval.get(),
        ));
        let events = EventsApi {
            streams: Arc::new(hub.clone()),
            tickets: Arc::new(
                PgEventTickets::new(pool.clone())
                    .with_operation_timeout(config.database.timeout.get()),
            ),
            log: Arc::new(history.clone()),
            keep_alive: config.events.keep_alive.get(),
        };
        let state = api_state(&config, pool, cipher, &caches, Arc::new(history), events)?;
        let operations = Operations {
            rate_limiter: limiter,
            metrics: http_metrics,
        };

        let options = server_options(&config);
        let internal = match &config.server.internal_bind {
            Some(bind) => {
                let listener =
                    TcpListener::bind(bind).with_context(|| format!("binding {bind}"))?;
                let port = listener.local_addr()?.port();
                // Operational traffic is light; one (asynchronous) worker serves it.
                let options = ServerOptions {
                    workers: 1,
                    ..options.clone()
                };
                let server = adapter_http::serve(
                    listener,
                    Routes::Internal,
                    state.clone(),
                    Arc::clone(&authenticator),
                    operations.clone(),
                    &options,
                )?;
                tracing::info!(port, "listening (internal routes)");
                Some((port, server))
            }
            None => None,
        };
        let listener = TcpListener::bind(&config.server.bind)
            .with_context(|| format!("binding {}", config.server.bind))?;
        let port = listener.local_addr()?.port();
        let routes = if internal.is_some() {
            Routes::Public
        } else {
            Routes::All
        };
        let server =
            adapter_http::serve(listener, routes, state, authenticator, operations, &options)?;
        tracing::info!(port, "listening");
        Ok(Self {
            port,
            server,
            internal,
            background,
            events: hub,
        })
    }

    /// The bound port (useful with `127.0.0.1:0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The bound port of the internal listener, when one is configured.
    pub fn internal_port(&self) -> Option<u16> {
        self.internal.as_ref().map(|(port, _)| *port)
    }

    /// Serves until SIGTERM/SIGINT (graceful) or until the server is stopped, then stops the
    /// change feed and the timers.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self {
            server,
            internal,
            background,
            events,
            ..
        } = self;
        // The server stops on these signals too; the streams must end first, or a graceful
        // stop would wait for them until its timeout.
        let streams_end = tokio::spawn(async move {
            stop_signal().await;
            events.shut_down();
        });
        let result = match internal {
            None => server.await,
            Some((_, internal)) => run_both(server, internal).await,
        };
        streams_end.abort();
        background.shutdown().await;
        result
    }
}

/// SIGTERM or SIGINT (the signals the server stops on).
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs both listeners' servers; when one stops (a signal, or a failure), stops the other
/// gracefully, so the process never keeps half its routes.
async fn run_both(
    public: adapter_http::Server,
    internal: adapter_http::Server,
) -> std::io::Result<()> {
    let (public_handle, internal_handle) = (public.handle(), internal.handle());
    let mut public = tokio::spawn(public);
    let mut internal = tokio::spawn(internal);
    let joined = |r: Result<std::io::Result<()>, tokio::task::JoinError>| {
        r.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    };
    tokio::select! {
        first = &mut public => {
            internal_handle.stop(true).await;
            let second = joined(internal.await);
            joined(first).and(second)
        }
        first = &mut internal => {
            public_handle.stop(true).await;
            let second = joined(public.await);
            joined(first).and(second)
        }
    }
}

/// What runs beside the server: the change feed and the tasks fed by it or by a timer.
/// Dropped (or shut down) with the application.
#[derive(Default)]
struct Background {
    change_feed: Option<ChangeFeed>,
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    async fn shutdown(mut self) {
        if let Some(feed) = self.change_feed.take() {
            feed.shutdown().await;
        }
        // The rest stops in `drop`.
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The PostgreSQL settings described by the configuration: every wait bounded by
/// `database.timeout`.
///
/// # Errors
/// When `DATABASE_URL` is missing.
pub fn pg_config(config: &Config) -> anyhow::Result<PgConfig> {
    let db = &config.database;
    let mut pg = PgConfig::new(config.database_url()?);
    pg.max_size = db.max_connections;
    // Each HTTP worker queries through a pool of its own (see `adapter_postgres::Pool`):
    // the workers share the configured number between them.
    pg.thread_max_size = db.max_connections.div_ceil(http_workers(config));
    let timeout = db.timeout.get();
    pg.wait_timeout = timeout;
    pg.create_timeout = timeout;
    pg.recycle_timeout = timeout;
    pg.connect_timeout = timeout;
    pg.statement_timeout = db.statement_timeout.get().min(timeout);
    pg.slow_checkout = config.log.slow_request();
    Ok(pg)
}

/// The connection pool described by the configuration.
///
/// # Errors
/// When `DATABASE_URL` is missing or malformed.
pub fn database_pool(config: &Config) -> anyhow::Result<Pool> {
    adapter_postgres::build_pool(&pg_config(config)?).context("invalid DATABASE_URL")
}

/// The public listener's worker threads: as configured, or one per core.
fn http_workers(config: &Config) -> usize {
    match config.server.workers {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        workers => workers,
    }
}

fn server_options(config: &Config) -> ServerOptions {
    let server = &config.server;
    ServerOptions {
        workers: http_workers(config),
        max_connections: server.max_connections,
        client_request_timeout: server.client_request_timeout.get(),
        client_disconnect_timeout: server.client_disconnect_timeout.get(),
        keep_alive: server.keep_alive,
        shutdown_timeout: server.shutdown_timeout,
    }
}

/// The limiter the API asks: the in-process one, or the shared store with it as the fallback.
fn shared_limiter(
    config: &Config,
    local: Arc<GovernorRateLimiter>,
    metrics: &AppMetrics,
) -> anyhow::Result<Arc<dyn adapter_http::RateLimiter>> {
    let limits = &config.rate_limiting;
    let Some(url) = limits.shared_store() else {
        return Ok(local);
    };
    let store =
        RedisGcra::connect_lazily(url.expose_secret(), KEY_PREFIX, limits.store_timeout.get())
            .context("user_settings.rate_limiting.redis_url (USER_SETTINGS_REDIS_URL)")?;
    let fallbacks = metrics
        .register_rate_limit_store_errors()
        .context("registering metrics")?;
    tracing::info!("rate limits are counted in the shared store");
    Ok(Arc::new(SharedRateLimiter::new(
        store,
        local,
        limits.reads_per_hour,
        limits.writes_per_hour,
        fallbacks,
    )))
}

/// The caches the configuration enables (a TTL of 0 disables one).
fn caches(config: &Config, metrics: &AppMetrics) -> Caches {
    let c = &config.cache;
    Caches {
        settings: (!c.settings_ttl.is_zero()).then(|| {
            Arc::new(SettingsCache::new(
                c.settings_ttl,
                c.settings_budgets(),
                metrics.cache_counters(SETTINGS_CACHE),
                metrics.cache_counters(SETTINGS_LIST_CACHE),
            ))
        }),
        preferences: (!c.preferences_ttl.is_zero()).then(|| {
            Arc::new(PreferencesCache::new(
                c.preferences_ttl,
                c.preferences_budget(),
                metrics.cache_counters(PREFERENCES_CACHE),
            ))
        }),
        // The deployment layer lives as long as a setting would.
        defaults: (!c.settings_ttl.is_zero()).then(|| Arc::new(DefaultsCache::new(c.settings_ttl))),
    }
}

/// The keyring described by the configuration.
///
/// # Errors
/// When the current key is missing or any key is malformed (the message names which key,
/// never its material).
pub fn keyring(config: &Config) -> anyhow::Result<AesGcmKeyring> {
    let current = config
        .encryption
        .key
        .as_ref()
        .map(|k| k.expose_secret().to_owned())
        .unwrap_or_default();
    let previous = config
        .encryption
        .previous_keys
        .as_ref()
        .map(|k| k.expose_secret().to_owned())
        .unwrap_or_default();
    AesGcmKeyring::from_config(&current, &previous)
        .context("USER_SETTINGS_ENCRYPTION_KEY / USER_SETTINGS_ENCRYPTION_KEYS_PREVIOUS")
}

/// The token verifier the configuration describes; warns when no audience is required.
///
/// # Errors
/// When no key is configured, the public key cannot be read or parsed, or the HS256 secret
/// is too short (the message names the field, never the value).
fn authenticator(config: &Config) -> anyhow::Result<Authenticator> {
    let (key, field) = match (&config.jwt.public_key, &config.jwt.secret) {
        (Some(path), _) => (
            VerificationKey::PublicKeyPem(
                std::fs::read_to_string(path)
                    .with_context(|| format!("USER_SETTINGS_JWT_PUBLIC_KEY: reading {path}"))?,
            ),
            "user_settings.jwt.public_key (USER_SETTINGS_JWT_PUBLIC_KEY)",
        ),
        (None, Some(secret)) if !secret.expose_secret().is_empty() => (
            VerificationKey::Hs256(secret.clone()),
            "user_settings.jwt.secret (USER_SETTINGS_JWT_SECRET)",
        ),
        _ => anyhow::bail!(
            "USER_SETTINGS_JWT_SECRET is required unless USER_SETTINGS_JWT_PUBLIC_KEY is set"
        ),
    };
    if config.jwt.audience.is_none() {
        tracing::warn!(
            "no JWT audience is required (USER_SETTINGS_JWT_AUDIENCE): tokens the issuer \
             minted for any other service are accepted here too"
        );
    }
    let authenticator = Authenticator::new(&AuthConfig {
        key,
        issuer: config.jwt.issuer.clone(),
        audience: config.jwt.audience.clone(),
    })
    .with_context(|| format!("{field}: unusable"))?;
    Ok(authenticator.remembering(Arc::new(VerifiedTokenCache::new(VERIFIED_TOKENS_BYTES))))
}

fn api_state(
    config: &Config,
    pool: Pool,
    cipher: Arc<dyn SecretCipher>,
    caches: &Caches,
    history: Arc<dyn HistoryRepository>,
    events: EventsApi,
) -> anyhow::Result<ApiState> {
    let provisioning = match config.users.provisioning {
        ProvisioningMode::Auto => Provisioning::Auto,
        ProvisioningMode::External => Provisioning::External,
    };
    let timeout = config.database.timeout.get();
    let settings_repo =
        PgSettingsRepository::new(pool.clone(), provisioning).with_operation_timeout(timeout);
    let devices_repo: Arc<dyn DeviceSettingsRepository> = match &caches.settings {
        Some(cache) => Arc::new(InvalidatingDeviceSettings::new(
            settings_repo.devices(),
            Arc::clone(cache),
        )),
        None => Arc::new(settings_repo.devices()),
    };
    // Token refresh must see other instances' rotations at once, even while the change feed
    // reconnects: it reads around the cache.
    let settings_uncached: Arc<dyn SettingsRepository> = Arc::new(settings_repo.clone());
    let settings_repo: Arc<dyn SettingsRepository> = match &caches.settings {
        Some(cache) => Arc::new(CachedSettingsRepository::new(
            settings_repo,
            Arc::clone(cache),
        )),
        None => Arc::new(settings_repo),
    };
    let preferences_repo =
        PgPreferencesRepository::new(pool.clone(), provisioning).with_operation_timeout(timeout);
    let preferences_repo: Arc<dyn PreferencesRepository> = match &caches.preferences {
        Some(cache) => Arc::new(CachedPreferencesRepository::new(
            preferences_repo,
            Arc::clone(cache),
        )),
        None => Arc::new(preferences_repo),
    };
    let audit_log = PgAuditLog::new(pool.clone()).with_operation_timeout(timeout);
    let support = SupportService::new(Arc::new(audit_log.clone()), Arc::new(audit_log.clone()));
    let audit: Arc<dyn AuditLog> = Arc::new(audit_log);
    let defaults_repo = PgDefaultsRepository::new(pool.clone()).with_operation_timeout(timeout);
    let defaults_repo: Arc<dyn DefaultsRepository> = match &caches.defaults {
        Some(cache) => Arc::new(CachedDefaultsRepository::new(
            defaults_repo,
            Arc::clone(cache),
        )),
        None => Arc::new(defaults_repo),
    };
    let categories = config.validation.allowed_categories.clone();
    let registry = Arc::new(KeyRegistry::builtin().context("the built-in key registry")?);
    let limits = config.limits();
    let effective = EffectiveService::new(
        Arc::clone(&settings_repo),
        Arc::clone(&devices_repo),
        Arc::clone(&preferences_repo),
        Arc::clone(&audit),
        Arc::clone(&registry),
        Arc::clone(&defaults_repo),
    );
    let pipeline = WritePipeline::new(cipher, registry, limits, categories);
    let importer = InvalidatingImport::new(
        PgImportRepository::new(pool.clone(), provisioning).with_operation_timeout(timeout),
        caches.settings.clone(),
        caches.preferences.clone(),
    );
    let portability = PortabilityService::new(
        PortabilityPorts {
            settings: Arc::clone(&settings_repo),
            devices: Arc::clone(&devices_repo),
            preferences: Arc::clone(&preferences_repo),
            defaults: Arc::clone(&defaults_repo),
            audit: Arc::clone(&audit),
            importer: Arc::new(importer),
        },
        pipeline.clone(),
    );
    let integrations = crate::integrations::build(
        &config.integrations,
        &pool,
        crate::integrations::IntegrationPorts {
            settings: Arc::clone(&settings_repo),
            settings_uncached: Some(settings_uncached),
            pipeline: pipeline.clone(),
            audit: Arc::clone(&audit),
            database_timeout: timeout,
        },
    )?;
    let views: Option<Arc<dyn ViewCache>> =
        match (&caches.settings, &caches.preferences, &caches.defaults) {
            (Some(settings), Some(preferences), Some(defaults)) => {
                Some(Arc::new(RenderedViews::new(
                    Arc::clone(settings),
                    Arc::clone(preferences),
                    Arc::clone(defaults),
                    config.cache.settings_ttl,
                    config.cache.settings_budgets().listings,
                )))
            }
            _ => None,
        };
    Ok(ApiState {
        events,
        effective: Arc::new(effective),
        portability: Arc::new(portability),
        support: Arc::new(support),
        views,
        defaults: Arc::new(DefaultsService::new(
            Arc::clone(&defaults_repo),
            pipeline.clone(),
        )),
        devices: Arc::new(
            DevicesService::new(
                Arc::clone(&devices_repo),
                pipeline.clone(),
                Arc::clone(&defaults_repo),
            )
            .with_history(Arc::clone(&history)),
        ),
        settings: Arc::new(
            SettingsService::new(settings_repo, audit.clone(), pipeline)
                .with_defaults(Arc::clone(&defaults_repo))
                .with_history(Arc::clone(&history)),
        ),
        integrations: Some(integrations),
        preferences: Arc::new(
            PreferencesService::new(preferences_repo, audit)
                .with_defaults(defaults_repo)
                .with_devices(Arc::clone(&devices_repo), limits.quota())
                .with_history(history),
        ),
        readiness: Arc::new(CachedReadiness::new(
            BoundedReadiness::new(PoolReadiness::new(pool), timeout),
            READINESS_MAX_AGE,
        )),
        options: ApiOptions {
            require_if_match: config.server.require_if_match,
            max_body_bytes: config.max_body_bytes(),
            max_bulk_body_bytes: config.max_bulk_body_bytes(),
            slow_request: config.log.slow_request(),
        },
        write_permits: Arc::new(WritePermits::new(
            config.server.max_concurrent_writes_per_user,
        )),
    })
}

#[cfg(test)]
mod tests {
    use secrecy::SecretString;

    use super::*;

    #[test]
    fn a_short_jwt_secret_stops_start_up_naming_the_field_not_the_value() {
        let mut config = Config::default();
        config.jwt.secret = Some(SecretString::from("short-but-not-empty"));
        let Err(error) = authenticator(&config) else {
            panic!("a 19-byte secret was accepted");
        };
        let message = format!("{error:#}");
        assert!(message.contains("USER_SETTINGS_JWT_SECRET"), "{message}");
        assert!(message.contains("at least 32 bytes"), "{message}");
        assert!(!message.contains("short-but-not-empty"), "{message}");
    }
}
