//! Configuration: defaults → YAML file (`--config` / `USER_SETTINGS_CONFIG`, keys under
//! `user_settings:`) → environment variables.
//! Invalid values stop start-up with a message naming the field, once, here: the types carry
//! their invariants (`NonZeroU32` quotas, [`PositiveDuration`] timeouts, the validated
//! `AllowedCategories`), so start-up uses them without checking again.

use std::{num::NonZeroU32, path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Yaml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use domain::settings::AllowedCategories;

use crate::cache::ByteSize;

/// Environment variable → configuration path. Documented in the README.
const ENV_MAP: &[(&str, &str)] = &[
    ("DATABASE_URL", "database.url"),
    (
        "USER_SETTINGS_DATABASE_MAX_CONNECTIONS",
        "database.max_connections",
    ),
    ("USER_SETTINGS_DATABASE_TIMEOUT", "database.timeout"),
    (
        "USER_SETTINGS_DATABASE_STATEMENT_TIMEOUT",
        "database.statement_timeout",
    ),
    (
        "USER_SETTINGS_MIGRATE_ON_START",
        "database.migrate_on_start",
    ),
    ("USER_SETTINGS_BIND", "server.bind"),
    ("USER_SETTINGS_INTERNAL_BIND", "server.internal_bind"),
    ("USER_SETTINGS_WORKERS", "server.workers"),
    ("USER_SETTINGS_REQUIRE_IF_MATCH", "server.require_if_match"),
    (
        "USER_SETTINGS_MAX_CONCURRENT_WRITES",
        "server.max_concurrent_writes_per_user",
    ),
    (
        "USER_SETTINGS_SERVER_MAX_CONNECTIONS",
        "server.max_connections",
    ),
    (
        "USER_SETTINGS_CLIENT_REQUEST_TIMEOUT",
        "server.client_request_timeout",
    ),
    (
        "USER_SETTINGS_CLIENT_DISCONNECT_TIMEOUT",
        "server.client_disconnect_timeout",
    ),
    ("USER_SETTINGS_KEEP_ALIVE", "server.keep_alive"),
    ("USER_SETTINGS_SHUTDOWN_TIMEOUT", "server.shutdown_timeout"),
    ("USER_SETTINGS_ENCRYPTION_KEY", "encryption.key"),
    (
        "USER_SETTINGS_ENCRYPTION_KEYS_PREVIOUS",
        "encryption.previous_keys",
    ),
    ("USER_SETTINGS_JWT_SECRET", "jwt.secret"),
    ("USER_SETTINGS_JWT_PUBLIC_KEY", "jwt.public_key"),
    ("USER_SETTINGS_JWT_ISSUER", "jwt.issuer"),
    ("USER_SETTINGS_JWT_AUDIENCE", "jwt.audience"),
    (
        "USER_SETTINGS_RATE_LIMIT_READS",
        "rate_limiting.reads_per_hour",
    ),
    (
        "USER_SETTINGS_RATE_LIMIT_WRITES",
        "rate_limiting.writes_per_hour",
    ),
    ("USER_SETTINGS_RATE_LIMIT_STORE", "rate_limiting.store"),
    ("USER_SETTINGS_REDIS_URL", "rate_limiting.redis_url"),
    (
        "USER_SETTINGS_RATE_LIMIT_STORE_TIMEOUT",
        "rate_limiting.store_timeout",
    ),
    ("USER_SETTINGS_CACHE_TTL", "cache.settings_ttl"),
    ("USER_PREFERENCES_CACHE_TTL", "cache.preferences_ttl"),
    ("USER_SETTINGS_CACHE_MAX_ENTRIES", "cache.max_entries"),
    (
        "USER_SETTINGS_CACHE_SETTINGS_MAX_BYTES",
        "cache.settings_max_bytes",
    ),
    (
        "USER_SETTINGS_CACHE_LISTINGS_MAX_BYTES",
        "cache.listings_max_bytes",
    ),
    (
        "USER_SETTINGS_CACHE_PREFERENCES_MAX_BYTES",
        "cache.preferences_max_bytes",
    ),
    (
        "USER_SETTINGS_CACHE_MAX_CACHED_LISTING_BYTES",
        "cache.max_cached_listing_bytes",
    ),
    ("USER_SETTINGS_USERS_PROVISIONING", "users.provisioning"),
    (
        "USER_SETTINGS_MAX_BYTES_PER_USER_KB",
        "validation.max_bytes_per_user_kb",
    ),
    (
        "USER_SETTINGS_MAX_BULK_BODY_KB",
        "validation.max_bulk_body_kb",
    ),
    (
        "USER_SETTINGS_MAX_DEVICES_PER_USER",
        "validation.max_devices_per_user",
    ),
    ("USER_SETTINGS_LOG_FORMAT", "log.format"),
    ("USER_SETTINGS_LOG_SLOW_REQUEST", "log.slow_request"),
    (
        "USER_SETTINGS_EVENTS_MAX_STREAMS_PER_USER",
        "events.max_streams_per_user",
    ),
    ("USER_SETTINGS_EVENTS_MAX_STREAMS", "events.max_streams"),
    ("USER_SETTINGS_EVENTS_KEEP_ALIVE", "events.keep_alive"),
    (
        "USER_SETTINGS_HISTORY_KEEP_VERSIONS",
        "history.keep_versions",
    ),
    ("USER_SETTINGS_HISTORY_MAX_AGE", "history.max_age"),
    (
        "USER_SETTINGS_HISTORY_PRUNE_INTERVAL",
        "history.prune_interval",
    ),
];

/// The whole configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// PostgreSQL.
    pub database: DatabaseConfig,
    /// HTTP server.
    pub server: ServerConfig,
    /// Encryption keys.
    pub encryption: EncryptionConfig,
    /// Token verification.
    pub jwt: JwtConfig,
    /// Per-user rate limits.
    pub rate_limiting: RateLimitConfig,
    /// Cache TTLs and byte budgets.
    pub cache: CacheConfig,
    /// Validation limits.
    pub validation: ValidationConfig,
    /// User provisioning.
    pub users: UsersConfig,
    /// Logging.
    pub log: LogConfig,
    /// External service integrations: provider client credentials and endpoints.
    pub integrations: crate::integrations::IntegrationsConfig,
    /// How much history is kept.
    pub history: HistoryConfig,
    /// The live change streams.
    pub events: EventsConfig,
}

/// PostgreSQL settings.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Connection string (`DATABASE_URL`).
    pub url: Option<String>,
    /// Pool size.
    pub max_connections: usize,
    /// Longest wait for a connection (pool wait, connect, recycle) and for one repository
    /// operation: the bound on a 503.
    pub timeout: PositiveDuration,
    /// `statement_timeout` of every session, capped at `timeout` so a statement abandoned by
    /// the client-side deadline does not keep running (and committing) on the server.
    pub statement_timeout: PositiveDuration,
    /// Run migrations at start-up.
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 16,
            timeout: PositiveDuration(Duration::from_secs(2)),
            statement_timeout: PositiveDuration(Duration::from_secs(2)),
            migrate_on_start: true,
        }
    }
}

impl std::fmt::Debug for DatabaseConfig {
    // The URL may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.url.as_ref().map(|_| "[REDACTED]"))
            .field("max_connections", &self.max_connections)
            .field("timeout", &self.timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("migrate_on_start", &self.migrate_on_start)
            .finish()
    }
}

/// HTTP settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address.
    pub bind: String,
    /// Listen address of the operational routes (`/internal/*`, `/metrics`, `/health/*`);
    /// when set they are served only there. Unset: everything on `bind`.
    pub internal_bind: Option<String>,
    /// Worker threads (0 = one per core).
    pub workers: usize,
    /// Refuse writes without `If-Match` (428).
    pub require_if_match: bool,
    /// Most concurrent connections per worker.
    pub max_connections: usize,
    /// Time a client has to send the request head (slow clients cannot hold a worker; actix
    /// would read 0 as "no timeout").
    pub client_request_timeout: PositiveDuration,
    /// Time a client has to acknowledge the connection close.
    pub client_disconnect_timeout: PositiveDuration,
    /// Keep-alive of idle connections (`0` closes after each response).
    #[serde(with = "duration")]
    pub keep_alive: Duration,
    /// Grace period for in-flight requests on shutdown.
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
    /// Most settings writes one user may have in flight on this instance (more answer 429).
    pub max_concurrent_writes_per_user: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        let http = adapter_http::ServerOptions::default();
        Self {
            bind: "127.0.0.1:8080".into(),
            internal_bind: None,
            workers: 0,
            require_if_match: false,
            max_connections: http.max_connections,
            client_request_timeout: PositiveDuration::new(http.client_request_timeout)
                .unwrap_or(PositiveDuration::SECOND),
            client_disconnect_timeout: PositiveDuration::new(http.client_disconnect_timeout)
                .unwrap_or(PositiveDuration::SECOND),
            keep_alive: http.keep_alive,
            shutdown_timeout: http.shutdown_timeout,
            max_concurrent_writes_per_user: adapter_http::WritePermits::DEFAULT_PER_USER,
        }
    }
}

/// Encryption keys (64 hex chars, optional `kid:` prefix).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncryptionConfig {
    /// The current key.
    #[serde(serialize_with = "redacted", deserialize_with = "lenient::secret")]
    pub key: Option<SecretString>,
    /// Decrypt-only keys, comma-separated.
    #[serde(serialize_with = "redacted", deserialize_with = "lenient::secret")]
    pub previous_keys: Option<SecretString>,
    /// Accepted for compatibility with older YAML files; only `aes-256-gcm` is supported.
    pub algorithm: Option<String>,
}

/// Token verification.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// HS256 shared secret.
    #[serde(serialize_with = "redacted", deserialize_with = "lenient::secret")]
    pub secret: Option<SecretString>,
    /// Path to a PEM public key (RS256 or EdDSA); wins over the secret.
    pub public_key: Option<String>,
    /// Required issuer.
    pub issuer: Option<String>,
    /// Required audience.
    pub audience: Option<String>,
}

/// Per-user rate limits.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Reads per user per hour.
    pub reads_per_hour: NonZeroU32,
    /// Writes per user per hour.
    pub writes_per_hour: NonZeroU32,
    /// Where the counters live.
    pub store: RateLimitStore,
    /// The shared store (`redis://` or `rediss://`; may carry a password).
    #[serde(serialize_with = "redacted", deserialize_with = "lenient::secret")]
    pub redis_url: Option<SecretString>,
    /// Longest wait for the shared store; past it the in-process limiter decides.
    pub store_timeout: PositiveDuration,
}

impl RateLimitConfig {
    /// The shared store's URL when the counters live there; `None` for the in-process store.
    /// (Loading refuses the redis store without a URL.)
    pub fn shared_store(&self) -> Option<&SecretString> {
        match self.store {
            RateLimitStore::Memory => None,
            RateLimitStore::Redis => self.redis_url.as_ref(),
        }
    }
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            reads_per_hour: NonZeroU32::new(1000).unwrap_or(NonZeroU32::MIN),
            writes_per_hour: NonZeroU32::new(100).unwrap_or(NonZeroU32::MIN),
            store: RateLimitStore::Memory,
            redis_url: None,
            store_timeout: PositiveDuration(Duration::from_millis(50)),
        }
    }
}

/// Where rate-limit counters live.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RateLimitStore {
    /// In this process: each instance counts its own share.
    #[default]
    Memory,
    /// In a Redis-protocol store shared by every instance (Redis, Valkey, Dragonfly).
    Redis,
}

/// Cache TTLs (`0` disables a cache) and byte budgets.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Settings per user/key and listings.
    #[serde(with = "duration")]
    pub settings_ttl: Duration,
    /// Preferences per user.
    #[serde(with = "duration")]
    pub preferences_ttl: Duration,
    /// Bytes the single-settings cache may hold.
    pub settings_max_bytes: ByteSize,
    /// Bytes the listings cache may hold.
    pub listings_max_bytes: ByteSize,
    /// Bytes the preferences cache may hold.
    pub preferences_max_bytes: ByteSize,
    /// A listing heavier than this is served but not cached.
    pub max_cached_listing_bytes: ByteSize,
    /// When set, also most entries of each cache (a secondary bound beside the bytes).
    pub max_entries: Option<u64>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            settings_ttl: Duration::from_secs(300),
            preferences_ttl: Duration::from_secs(600),
            settings_max_bytes: ByteSize::mib(64),
            listings_max_bytes: ByteSize::mib(64),
            preferences_max_bytes: ByteSize::mib(16),
            max_cached_listing_bytes: ByteSize::mib(1),
            max_entries: None,
        }
    }
}

/// Validation limits (the YAML `validation:` block).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationConfig {
    /// Longest key; fixed by the schema at 255, accepted only if it is 255.
    pub max_key_length: usize,
    /// Largest value, in KiB.
    pub max_value_size_kb: usize,
    /// Deepest JSON nesting.
    pub max_json_depth: usize,
    /// Longest description, in characters.
    pub max_description_chars: usize,
    /// Most settings per user.
    pub max_settings_per_user: u32,
    /// Most KiB of values per user (each value counted as `octet_length(value::text)`).
    pub max_bytes_per_user_kb: u64,
    /// Most items per bulk write.
    pub max_bulk_items: usize,
    /// Largest body of a bulk write, in KiB.
    pub max_bulk_body_kb: usize,
    /// Most devices per user that hold overrides (0 is refused as it is read).
    pub max_devices_per_user: NonZeroU32,
    /// Accepted categories.
    #[serde(with = "categories")]
    pub allowed_categories: AllowedCategories,
}

impl Default for ValidationConfig {
    fn default() -> Self {
        let limits = domain::settings::Limits::default();
        Self {
            max_key_length: domain::settings::MAX_KEY_LEN,
            max_value_size_kb: limits.max_value_bytes / 1024,
            max_json_depth: limits.max_json_depth,
            max_description_chars: limits.max_description_chars,
            max_settings_per_user: limits.max_settings_per_user,
            max_bytes_per_user_kb: limits.max_bytes_per_user / 1024,
            max_bulk_items: limits.max_bulk_items,
            max_bulk_body_kb: 1024,
            max_devices_per_user: NonZeroU32::new(limits.max_devices_per_user)
                .unwrap_or(NonZeroU32::MIN),
            allowed_categories: AllowedCategories::default(),
        }
    }
}

/// The live change streams (the YAML `events:` block).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Streams one user may have open on one instance (more answer 429).
    pub max_streams_per_user: NonZeroU32,
    /// Streams one instance serves (more answer 503 `too_many_streams`).
    pub max_streams: NonZeroU32,
    /// A comment this often on an idle stream (keeps proxies from closing it).
    pub keep_alive: PositiveDuration,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            max_streams_per_user: NonZeroU32::new(8).unwrap_or(NonZeroU32::MIN),
            max_streams: NonZeroU32::new(10_000).unwrap_or(NonZeroU32::MIN),
            keep_alive: PositiveDuration::new(Duration::from_secs(15))
                .unwrap_or(PositiveDuration::SECOND),
        }
    }
}

/// Retention of the history of changes (the YAML `history:` block).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// The last versions of each key (and of each layer's preferences) that are kept.
    pub keep_versions: NonZeroU32,
    /// Older changes are removed whatever their number.
    pub max_age: PositiveDuration,
    /// How often the pruner walks the history (each walk in small batches).
    pub prune_interval: PositiveDuration,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        let retention = domain::history::Retention::default();
        Self {
            keep_versions: NonZeroU32::new(retention.keep_versions).unwrap_or(NonZeroU32::MIN),
            max_age: PositiveDuration::new(retention.max_age).unwrap_or(PositiveDuration::SECOND),
            prune_interval: PositiveDuration::new(Duration::from_secs(600))
                .unwrap_or(PositiveDuration::SECOND),
        }
    }
}

impl HistoryConfig {
    /// The retention this asks for.
    pub fn retention(&self) -> domain::history::Retention {
        domain::history::Retention {
            keep_versions: self.keep_versions.get(),
            max_age: self.max_age.get(),
        }
    }
}

/// Who creates `shared.users` rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProvisioningMode {
    /// The first write for an unknown user creates its row.
    #[default]
    Auto,
    /// The user service owns the rows; writes for unknown users answer 404.
    External,
}

/// User provisioning.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsersConfig {
    /// `auto` or `external`.
    pub provisioning: ProvisioningMode,
}

/// Log output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable (development).
    #[default]
    Pretty,
    /// One JSON object per line (production).
    Json,
}

/// Logging.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `pretty` or `json`.
    pub format: LogFormat,
    /// A request, or a wait for a database connection, that takes at least this long is
    /// logged at `warn` (`0`: never), so slow ones are visible at a production log level.
    #[serde(with = "duration")]
    pub slow_request: Duration,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::default(),
            slow_request: Duration::from_secs(1),
        }
    }
}

impl LogConfig {
    /// The slow-request threshold; `None` when disabled.
    pub fn slow_request(&self) -> Option<Duration> {
        (!self.slow_request.is_zero()).then_some(self.slow_request)
    }
}

/// A configuration problem, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The sources could not be read or a value has the wrong type.
    #[error("invalid configuration: {0}")]
    Load(String),
    /// A value is out of range.
    #[error("invalid configuration: {field}: {message}")]
    Invalid {
        /// Dotted path of the field (e.g. `user_settings.validation.max_bulk_items`).
        field: String,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Loads defaults, then the YAML file (if any), then the environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad field.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new().merge(Serialized::defaults(Root {
            user_settings: Config::default(),
        }));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid {
                    field: "--config".into(),
                    message: format!("the file {} does not exist", path.display()),
                });
            }
            figment = figment.merge(Yaml::file(path));
        }
        figment = figment.merge(Env::raw().filter_map(|key| {
            ENV_MAP
                .iter()
                .find(|(var, _)| key == *var)
                .map(|(_, path)| format!("user_settings.{path}").into())
        }));
        // `USER_SETTINGS_{PROVIDER}_{FIELD}` and `USER_SETTINGS_INTEGRATIONS_*`.
        figment = figment.merge(Env::raw().filter_map(|key| {
            crate::integrations::env_path(key.as_str())
                .map(|path| format!("user_settings.{path}").into())
        }));
        Self::extract(&figment)
    }

    /// Reads and checks the merged sources.
    fn extract(figment: &Figment) -> Result<Self, ConfigError> {
        let root: Root = figment
            .extract()
            .map_err(|e| ConfigError::Load(describe(e)))?;
        root.user_settings
            .validate()
            .map_err(|e| with_source(e, figment))?;
        Ok(root.user_settings)
    }

    /// The checks that span fields or need more than a type: each value alone is already
    /// valid by its type.
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: &str| {
            Err(ConfigError::Invalid {
                field: field.to_owned(),
                message: message.to_owned(),
            })
        };
        let v = &self.validation;
        if v.max_key_length != domain::settings::MAX_KEY_LEN {
            return invalid(
                "user_settings.validation.max_key_length",
                "keys are at most 255 bytes (the database column); only 255 is accepted",
            );
        }
        if v.max_value_size_kb == 0 || v.max_value_size_kb > 10 * 1024 {
            return invalid(
                "user_settings.validation.max_value_size_kb",
                "must be between 1 and 10240",
            );
        }
        if v.max_json_depth == 0 || v.max_json_depth > 128 {
            return invalid(
                "user_settings.validation.max_json_depth",
                "must be between 1 and 128",
            );
        }
        if v.max_bulk_items == 0 || v.max_bulk_items > domain::settings::Limits::BULK_ITEMS_CEILING
        {
            return invalid(
                "user_settings.validation.max_bulk_items",
                "must be between 1 and 1000",
            );
        }
        if v.max_settings_per_user == 0 {
            return invalid(
                "user_settings.validation.max_settings_per_user",
                "must be at least 1",
            );
        }
        if v.max_bytes_per_user_kb < v.max_value_size_kb as u64 {
            return invalid(
                "user_settings.validation.max_bytes_per_user_kb (USER_SETTINGS_MAX_BYTES_PER_USER_KB)",
                &format!(
                    "must be at least validation.max_value_size_kb ({}): a user must be able to store one value of the largest size",
                    v.max_value_size_kb
                ),
            );
        }
        if v.max_bulk_body_kb == 0 || v.max_bulk_body_kb > 64 * 1024 {
            return invalid(
                "user_settings.validation.max_bulk_body_kb (USER_SETTINGS_MAX_BULK_BODY_KB)",
                "must be between 1 and 65536",
            );
        }
        if v.max_bulk_body_kb * 1024 < self.max_body_bytes() {
            return invalid(
                "user_settings.validation.max_bulk_body_kb (USER_SETTINGS_MAX_BULK_BODY_KB)",
                &format!(
                    "must be at least the single-write body limit, {} KiB (2 × validation.max_value_size_kb + 64): a bulk must hold what one write may send",
                    self.max_body_bytes() / 1024
                ),
            );
        }
        if self.server.max_concurrent_writes_per_user == 0 {
            return invalid(
                "user_settings.server.max_concurrent_writes_per_user (USER_SETTINGS_MAX_CONCURRENT_WRITES)",
                "must be at least 1",
            );
        }
        if v.max_description_chars > 1024 {
            return invalid(
                "user_settings.validation.max_description_chars",
                "must be at most 1024 (the database constraint)",
            );
        }
        let limits = &self.rate_limiting;
        if limits.store == RateLimitStore::Redis {
            let Some(url) = &limits.redis_url else {
                return invalid(
                    "user_settings.rate_limiting.redis_url (USER_SETTINGS_REDIS_URL)",
                    "must be set when the rate-limit store is redis",
                );
            };
            if let Err(e) = adapter_redis::RedisGcra::check_url(url.expose_secret()) {
                return invalid(
                    "user_settings.rate_limiting.redis_url (USER_SETTINGS_REDIS_URL)",
                    &e.to_string(),
                );
            }
        }
        if self.database.max_connections == 0 {
            return invalid(
                "user_settings.database.max_connections",
                "must be at least 1",
            );
        }
        if self.cache.max_entries == Some(0) {
            return invalid(
                "user_settings.cache.max_entries (USER_SETTINGS_CACHE_MAX_ENTRIES)",
                "must be at least 1 (a TTL of 0 disables a cache)",
            );
        }
        for (field, size) in [
            (
                "user_settings.cache.settings_max_bytes (USER_SETTINGS_CACHE_SETTINGS_MAX_BYTES)",
                self.cache.settings_max_bytes,
            ),
            (
                "user_settings.cache.listings_max_bytes (USER_SETTINGS_CACHE_LISTINGS_MAX_BYTES)",
                self.cache.listings_max_bytes,
            ),
            (
                "user_settings.cache.preferences_max_bytes (USER_SETTINGS_CACHE_PREFERENCES_MAX_BYTES)",
                self.cache.preferences_max_bytes,
            ),
            (
                "user_settings.cache.max_cached_listing_bytes (USER_SETTINGS_CACHE_MAX_CACHED_LISTING_BYTES)",
                self.cache.max_cached_listing_bytes,
            ),
        ] {
            if size.get() == 0 {
                return invalid(field, "must be more than 0 (a TTL of 0 disables a cache)");
            }
        }
        if self.server.max_connections == 0 {
            return invalid(
                "user_settings.server.max_connections (USER_SETTINGS_SERVER_MAX_CONNECTIONS)",
                "must be at least 1",
            );
        }
        if let Some(alg) = &self.encryption.algorithm
            && !alg.eq_ignore_ascii_case("aes-256-gcm")
        {
            return invalid(
                "user_settings.encryption.algorithm",
                "only aes-256-gcm is supported",
            );
        }
        if self.server.bind.parse::<std::net::SocketAddr>().is_err() {
            return invalid(
                "user_settings.server.bind (USER_SETTINGS_BIND)",
                "must be an address such as 127.0.0.1:8080",
            );
        }
        if let Some(internal) = &self.server.internal_bind
            && internal.parse::<std::net::SocketAddr>().is_err()
        {
            return invalid(
                "user_settings.server.internal_bind (USER_SETTINGS_INTERNAL_BIND)",
                "must be an address such as 127.0.0.1:9090",
            );
        }
        self.integrations.validate()
    }

    /// The domain limits these settings describe.
    pub fn limits(&self) -> domain::settings::Limits {
        let v = &self.validation;
        domain::settings::Limits {
            max_value_bytes: v.max_value_size_kb * 1024,
            max_json_depth: v.max_json_depth,
            max_description_chars: v.max_description_chars,
            max_settings_per_user: v.max_settings_per_user,
            max_bytes_per_user: v.max_bytes_per_user_kb * 1024,
            max_bulk_items: v.max_bulk_items,
            max_devices_per_user: v.max_devices_per_user.get(),
        }
    }

    /// The body limit of a single write: one value of the largest size, escaped twice over
    /// at worst, plus room for the other fields.
    pub fn max_body_bytes(&self) -> usize {
        self.validation.max_value_size_kb * 1024 * 2 + 64 * 1024
    }

    /// The body limit of a bulk write.
    pub fn max_bulk_body_bytes(&self) -> usize {
        self.validation.max_bulk_body_kb * 1024
    }

    /// The database URL.
    ///
    /// # Errors
    /// When `DATABASE_URL` (or `database.url`) is not set.
    pub fn database_url(&self) -> Result<&str, ConfigError> {
        self.database
            .url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| ConfigError::Invalid {
                field: "user_settings.database.url (DATABASE_URL)".into(),
                message: "is required; `cargo xtask run` sets it to the project-local PostgreSQL"
                    .into(),
            })
    }
}

/// One line per problem: the field's dotted path, where the value came from (naming the
/// environment variable when it came from one) and what is wrong.
fn describe(errors: figment::Error) -> String {
    errors
        .into_iter()
        .map(|e| {
            let path = e.path.join(".").to_lowercase();
            let field = path.strip_prefix("user_settings.").unwrap_or(&path);
            let source = source_note(field, e.metadata.as_ref());
            // Type errors quote the value; never for a secret (keys, passwords, URLs).
            let secret = ["key", "secret", "password", "url"]
                .iter()
                .any(|word| field.contains(word));
            if secret {
                format!("{path}{source}: invalid value (not shown: it may be secret)")
            } else {
                format!("{path}{source}: {}", e.kind)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Where the value at `field` (a path under `user_settings.`) came from: the environment
/// variable, or the file; nothing for a default.
fn source_note(field: &str, metadata: Option<&figment::Metadata>) -> String {
    let variable = ENV_MAP
        .iter()
        .find(|(_, p)| *p == field)
        .map(|(var, _)| (*var).to_owned())
        .or_else(|| crate::integrations::env_variable(field));
    match metadata {
        Some(m) if m.name.contains("environment") => variable
            .map(|var| format!(" (environment variable {var})"))
            .unwrap_or_default(),
        Some(figment::Metadata {
            source: Some(source @ figment::Source::File(_)),
            ..
        }) => format!(" (from {source})"),
        _ => String::new(),
    }
}

/// An out-of-range value's error, with where the value came from when the field does not
/// already name its variable.
fn with_source(error: ConfigError, figment: &Figment) -> ConfigError {
    let ConfigError::Invalid { field, message } = error else {
        return error;
    };
    let path = field.split(" (").next().unwrap_or(&field);
    let key = path.strip_prefix("user_settings.").unwrap_or(path);
    let note = source_note(key, figment.find_metadata(path));
    // A field that names its variable already says as much as the environment note.
    let named = note.contains("environment variable") && field.len() > path.len();
    let field = if note.is_empty() || named {
        field
    } else {
        format!("{path}{note}")
    };
    ConfigError::Invalid { field, message }
}

#[derive(Serialize, Deserialize)]
struct Root {
    #[serde(default)]
    user_settings: Config,
}

fn redacted<S: Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str("[REDACTED]"),
        None => s.serialize_none(),
    }
}

/// Durations as text: `250ms`, `5s`, `5m`, `1h`, or `0`.
/// Environment values are typed by their look (`12345` is a number): ids and secrets that
/// happen to be all digits are still text.
mod lenient {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lenient {
        Text(String),
        Unsigned(u64),
        Signed(i64),
        Flag(bool),
    }

    /// An optional secret.
    pub fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
        Ok(Option::<Lenient>::deserialize(d)?.map(|t| {
            SecretString::from(match t {
                Lenient::Text(s) => s,
                Lenient::Unsigned(n) => n.to_string(),
                Lenient::Signed(n) => n.to_string(),
                Lenient::Flag(b) => b.to_string(),
            })
        }))
    }
}

/// A duration greater than zero: for timeouts where 0 would mean "never" or "at once".
/// Written like any duration (`250ms`, `5s`); `0` is refused when the configuration is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PositiveDuration(Duration);

impl PositiveDuration {
    /// One second (the fallback of a default that would otherwise be zero).
    pub const SECOND: Self = Self(Duration::from_secs(1));

    /// `None` for zero.
    pub const fn new(duration: Duration) -> Option<Self> {
        if duration.is_zero() {
            None
        } else {
            Some(Self(duration))
        }
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl TryFrom<Duration> for PositiveDuration {
    type Error = &'static str;

    fn try_from(duration: Duration) -> Result<Self, Self::Error> {
        Self::new(duration).ok_or("must be more than 0")
    }
}

impl From<PositiveDuration> for Duration {
    fn from(positive: PositiveDuration) -> Self {
        positive.0
    }
}

impl Serialize for PositiveDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        duration::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for PositiveDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::try_from(duration::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The category list, checked as it is read.
mod categories {
    use super::*;

    pub fn serialize<S: Serializer>(
        categories: &AllowedCategories,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        categories.names().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<AllowedCategories, D::Error> {
        AllowedCategories::new(Vec::<String>::deserialize(d)?).map_err(|name| {
            serde::de::Error::custom(format!(
                "{name:?} is not a valid category name (a-z, 0-9, '_', '-'; 1-100 chars)"
            ))
        })
    }
}

pub(crate) mod duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(s) => Ok(Duration::from_secs(s)),
            Raw::Text(t) if t.trim() == "0" => Ok(Duration::ZERO),
            Raw::Text(t) => humantime::parse_duration(t.trim()).map_err(|e| {
                serde::de::Error::custom(format!("{t:?} is not a duration such as 5m or 30s: {e}"))
            }),
        }
    }
}

/// Loading as `user-settings` does, from a file and environment of the test's own.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// Loads `yaml` as the `--config` file (`config.yaml`) with `env` set.
    // The closure's error type is figment's own, which is large; it is only a test.
    #[allow(clippy::result_large_err)]
    pub fn load(yaml: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut loaded = None;
        figment::Jail::expect_with(|jail| {
            jail.create_file("config.yaml", if yaml.is_empty() { "{}" } else { yaml })?;
            for (name, value) in env {
                jail.set_env(name, value);
            }
            loaded = Some(Config::load(Some(Path::new("config.yaml"))));
            Ok(())
        });
        loaded.unwrap()
    }

    /// The message of the refusal to load `yaml` with `env`.
    pub fn refusal(yaml: &str, env: &[(&str, &str)]) -> String {
        match load(yaml, env) {
            Ok(_) => panic!("accepted: {yaml} {env:?}"),
            Err(error) => error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{
        testing::{load, refusal},
        *,
    };

    fn field_of(config: &Config) -> Option<String> {
        match config.validate() {
            Err(ConfigError::Invalid { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn the_defaults_are_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn slow_client_timeouts_cannot_be_disabled() {
        for field in ["client_request_timeout", "client_disconnect_timeout"] {
            let message = refusal(&format!("user_settings: {{server: {{{field}: 0}}}}"), &[]);
            assert!(message.contains(&format!("server.{field}")), "{message}");
        }
    }

    #[test]
    fn the_redis_store_needs_a_usable_url_that_errors_do_not_echo() {
        let mut config = Config::default();
        config.rate_limiting.store = RateLimitStore::Redis;
        assert!(field_of(&config).is_some_and(|f| f.contains("rate_limiting.redis_url")));

        config.rate_limiting.redis_url = Some(SecretString::from("http://:hunter2@host"));
        let error = config
            .validate()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("rate_limiting.redis_url"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");

        config.rate_limiting.redis_url = Some(SecretString::from("rediss://:pw@cache:6380/0"));
        assert!(config.validate().is_ok());
    }

    #[test]
    fn an_out_of_range_value_names_the_file_it_came_from() {
        let message = refusal("user_settings: {validation: {max_json_depth: 500}}", &[]);
        assert!(
            message.contains("user_settings.validation.max_json_depth (from "),
            "{message}"
        );
        assert!(message.contains("config.yaml"), "{message}");
    }

    #[test]
    fn a_bad_provider_url_from_the_environment_names_its_variable() {
        let message = refusal(
            "",
            &[("USER_SETTINGS_SIMKL_TOKEN_URL", "ftp://simkl.example/t")],
        );
        assert!(
            message.contains(
                "user_settings.integrations.simkl.token_url (environment variable USER_SETTINGS_SIMKL_TOKEN_URL)"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_bulk_body_limit_below_the_single_write_limit_is_refused_naming_both() {
        let mut config = Config::default();
        config.validation.max_value_size_kb = 1024;
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("validation.max_bulk_body_kb"), "{message}");
        assert!(
            message.contains("validation.max_value_size_kb"),
            "{message}"
        );
        config.validation.max_bulk_body_kb = 2 * 1024 + 64;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn the_store_timeout_must_be_positive() {
        let message = refusal("", &[("USER_SETTINGS_RATE_LIMIT_STORE_TIMEOUT", "0")]);
        assert!(
            message.contains(
                "rate_limiting.store_timeout (environment variable USER_SETTINGS_RATE_LIMIT_STORE_TIMEOUT)"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_zero_rate_limit_is_refused_at_load_naming_the_field_and_its_source() {
        for (variable, field) in [
            ("USER_SETTINGS_RATE_LIMIT_READS", "reads_per_hour"),
            ("USER_SETTINGS_RATE_LIMIT_WRITES", "writes_per_hour"),
        ] {
            let message = refusal("", &[(variable, "0")]);
            assert!(
                message.contains(&format!(
                    "user_settings.rate_limiting.{field} (environment variable {variable})"
                )),
                "{message}"
            );
        }
    }

    #[test]
    fn the_redis_store_without_a_url_is_refused_at_load() {
        let message = refusal("", &[("USER_SETTINGS_RATE_LIMIT_STORE", "redis")]);
        assert!(
            message.contains("user_settings.rate_limiting.redis_url (USER_SETTINGS_REDIS_URL)"),
            "{message}"
        );
    }

    #[test]
    fn the_device_quota_is_read_from_the_environment_and_zero_is_refused_naming_it() {
        let config = load("", &[("USER_SETTINGS_MAX_DEVICES_PER_USER", "5")]).unwrap();
        assert_eq!(config.limits().max_devices_per_user, 5);
        assert_eq!(Config::default().limits().max_devices_per_user, 20);
        let message = refusal("", &[("USER_SETTINGS_MAX_DEVICES_PER_USER", "0")]);
        assert!(
            message.contains(
                "user_settings.validation.max_devices_per_user (environment variable USER_SETTINGS_MAX_DEVICES_PER_USER)"
            ),
            "{message}"
        );
    }

    #[test]
    fn a_zero_rate_limit_in_the_file_is_refused_naming_the_file() {
        let message = refusal("user_settings: {rate_limiting: {writes_per_hour: 0}}", &[]);
        assert!(
            message.contains("user_settings.rate_limiting.writes_per_hour (from "),
            "{message}"
        );
        assert!(message.contains("config.yaml"), "{message}");
    }

    #[test]
    fn an_invalid_category_is_refused_at_load_naming_the_field() {
        let message = refusal(
            "user_settings: {validation: {allowed_categories: [ui, Not Valid]}}",
            &[],
        );
        assert!(
            message.contains("user_settings.validation.allowed_categories"),
            "{message}"
        );
        assert!(message.contains("\"Not Valid\""), "{message}");
    }

    #[test]
    fn configured_categories_are_the_ones_accepted() {
        let config = load(
            "user_settings: {validation: {allowed_categories: [ui, games]}}",
            &[],
        )
        .unwrap();
        assert_eq!(
            config.validation.allowed_categories.names(),
            ["ui", "games"]
        );
    }

    #[test]
    fn zero_database_timeouts_are_refused_at_load_naming_the_field() {
        for field in ["timeout", "statement_timeout"] {
            let message = refusal(&format!("user_settings: {{database: {{{field}: 0}}}}"), &[]);
            assert!(
                message.contains(&format!("user_settings.database.{field}")),
                "{message}"
            );
        }
    }

    #[test]
    fn a_byte_quota_smaller_than_one_value_is_refused() {
        let mut config = Config::default();
        config.validation.max_bytes_per_user_kb = 99;
        assert!(field_of(&config).is_some_and(|f| f.contains("max_bytes_per_user_kb")));
    }

    #[test]
    fn sizes_must_be_positive() {
        let mut config = Config::default();
        config.server.max_connections = 0;
        assert!(field_of(&config).is_some_and(|f| f.contains("server.max_connections")));
        let mut config = Config::default();
        config.cache.max_entries = Some(0);
        assert!(field_of(&config).is_some_and(|f| f.contains("cache.max_entries")));
        let mut config = Config::default();
        config.cache.listings_max_bytes = ByteSize::bytes(0);
        assert!(field_of(&config).is_some_and(|f| f.contains("cache.listings_max_bytes")));
    }

    #[test]
    fn cache_budgets_read_human_sizes_and_keep_max_entries() {
        let config: Config = Figment::new()
            .merge(Yaml::string(
                "cache: {settings_max_bytes: 32MiB, preferences_max_bytes: 1048576, max_entries: 500}",
            ))
            .extract()
            .unwrap();
        assert_eq!(config.cache.settings_max_bytes, ByteSize::mib(32));
        assert_eq!(config.cache.preferences_max_bytes, ByteSize::mib(1));
        assert_eq!(config.cache.listings_max_bytes, ByteSize::mib(64));
        assert_eq!(config.cache.max_entries, Some(500));
        let refused = Figment::new()
            .merge(Yaml::string("cache: {settings_max_bytes: 64MB}"))
            .extract::<Config>()
            .unwrap_err();
        assert!(refused.to_string().contains("64MiB"), "{refused}");
    }
}
