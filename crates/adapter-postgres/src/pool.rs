//! Building the connection pool, and dedicated (non-pooled) connections.

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use domain::RepositoryError;
use tokio_postgres::Client;

use crate::{
    config::{PgConfig, PgConfigError},
    deadline::{DEFAULT_OPERATION_TIMEOUT, within},
    errors::PgError,
};

/// Builds the pool described by `config`, with TLS as its `sslmode` says. No connection is
/// opened until the first use, so this succeeds while the database is down.
///
/// Must be called within a Tokio runtime (the pool's timeouts use its timer).
///
/// # Errors
/// [`PgConfigError`] when the URL does not parse, its TLS parameters are unusable (a bad
/// `sslmode`, an unreadable `sslrootcert`) or the pool settings are invalid.
pub fn build_pool(config: &PgConfig) -> Result<Pool, PgConfigError> {
    let (driver, tls) = config.connection()?;
    let manager = Manager::from_config(
        driver,
        tls,
        ManagerConfig {
            // `is_closed()` only: a test query per checkout would double the round trips, and
            // a connection that died silently fails its first query, which maps to
            // `Unavailable` like any other connection failure.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(config.max_size)
        .timeouts(Timeouts {
            wait: Some(config.wait_timeout),
            create: Some(config.create_timeout),
            recycle: Some(config.recycle_timeout),
        })
        .runtime(Runtime::Tokio1)
        .build()?;
    Ok(pool)
}

/// Why a dedicated connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The config is invalid.
    #[error(transparent)]
    Config(#[from] PgConfigError),
    /// The server could not be reached or refused the session.
    #[error("could not connect to the database: {0}")]
    Connect(#[source] tokio_postgres::Error),
}

/// Opens one dedicated connection (not from the pool), with the session settings of
/// `config`, and drives it on a spawned task until the client is dropped. For migrations and
/// administrative work; the change feed opens its own because it must read notifications.
///
/// # Errors
/// [`ConnectError`] when the config is invalid or the server cannot be reached in time.
pub async fn connect(config: &PgConfig) -> Result<Client, ConnectError> {
    let (driver, tls) = config.connection()?;
    let (client, connection) = driver.connect(tls).await.map_err(ConnectError::Connect)?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::warn!(%error, "dedicated database connection ended with an error");
        }
    });
    Ok(client)
}

/// Checks that the database answers (`SELECT 1` on a pooled connection), for readiness
/// probes. Bounded by the pool's timeouts, `statement_timeout` and
/// [`DEFAULT_OPERATION_TIMEOUT`].
///
/// # Errors
/// [`RepositoryError::Unavailable`] when the database cannot be reached in time.
pub async fn ping(pool: &Pool) -> Result<(), RepositoryError> {
    within(DEFAULT_OPERATION_TIMEOUT, async {
        let client = pool.get().await.map_err(PgError::from)?;
        client
            .simple_query("SELECT 1")
            .await
            .map_err(PgError::from)?;
        Ok(())
    })
    .await
}
