//! The connection pools (one per single-threaded runtime, one shared), and dedicated
//! (non-pooled) connections.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use deadpool_postgres::{
    BuildError, Manager, ManagerConfig, PoolError, RecyclingMethod, Runtime, Timeouts,
};
use domain::RepositoryError;
use thread_local::ThreadLocal;
use tokio::runtime::RuntimeFlavor;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{
    config::{PgConfig, PgConfigError},
    deadline::{DEFAULT_OPERATION_TIMEOUT, within},
    errors::PgError,
};

/// The service's pooled connections: a pool of its own for each thread that runs a
/// single-threaded runtime (each HTTP worker), and one shared by every other thread.
///
/// A connection's I/O runs as a task on the runtime that opened it. With one pool for all,
/// a worker's query would wake the thread that happens to drive that connection, and its
/// answer would wake the worker back: two cross-thread wake-ups and context switches per
/// query, which cost more CPU than the query's own handling. A worker's own pool keeps the
/// query, its I/O and the answer on one thread.
#[derive(Clone)]
pub struct Pool(Arc<Pools>);

struct Pools {
    driver: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    timeouts: Timeouts,
    /// Most connections of one single-threaded runtime's pool.
    thread_max_size: usize,
    /// Checkouts at least this long are logged.
    slow_checkout: Option<Duration>,
    shared: deadpool_postgres::Pool,
    per_thread: ThreadLocal<deadpool_postgres::Pool>,
}

/// Counts of the connections of every pool together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStatus {
    /// Most connections the pools opened so far may hold.
    pub max_size: usize,
    /// Connections open.
    pub size: usize,
    /// Open connections idle.
    pub available: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A connection of the calling thread's pool.
    ///
    /// A checkout that takes at least the configured `slow_checkout` is logged at `warn`
    /// with the pool's counts, so a slow request can be told apart as one that waited for a
    /// connection.
    ///
    /// # Errors
    /// The pool's [`PoolError`] (timeouts, a failed connect).
    pub async fn get(&self) -> Result<deadpool_postgres::Object, PoolError> {
        let pool = self.current();
        let Some(slow) = self.0.slow_checkout else {
            return pool.get().await;
        };
        // Logs on drop too: a checkout abandoned by the caller's deadline is the slowest kind.
        let mut watch = CheckoutWatch {
            pool,
            slow,
            started: Instant::now(),
            outcome: "abandoned",
        };
        let result = pool.get().await;
        watch.outcome = if result.is_ok() { "ok" } else { "failed" };
        result
    }

    /// The counts of every pool, summed (for metrics).
    pub fn status(&self) -> PoolStatus {
        let pools = &*self.0;
        std::iter::once(&pools.shared)
            .chain(pools.per_thread.iter())
            .map(deadpool_postgres::Pool::status)
            .fold(PoolStatus::default(), |sum, status| PoolStatus {
                max_size: sum.max_size + status.max_size,
                size: sum.size + status.size,
                available: sum.available + status.available,
                waiting: sum.waiting + status.waiting,
            })
    }

    /// Closes every pool: waiting callers fail, connections are dropped as they return.
    pub fn close(&self) {
        self.0.shared.close();
        for pool in self.0.per_thread.iter() {
            pool.close();
        }
    }

    /// The calling thread's pool: its own on a single-threaded runtime, else the shared one.
    fn current(&self) -> &deadpool_postgres::Pool {
        let pools = &*self.0;
        let single_threaded = tokio::runtime::Handle::try_current()
            .is_ok_and(|runtime| runtime.runtime_flavor() == RuntimeFlavor::CurrentThread);
        if !single_threaded {
            return &pools.shared;
        }
        // Building cannot fail once the shared pool was built from the same settings; if it
        // did, the shared pool still serves.
        pools
            .per_thread
            .get_or_try(|| {
                new_pool(
                    &pools.driver,
                    &pools.tls,
                    pools.timeouts,
                    pools.thread_max_size,
                )
            })
            .unwrap_or(&pools.shared)
    }
}

/// Times one checkout and, when it took at least `slow`, logs it with the pool's counts.
struct CheckoutWatch<'a> {
    pool: &'a deadpool_postgres::Pool,
    slow: Duration,
    started: Instant,
    outcome: &'static str,
}

impl Drop for CheckoutWatch<'_> {
    fn drop(&mut self) {
        let waited = self.started.elapsed();
        if waited < self.slow {
            return;
        }
        let status = self.pool.status();
        tracing::warn!(
            waited_ms = waited.as_secs_f64() * 1e3,
            outcome = self.outcome,
            pool_size = status.size,
            pool_max_size = status.max_size,
            pool_available = status.available,
            pool_waiting = status.waiting,
            "slow database connection checkout"
        );
    }
}

fn new_pool(
    driver: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    timeouts: Timeouts,
    max_size: usize,
) -> Result<deadpool_postgres::Pool, BuildError> {
    let manager = Manager::from_config(
        driver.clone(),
        tls.clone(),
        ManagerConfig {
            // `is_closed()` only: a test query per checkout would double the round trips, and
            // a connection that died silently fails its first query, which maps to
            // `Unavailable` like any other connection failure.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    deadpool_postgres::Pool::builder(manager)
        .max_size(max_size)
        .timeouts(timeouts)
        .runtime(Runtime::Tokio1)
        .build()
}

/// Builds the pools described by `config`, with TLS as its `sslmode` says. No connection is
/// opened until the first use, so this succeeds while the database is down.
///
/// Must be called within a Tokio runtime (the pool's timeouts use its timer).
///
/// # Errors
/// [`PgConfigError`] when the URL does not parse, its TLS parameters are unusable (a bad
/// `sslmode`, an unreadable `sslrootcert`) or the pool settings are invalid.
pub fn build_pool(config: &PgConfig) -> Result<Pool, PgConfigError> {
    let (driver, tls) = config.connection()?;
    let timeouts = Timeouts {
        wait: Some(config.wait_timeout),
        create: Some(config.create_timeout),
        recycle: Some(config.recycle_timeout),
    };
    let shared = new_pool(&driver, &tls, timeouts, config.max_size)?;
    let pools = Pools {
        driver,
        tls,
        timeouts,
        thread_max_size: config.thread_max_size.max(1),
        slow_checkout: config.slow_checkout,
        shared,
        per_thread: ThreadLocal::new(),
    };
    Ok(Pool(Arc::new(pools)))
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
