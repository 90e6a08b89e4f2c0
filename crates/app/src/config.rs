//! Configuration: defaults → YAML file (`--config` / `USER_SETTINGS_CONFIG`, keys under
//! `user_settings:` as in the seed) → environment variables (the seed's names).
//! Invalid values stop start-up with a message naming the field.

use std::{path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Serialized, Yaml},
};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Environment variable → configuration path. Every variable of DESIGN §7, plus a few more.
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
    ("USER_SETTINGS_CACHE_TTL", "cache.settings_ttl"),
    ("USER_PREFERENCES_CACHE_TTL", "cache.preferences_ttl"),
    ("USER_SETTINGS_CACHE_MAX_ENTRIES", "cache.max_entries"),
    ("USER_SETTINGS_USERS_PROVISIONING", "users.provisioning"),
    ("USER_SETTINGS_LOG_FORMAT", "log.format"),
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
    /// Cache TTLs.
    pub cache: CacheConfig,
    /// Validation limits.
    pub validation: ValidationConfig,
    /// User provisioning.
    pub users: UsersConfig,
    /// Logging.
    pub log: LogConfig,
    /// External service integrations: provider client credentials and endpoints.
    pub integrations: crate::integrations::IntegrationsConfig,
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
    #[serde(with = "duration")]
    pub timeout: Duration,
    /// `statement_timeout` of every session, capped at `timeout` so a statement abandoned by
    /// the client-side deadline does not keep running (and committing) on the server.
    #[serde(with = "duration")]
    pub statement_timeout: Duration,
    /// Run migrations at start-up.
    pub migrate_on_start: bool,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 16,
            timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(2),
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
    /// Time a client has to send the request head (slow clients cannot hold a worker).
    #[serde(with = "duration")]
    pub client_request_timeout: Duration,
    /// Time a client has to acknowledge the connection close.
    #[serde(with = "duration")]
    pub client_disconnect_timeout: Duration,
    /// Keep-alive of idle connections (`0` closes after each response).
    #[serde(with = "duration")]
    pub keep_alive: Duration,
    /// Grace period for in-flight requests on shutdown.
    #[serde(with = "duration")]
    pub shutdown_timeout: Duration,
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
            client_request_timeout: http.client_request_timeout,
            client_disconnect_timeout: http.client_disconnect_timeout,
            keep_alive: http.keep_alive,
            shutdown_timeout: http.shutdown_timeout,
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
    /// Accepted for compatibility with the seed's YAML; only `aes-256-gcm` is supported.
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
    pub reads_per_hour: u32,
    /// Writes per user per hour.
    pub writes_per_hour: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            reads_per_hour: 1000,
            writes_per_hour: 100,
        }
    }
}

/// Cache TTLs (`0` disables a cache) and size.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Settings per user/key and listings.
    #[serde(with = "duration")]
    pub settings_ttl: Duration,
    /// Preferences per user.
    #[serde(with = "duration")]
    pub preferences_ttl: Duration,
    /// Most entries of each cache (single settings, listings, preferences).
    pub max_entries: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            settings_ttl: Duration::from_secs(300),
            preferences_ttl: Duration::from_secs(600),
            max_entries: 100_000,
        }
    }
}

/// Validation limits (the seed's `validation:` block plus DESIGN §4).
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
    /// Most items per bulk write.
    pub max_bulk_items: usize,
    /// Accepted categories.
    pub allowed_categories: Vec<String>,
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
            max_bulk_items: limits.max_bulk_items,
            allowed_categories: domain::settings::AllowedCategories::default()
                .names()
                .to_vec(),
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
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `pretty` or `json`.
    pub format: LogFormat,
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
        field: &'static str,
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
                    field: "--config",
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
        let root: Root = figment
            .extract()
            .map_err(|e| ConfigError::Load(describe(e)))?;
        root.user_settings.validate()?;
        Ok(root.user_settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                field,
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
        if v.max_bulk_items == 0 || v.max_bulk_items > 1000 {
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
        if v.max_description_chars > 1024 {
            return invalid(
                "user_settings.validation.max_description_chars",
                "must be at most 1024 (the database constraint)",
            );
        }
        if let Err(name) = domain::settings::AllowedCategories::new(v.allowed_categories.clone()) {
            return invalid(
                "user_settings.validation.allowed_categories",
                &format!("{name:?} is not a valid category name (a-z, 0-9, '_', '-'; 1-100 chars)"),
            );
        }
        if self.rate_limiting.reads_per_hour == 0 {
            return invalid(
                "user_settings.rate_limiting.reads_per_hour",
                "must be at least 1",
            );
        }
        if self.rate_limiting.writes_per_hour == 0 {
            return invalid(
                "user_settings.rate_limiting.writes_per_hour",
                "must be at least 1",
            );
        }
        if self.database.max_connections == 0 {
            return invalid(
                "user_settings.database.max_connections",
                "must be at least 1",
            );
        }
        if self.database.timeout.is_zero() {
            return invalid("user_settings.database.timeout", "must be more than 0");
        }
        if self.database.statement_timeout.is_zero() {
            return invalid(
                "user_settings.database.statement_timeout",
                "must be more than 0",
            );
        }
        if self.cache.max_entries == 0 {
            return invalid(
                "user_settings.cache.max_entries (USER_SETTINGS_CACHE_MAX_ENTRIES)",
                "must be at least 1 (a TTL of 0 disables a cache)",
            );
        }
        if self.server.max_connections == 0 {
            return invalid(
                "user_settings.server.max_connections (USER_SETTINGS_SERVER_MAX_CONNECTIONS)",
                "must be at least 1",
            );
        }
        // actix reads 0 as "no timeout", which would let slow clients hold workers forever.
        if self.server.client_request_timeout.is_zero() {
            return invalid(
                "user_settings.server.client_request_timeout (USER_SETTINGS_CLIENT_REQUEST_TIMEOUT)",
                "must be more than 0",
            );
        }
        if self.server.client_disconnect_timeout.is_zero() {
            return invalid(
                "user_settings.server.client_disconnect_timeout (USER_SETTINGS_CLIENT_DISCONNECT_TIMEOUT)",
                "must be more than 0",
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
        Ok(())
    }

    /// The domain limits these settings describe.
    pub fn limits(&self) -> domain::settings::Limits {
        let v = &self.validation;
        domain::settings::Limits {
            max_value_bytes: v.max_value_size_kb * 1024,
            max_json_depth: v.max_json_depth,
            max_description_chars: v.max_description_chars,
            max_settings_per_user: v.max_settings_per_user,
            max_bulk_items: v.max_bulk_items,
        }
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
            .ok_or(ConfigError::Invalid {
                field: "user_settings.database.url (DATABASE_URL)",
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
            let source = match ENV_MAP.iter().find(|(_, p)| *p == field) {
                Some((var, _))
                    if e.metadata
                        .as_ref()
                        .is_some_and(|m| m.name.contains("environment")) =>
                {
                    format!(" (environment variable {var})")
                }
                _ => e
                    .metadata
                    .as_ref()
                    .and_then(|m| m.source.as_ref())
                    .map(|s| format!(" (from {s})"))
                    .unwrap_or_default(),
            };
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

#[derive(Serialize, Deserialize)]
struct Root {
    #[serde(default)]
    user_settings: Config,
}

pub(crate) fn redacted<S: Serializer>(
    value: &Option<SecretString>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str("[REDACTED]"),
        None => s.serialize_none(),
    }
}

/// Durations as text: `250ms`, `5s`, `5m`, `1h`, or `0`.
/// Environment values are typed by their look (`12345` is a number): ids and secrets that
/// happen to be all digits are still text.
pub(crate) mod lenient {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lenient {
        Text(String),
        Unsigned(u64),
        Signed(i64),
        Flag(bool),
    }

    fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Lenient>::deserialize(d)?.map(|t| match t {
            Lenient::Text(s) => s,
            Lenient::Unsigned(n) => n.to_string(),
            Lenient::Signed(n) => n.to_string(),
            Lenient::Flag(b) => b.to_string(),
        }))
    }

    /// An optional string.
    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        text(d)
    }

    /// An optional secret.
    pub fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
        Ok(text(d)?.map(SecretString::from))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(config: &Config) -> Option<&'static str> {
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
        let mut config = Config::default();
        config.server.client_request_timeout = Duration::ZERO;
        assert!(field_of(&config).is_some_and(|f| f.contains("client_request_timeout")));
        let mut config = Config::default();
        config.server.client_disconnect_timeout = Duration::ZERO;
        assert!(field_of(&config).is_some_and(|f| f.contains("client_disconnect_timeout")));
    }

    #[test]
    fn sizes_must_be_positive() {
        let mut config = Config::default();
        config.server.max_connections = 0;
        assert!(field_of(&config).is_some_and(|f| f.contains("server.max_connections")));
        let mut config = Config::default();
        config.cache.max_entries = 0;
        assert!(field_of(&config).is_some_and(|f| f.contains("cache.max_entries")));
    }
}
