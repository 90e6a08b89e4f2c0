//! PostgreSQL adapter: migrations, repositories and the change feed.
//!
//! - [`PgConfig`] and [`build_pool`]: a deadpool pool with explicit timeouts, TCP keepalive,
//!   `statement_timeout` and `application_name`; TLS (rustls) as libpq's `sslmode` and
//!   `sslrootcert` in the URL ask, for the pool, dedicated connections and the change feed
//!   (`tls`).
//! - [`ping`]: the readiness check.
//! - [`migrate`]: the refinery migrations of `migrations/`, embedded in the binary.
//! - [`PgSettingsRepository`], [`PgDeviceSettingsRepository`], [`PgPreferencesRepository`],
//!   [`PgAuditLog`], [`PgEnvelopeStore`], [`PgOAuthStateStore`], [`PgDefaultsRepository`],
//!   [`PgHistoryRepository`], [`PgImportRepository`], [`PgEventTickets`]: the
//!   domain's ports on PostgreSQL. Static SQL only (the settings' and devices' row statements
//!   built once from shared templates), prepared with `prepare_cached`; optimistic
//!   concurrency in the statements themselves.
//! - [`ChangeFeed`]: `LISTEN user_settings_changes` on a dedicated connection, as typed
//!   [`ChangeEvent`]s, for cache invalidation across instances.
//! - `testing` (feature `testing`): a fresh migrated database per test.
//!
//! Driver errors become domain errors in one place (`errors`); no value of a setting ever
//! appears in an error or a log line.

mod audit_log;
mod change_feed;
mod config;
mod deadline;
mod defaults_repo;
mod device_settings_repo;
mod envelope_store;
mod errors;
mod event_tickets;
mod history_repo;
mod import_repo;
mod migrate;
mod oauth_state_store;
mod pool;
mod preferences_repo;
mod provisioning;
mod settings_repo;
#[cfg(feature = "testing")]
pub mod testing;
mod tls;

pub use audit_log::PgAuditLog;
pub use change_feed::{CHANNEL, ChangeEvent, ChangeFeed, EVENTS_CHANNEL, notice_from_payload};
pub use config::{PgConfig, PgConfigError};
pub use deadline::DEFAULT_OPERATION_TIMEOUT;
pub use defaults_repo::PgDefaultsRepository;
pub use device_settings_repo::PgDeviceSettingsRepository;
pub use envelope_store::PgEnvelopeStore;
pub use event_tickets::PgEventTickets;
pub use history_repo::{PRUNE_ROWS_PER_BATCH, PRUNE_USERS_PER_BATCH, PgHistoryRepository};
pub use import_repo::PgImportRepository;
pub use migrate::{MigrateError, MigrationReport, migrate, migrate_pool};
pub use oauth_state_store::PgOAuthStateStore;
pub use pool::{ConnectError, Pool, PoolStatus, build_pool, connect, ping};
pub use preferences_repo::PgPreferencesRepository;
pub use provisioning::Provisioning;
pub use settings_repo::PgSettingsRepository;
pub use tls::{SslMode, TlsConfigError};
