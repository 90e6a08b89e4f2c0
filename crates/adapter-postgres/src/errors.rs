//! Translation of pool and driver errors into the domain's errors, in one place.
//!
//! - Unreachable or overloaded database, pool timeouts, closed connections, SQLSTATE class 08
//!   (connection), class 53 (resources), 57P01-57P03 (shutdown), 57014 (cancel, i.e.
//!   `statement_timeout`), 25006 (read-only: failover in progress), serialization failures
//!   and deadlocks, and the client-side deadline → `RepositoryError::Unavailable`.
//! - 23503 (foreign key) → "user not found"; 23505 (unique) → a version conflict.
//! - 23514 (check) and everything else → `RepositoryError::Unknown`, logged: the domain
//!   validates before writing, so a CHECK violation is a bug.
//!
//! Descriptions never contain values: PostgreSQL's DETAIL ("Failing row contains ...") and the
//! messages of data errors (class 22/23) can quote a row, which may hold a secret envelope, so
//! only the SQLSTATE, the constraint name and safe messages are kept.

use std::{error::Error as _, fmt::Write as _, io, time::Duration};

use deadpool_postgres::{PoolError, TimeoutType};
use domain::{
    RepositoryError,
    ports::{PreferencesWriteError, SettingDeleteError, SettingWriteError},
};
use tokio_postgres::error::SqlState;

/// A failure inside the adapter, before it is given its domain meaning.
#[derive(Debug)]
pub(crate) enum PgError {
    /// Getting a pooled connection failed.
    Pool(PoolError),
    /// A statement or the connection failed.
    Db(tokio_postgres::Error),
    /// The operation exceeded its client-side deadline.
    Deadline(Duration),
    /// A stored row that the domain does not accept (written by another program).
    Corrupt(String),
}

impl From<PoolError> for PgError {
    fn from(e: PoolError) -> Self {
        Self::Pool(e)
    }
}

impl From<tokio_postgres::Error> for PgError {
    fn from(e: tokio_postgres::Error) -> Self {
        Self::Db(e)
    }
}

/// `.pg()?`: turns a pool or driver result into a [`PgError`] result, so `?` reaches the
/// domain error through its `From<PgError>`.
pub(crate) trait PgResultExt<T> {
    fn pg(self) -> Result<T, PgError>;
}

impl<T, E: Into<PgError>> PgResultExt<T> for Result<T, E> {
    fn pg(self) -> Result<T, PgError> {
        self.map_err(Into::into)
    }
}

/// What an error means for the caller.
enum Meaning {
    /// Retrying later may succeed.
    Unavailable(String),
    UniqueViolation,
    ForeignKeyViolation,
    /// A bug or an unexpected state; the description is safe to log.
    Unknown(String),
}

impl PgError {
    fn meaning(&self) -> Meaning {
        match self {
            PgError::Pool(PoolError::Timeout(kind)) => Meaning::Unavailable(match kind {
                TimeoutType::Wait => "timed out waiting for a free database connection".into(),
                TimeoutType::Create => "timed out connecting to the database".into(),
                TimeoutType::Recycle => "timed out checking a database connection".into(),
            }),
            PgError::Pool(PoolError::Closed) => {
                Meaning::Unavailable("the database pool is closed".into())
            }
            PgError::Pool(PoolError::Backend(e)) => db_meaning(e),
            PgError::Pool(other) => Meaning::Unknown(format!("database pool error: {other}")),
            PgError::Db(e) => db_meaning(e),
            PgError::Deadline(limit) => Meaning::Unavailable(format!(
                "the database did not answer within {} ms",
                limit.as_millis()
            )),
            PgError::Corrupt(what) => Meaning::Unknown(format!("unreadable stored row: {what}")),
        }
    }

    /// The name of the violated constraint, if any.
    fn constraint(&self) -> Option<&str> {
        self.driver_error()
            .and_then(tokio_postgres::Error::as_db_error)
            .and_then(|db| db.constraint())
    }

    fn driver_error(&self) -> Option<&tokio_postgres::Error> {
        match self {
            PgError::Db(e) | PgError::Pool(PoolError::Backend(e)) => Some(e),
            _ => None,
        }
    }
}

fn db_meaning(e: &tokio_postgres::Error) -> Meaning {
    let Some(state) = e.code() else {
        if e.is_closed() || has_io_source(e) {
            return Meaning::Unavailable(format!("database connection failed: {e}"));
        }
        // Client-side errors (type conversion, protocol): their text quotes no values.
        return Meaning::Unknown(format!("database driver error: {e}"));
    };
    let code = state.code();
    if *state == SqlState::UNIQUE_VIOLATION {
        return Meaning::UniqueViolation;
    }
    if *state == SqlState::FOREIGN_KEY_VIOLATION {
        return Meaning::ForeignKeyViolation;
    }
    let transient = code.starts_with("08")
        || code.starts_with("53")
        || [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::QUERY_CANCELED,
            SqlState::READ_ONLY_SQL_TRANSACTION,
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
        ]
        .contains(state);
    let description = describe_db_error(e, code);
    if transient {
        Meaning::Unavailable(description)
    } else {
        Meaning::Unknown(description)
    }
}

/// SQLSTATE, constraint and, except for data and integrity errors, the server's message.
fn describe_db_error(e: &tokio_postgres::Error, code: &str) -> String {
    let mut text = format!("database error {code}");
    if let Some(db) = e.as_db_error() {
        if let Some(constraint) = db.constraint() {
            let _ = write!(text, " on constraint {constraint}");
        }
        let quotes_data = code.starts_with("22") || code.starts_with("23");
        if !quotes_data {
            let _ = write!(text, ": {}", db.message());
        }
    }
    text
}

fn has_io_source(e: &tokio_postgres::Error) -> bool {
    let mut source = e.source();
    while let Some(cause) = source {
        if cause.is::<io::Error>() {
            return true;
        }
        source = cause.source();
    }
    false
}

impl From<PgError> for RepositoryError {
    fn from(e: PgError) -> Self {
        match e.meaning() {
            Meaning::Unavailable(description) => {
                tracing::warn!(error = %description, "database unavailable");
                RepositoryError::Unavailable(description)
            }
            Meaning::UniqueViolation | Meaning::ForeignKeyViolation => {
                unknown(describe_violation(&e))
            }
            Meaning::Unknown(description) => {
                if e.driver_error().and_then(tokio_postgres::Error::code)
                    == Some(&SqlState::CHECK_VIOLATION)
                {
                    tracing::error!(
                        constraint = e.constraint().unwrap_or("?"),
                        "a write violated a CHECK constraint the domain should have enforced"
                    );
                }
                unknown(description)
            }
        }
    }
}

fn describe_violation(e: &PgError) -> String {
    let code = e
        .driver_error()
        .and_then(tokio_postgres::Error::code)
        .map_or("?", SqlState::code);
    match e.constraint() {
        Some(constraint) => format!("database error {code} on constraint {constraint}"),
        None => format!("database error {code}"),
    }
}

fn unknown(description: String) -> RepositoryError {
    tracing::error!(error = %description, "database operation failed");
    RepositoryError::Unknown(anyhow::Error::msg(description))
}

impl From<PgError> for SettingWriteError {
    fn from(e: PgError) -> Self {
        match e.meaning() {
            Meaning::ForeignKeyViolation => SettingWriteError::UserNotFound,
            // Every insert uses ON CONFLICT, so this is a race we cannot describe further:
            // the row exists but its version is unknown; the client must re-read.
            Meaning::UniqueViolation => SettingWriteError::VersionConflict { current: None },
            _ => SettingWriteError::Repository(e.into()),
        }
    }
}

impl From<PgError> for SettingDeleteError {
    fn from(e: PgError) -> Self {
        SettingDeleteError::Repository(e.into())
    }
}

impl From<PgError> for PreferencesWriteError {
    fn from(e: PgError) -> Self {
        match e.meaning() {
            Meaning::ForeignKeyViolation => PreferencesWriteError::UserNotFound,
            // As for settings: a concurrent insert won; the caller re-reads and retries.
            Meaning::UniqueViolation => PreferencesWriteError::VersionConflict { current: 0 },
            _ => PreferencesWriteError::Repository(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_is_unavailable() {
        let error: RepositoryError = PgError::Deadline(Duration::from_secs(1)).into();
        assert!(matches!(error, RepositoryError::Unavailable(_)));
    }

    #[test]
    fn pool_timeout_is_unavailable() {
        let error: RepositoryError = PgError::Pool(PoolError::Timeout(TimeoutType::Wait)).into();
        assert!(matches!(error, RepositoryError::Unavailable(_)));
    }

    #[test]
    fn corrupt_row_is_unknown() {
        let error: SettingWriteError = PgError::Corrupt("bad key".into()).into();
        assert!(matches!(
            error,
            SettingWriteError::Repository(RepositoryError::Unknown(_))
        ));
    }
}
