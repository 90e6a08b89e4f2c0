//! `PgConfig`: how to reach PostgreSQL and how long to wait for it.

use std::{fmt, time::Duration};

use tokio_postgres_rustls::MakeRustlsConnect;

use crate::tls::{self, TlsConfigError, TlsParams};

/// Connection and pool settings. Every wait is bounded, so an unreachable database turns into
/// an error within a known time instead of a hang.
#[derive(Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/dbname?...` (or the key=value form).
    pub url: String,
    /// Most pooled connections of the pool shared by multi-threaded runtimes (background
    /// work, commands).
    pub max_size: usize,
    /// Most pooled connections of each single-threaded runtime's own pool (an HTTP worker's).
    pub thread_max_size: usize,
    /// Longest wait for a free pooled connection.
    pub wait_timeout: Duration,
    /// Longest wait for a new pooled connection to be established.
    pub create_timeout: Duration,
    /// Longest wait for a returned connection to be checked for reuse.
    pub recycle_timeout: Duration,
    /// Longest wait for the TCP connection and start-up handshake (also for dedicated
    /// connections such as the change feed's).
    pub connect_timeout: Duration,
    /// Server-side `statement_timeout` of every session.
    pub statement_timeout: Duration,
    /// `application_name` of every session (shown in `pg_stat_activity`).
    pub application_name: String,
    /// Idle time before TCP keepalive probes start (keepalives are always on, so a silently
    /// dead peer is noticed).
    pub keepalive_idle: Duration,
    /// A pooled connection's checkout (waiting for a free one, opening or recycling it) that
    /// takes at least this long is logged at `warn`; `None`: never.
    pub slow_checkout: Option<Duration>,
}

impl PgConfig {
    /// The defaults, for the database at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_size: 16,
            thread_max_size: 16,
            wait_timeout: Duration::from_secs(2),
            create_timeout: Duration::from_secs(2),
            recycle_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(5),
            application_name: "user-settings".to_owned(),
            keepalive_idle: Duration::from_secs(30),
            slow_checkout: None,
        }
    }

    /// The driver configuration: the URL plus the timeouts, keepalive and session options of
    /// this config (which win over the same settings in the URL). `sslmode` and
    /// `sslrootcert` are read here (see `tls`); the driver is told only whether to negotiate
    /// TLS.
    ///
    /// # Errors
    /// [`PgConfigError::InvalidUrl`] when the URL does not parse, [`PgConfigError::Tls`]
    /// when its TLS parameters are unusable.
    pub fn driver_config(&self) -> Result<tokio_postgres::Config, PgConfigError> {
        Ok(self.parse()?.0)
    }

    /// The driver configuration and the TLS connector its `sslmode` asks for (reading
    /// `sslrootcert` now, so a bad file stops start-up).
    pub(crate) fn connection(
        &self,
    ) -> Result<(tokio_postgres::Config, MakeRustlsConnect), PgConfigError> {
        let (config, tls) = self.parse()?;
        Ok((config, tls::connector(&tls)?))
    }

    fn parse(&self) -> Result<(tokio_postgres::Config, TlsParams), PgConfigError> {
        let (url, tls) = tls::split_params(&self.url)?;
        let mut config: tokio_postgres::Config = url.parse().map_err(PgConfigError::InvalidUrl)?;
        config.ssl_mode(tls.mode.driver_mode());
        let statement_timeout = format!(
            "-c statement_timeout={}",
            self.statement_timeout.as_millis()
        );
        // Keep options given in the URL; ours come last so they take effect.
        let options = match config.get_options() {
            Some(existing) if !existing.trim().is_empty() => {
                format!("{existing} {statement_timeout}")
            }
            _ => statement_timeout,
        };
        config
            .options(options)
            .application_name(&self.application_name)
            .connect_timeout(self.connect_timeout)
            .keepalives(true)
            .keepalives_idle(self.keepalive_idle)
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3);
        Ok((config, tls))
    }
}

impl fmt::Debug for PgConfig {
    // The URL may carry a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &"[REDACTED]")
            .field("max_size", &self.max_size)
            .field("thread_max_size", &self.thread_max_size)
            .field("wait_timeout", &self.wait_timeout)
            .field("create_timeout", &self.create_timeout)
            .field("recycle_timeout", &self.recycle_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("application_name", &self.application_name)
            .field("keepalive_idle", &self.keepalive_idle)
            .finish()
    }
}

/// Why a pool or connection could not be set up from a [`PgConfig`].
#[derive(Debug, thiserror::Error)]
pub enum PgConfigError {
    /// The URL is not a PostgreSQL connection string.
    #[error("invalid database URL: {0}")]
    InvalidUrl(#[source] tokio_postgres::Error),
    /// `sslmode` or `sslrootcert` cannot be used (names the parameter, not the URL).
    #[error("invalid database URL: {0}")]
    Tls(#[from] TlsConfigError),
    /// The pool rejected its settings.
    #[error("invalid pool settings: {0}")]
    Pool(#[from] deadpool_postgres::BuildError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_config_applies_timeouts_and_session_options() {
        let config = PgConfig::new(
            "postgres://u:secret@db.example:5433/app?options=-c%20search_path%3Dshared",
        );
        let driver = config.driver_config().unwrap();
        assert_eq!(driver.get_connect_timeout(), Some(&Duration::from_secs(2)));
        assert_eq!(driver.get_application_name(), Some("user-settings"));
        assert!(driver.get_keepalives());
        assert_eq!(
            driver.get_options(),
            Some("-c search_path=shared -c statement_timeout=5000")
        );
    }

    #[test]
    fn debug_hides_the_url() {
        let config = PgConfig::new("postgres://u:secret@db.example/app");
        assert!(!format!("{config:?}").contains("secret"));
    }

    #[test]
    fn an_unknown_sslmode_stops_the_config_naming_the_field() {
        let result = PgConfig::new("postgres://u:secret@db/app?sslmode=verify").driver_config();
        let message = result.unwrap_err().to_string();
        assert!(message.contains("sslmode"), "{message}");
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn verify_full_reaches_the_driver_as_require() {
        let config = PgConfig::new("postgres://u@db/app?sslmode=verify-full");
        assert_eq!(
            config.driver_config().unwrap().get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
    }

    #[test]
    fn invalid_url_is_an_error() {
        let result = PgConfig::new("postgres://host:notaport/db").driver_config();
        assert!(matches!(result, Err(PgConfigError::InvalidUrl(_))));
    }
}
