//! Running the SQL migrations of `migrations/` (embedded at build time) with refinery.

use std::fmt;

use tokio_postgres::Client;

use crate::Pool;

mod embedded {
    // Path relative to this crate's root (`CARGO_MANIFEST_DIR`).
    refinery::embed_migrations!("../../migrations");
}

/// Where refinery records applied migrations. Service-specific, so another service of the
/// platform that also uses refinery in the same database does not see our history as its own.
const HISTORY_TABLE: &str = "shared.user_settings_schema_history";

/// Session advisory lock key ("usersett" in ASCII) taken while migrating, so instances that
/// start together do not apply the same migration concurrently.
const MIGRATION_LOCK: i64 = 0x7573_6572_7365_7474;

/// Checksums that applied migrations had before their comments were reworded (statements
/// unchanged). refinery checksums the whole text, so a database migrated before the edit would
/// otherwise see a divergent history and refuse to start; such a recorded checksum is replaced
/// by the current one. Only these exact (version, old checksum) pairs are adopted: any other
/// difference is still a divergence.
const REWORDED_MIGRATIONS: &[(i32, u64)] = &[
    (1, 2_005_073_427_763_388_531),
    (2, 1_783_321_431_149_108_031),
    (3, 3_610_229_602_429_737_104),
];

/// What one run applied.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Names of the migrations applied by this run, in order (`V1__schema`, ...). Empty when
    /// the database was already up to date.
    pub applied: Vec<String>,
}

impl fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.applied.is_empty() {
            f.write_str("the database schema is up to date")
        } else {
            write!(f, "applied migrations: {}", self.applied.join(", "))
        }
    }
}

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// No connection could be taken from the pool.
    #[error("could not get a database connection to migrate: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// A statement around the migrations failed.
    #[error("database error while migrating: {0}")]
    Database(#[from] tokio_postgres::Error),
    /// A migration failed, or the database's history diverges from the embedded migrations.
    #[error("migration failed: {0}")]
    Refinery(#[from] refinery::Error),
}

/// Applies every embedded migration not yet applied. Running it again is a no-op.
///
/// Holds a session advisory lock on `client` while it runs; a dedicated connection is the
/// best fit (see [`crate::connect`]).
///
/// # Errors
/// [`MigrateError`] when a statement or migration fails; nothing of a failed migration stays.
pub async fn migrate(client: &mut Client) -> Result<MigrationReport, MigrateError> {
    // The service's short statement_timeout is for requests: a migration (say, an index on
    // a large table) or waiting for another instance's migration may take longer.
    client.batch_execute("SET statement_timeout = 0").await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    let result = run(client).await;
    // Restore the session even when the run failed: a pooled connection lives on.
    let restored = async {
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await?;
        client.batch_execute("RESET statement_timeout").await
    }
    .await;
    let report = result?;
    restored?;
    Ok(report)
}

/// [`migrate`] on a connection taken from `pool`.
///
/// # Errors
/// As [`migrate`], and [`MigrateError::Pool`] when no connection can be had.
pub async fn migrate_pool(pool: &Pool) -> Result<MigrationReport, MigrateError> {
    let mut client = pool.get().await?;
    migrate(&mut client).await
}

async fn run(client: &mut Client) -> Result<MigrationReport, MigrateError> {
    // The history table lives in `shared`, which V1 creates: it must exist before refinery
    // looks for its history.
    client
        .batch_execute("CREATE SCHEMA IF NOT EXISTS shared")
        .await?;
    let mut runner = embedded::migrations::runner();
    runner.set_migration_table_name(HISTORY_TABLE);
    adopt_reworded_checksums(client, runner.get_migrations()).await?;
    let report = runner.run_async(client).await?;
    let applied = report
        .applied_migrations()
        .iter()
        .map(|m| m.to_string())
        .collect();
    Ok(MigrationReport { applied })
}

/// Replaces the recorded checksum of each [`REWORDED_MIGRATIONS`] entry by the current one.
async fn adopt_reworded_checksums(
    client: &Client,
    migrations: &[refinery::Migration],
) -> Result<(), tokio_postgres::Error> {
    let history: Option<String> = client
        .query_one("SELECT to_regclass($1)::text", &[&HISTORY_TABLE])
        .await?
        .get(0);
    if history.is_none() {
        return Ok(());
    }
    let update =
        format!("UPDATE {HISTORY_TABLE} SET checksum = $1 WHERE version = $2 AND checksum = $3");
    for (version, old) in REWORDED_MIGRATIONS {
        let Some(current) = migrations.iter().find(|m| m.version() == *version) else {
            continue;
        };
        client
            .execute(
                &update,
                &[&current.checksum().to_string(), version, &old.to_string()],
            )
            .await?;
    }
    Ok(())
}
