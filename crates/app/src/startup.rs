//! `Application`: builds every adapter from the configuration, wires the services, and
//! serves HTTP until stopped.

use std::{net::TcpListener, sync::Arc};

use adapter_crypto::AesGcmKeyring;
use adapter_http::{
    ApiOptions, ApiState, AuthConfig, Authenticator, ServerOptions, VerificationKey,
};
use adapter_postgres::{
    PgAuditLog, PgConfig, PgPreferencesRepository, PgSettingsRepository, Pool, Provisioning,
};
use anyhow::Context;
use domain::{
    ports::{AuditLog, PreferencesRepository, SecretCipher, SettingsRepository},
    registry::KeyRegistry,
    services::{PreferencesService, SettingsService},
    settings::AllowedCategories,
};
use secrecy::ExposeSecret;

use crate::{
    config::{Config, ProvisioningMode},
    readiness::PoolReadiness,
};

/// A built, not yet running, service.
pub struct Application {
    port: u16,
    server: adapter_http::Server,
}

impl Application {
    /// Connects, migrates (unless disabled), checks the keys against the stored envelopes,
    /// wires everything and binds the listener.
    ///
    /// # Errors
    /// Any configuration or start-up problem, with a message naming it.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let pool = database_pool(&config)?;
        if config.database.migrate_on_start {
            adapter_postgres::migrate_pool(&pool)
                .await
                .context("running database migrations")?;
        }
        let keyring = Arc::new(keyring(&config)?);
        crate::keys::check_stored_kids(&pool, &keyring).await?;
        let authenticator = Arc::new(authenticator(&config)?);
        let state = api_state(&config, pool, keyring)?;

        let listener = TcpListener::bind(&config.server.bind)
            .with_context(|| format!("binding {}", config.server.bind))?;
        let port = listener.local_addr()?.port();
        let options = ServerOptions {
            workers: config.server.workers,
            ..ServerOptions::default()
        };
        let server = adapter_http::serve(listener, state, authenticator, &options)?;
        tracing::info!(port, "listening");
        Ok(Self { port, server })
    }

    /// The bound port (useful with `127.0.0.1:0`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM/SIGINT (graceful) or until the server is stopped.
    ///
    /// # Errors
    /// When the server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// The connection pool described by the configuration.
///
/// # Errors
/// When `DATABASE_URL` is missing or malformed.
pub fn database_pool(config: &Config) -> anyhow::Result<Pool> {
    let db = &config.database;
    let mut pg = PgConfig::new(config.database_url()?);
    pg.max_size = db.max_connections;
    pg.wait_timeout = db.timeout;
    pg.create_timeout = db.timeout;
    pg.recycle_timeout = db.timeout;
    pg.connect_timeout = db.timeout;
    pg.statement_timeout = db.statement_timeout;
    adapter_postgres::build_pool(&pg).context("invalid DATABASE_URL")
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

fn authenticator(config: &Config) -> anyhow::Result<Authenticator> {
    let key = match (&config.jwt.public_key, &config.jwt.secret) {
        (Some(path), _) => VerificationKey::PublicKeyPem(
            std::fs::read_to_string(path)
                .with_context(|| format!("USER_SETTINGS_JWT_PUBLIC_KEY: reading {path}"))?,
        ),
        (None, Some(secret)) if !secret.expose_secret().is_empty() => {
            VerificationKey::Hs256(secret.clone())
        }
        _ => anyhow::bail!(
            "USER_SETTINGS_JWT_SECRET is required unless USER_SETTINGS_JWT_PUBLIC_KEY is set"
        ),
    };
    Ok(Authenticator::new(&AuthConfig {
        key,
        issuer: config.jwt.issuer.clone(),
        audience: config.jwt.audience.clone(),
    })?)
}

fn api_state(config: &Config, pool: Pool, keyring: Arc<AesGcmKeyring>) -> anyhow::Result<ApiState> {
    let provisioning = match config.users.provisioning {
        ProvisioningMode::Auto => Provisioning::Auto,
        ProvisioningMode::External => Provisioning::External,
    };
    let settings_repo: Arc<dyn SettingsRepository> =
        Arc::new(PgSettingsRepository::new(pool.clone(), provisioning));
    let preferences_repo: Arc<dyn PreferencesRepository> =
        Arc::new(PgPreferencesRepository::new(pool.clone(), provisioning));
    let audit: Arc<dyn AuditLog> = Arc::new(PgAuditLog::new(pool.clone()));
    let cipher: Arc<dyn SecretCipher> = keyring;
    let categories = AllowedCategories::new(config.validation.allowed_categories.clone())
        .map_err(|name| anyhow::anyhow!("invalid category {name:?}"))?;
    let registry = Arc::new(KeyRegistry::builtin().context("the built-in key registry")?);
    let limits = config.limits();
    Ok(ApiState {
        settings: Arc::new(SettingsService::new(
            settings_repo,
            cipher,
            audit.clone(),
            registry,
            limits,
            categories,
        )),
        preferences: Arc::new(PreferencesService::new(preferences_repo, audit)),
        readiness: Arc::new(PoolReadiness::new(pool)),
        options: ApiOptions {
            require_if_match: config.server.require_if_match,
            max_body_bytes: limits.max_value_bytes * 2 + 64 * 1024,
            max_bulk_body_bytes: (limits.max_value_bytes + 4096) * limits.max_bulk_items
                + 64 * 1024,
        },
    })
}
