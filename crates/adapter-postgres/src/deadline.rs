//! A client-side deadline around each repository operation.
//!
//! The pool's timeouts bound getting a connection and `statement_timeout` bounds a statement
//! on a live server, but a server that vanishes mid-statement (host down, network partition)
//! is only noticed by TCP keepalive, much later. The deadline turns that into `Unavailable`
//! in bounded time. Dropping an operation mid-transaction is safe: the transaction guard rolls
//! back when dropped.

use std::{future::Future, time::Duration};

use crate::errors::PgError;

/// Default limit for one repository operation, all statements and waits included.
pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `operation`, failing with [`PgError::Deadline`] when it takes longer than `limit`.
pub(crate) async fn within<T, E>(
    limit: Duration,
    operation: impl Future<Output = Result<T, E>>,
) -> Result<T, E>
where
    E: From<PgError>,
{
    match tokio::time::timeout(limit, operation).await {
        Ok(result) => result,
        Err(_) => Err(PgError::Deadline(limit).into()),
    }
}
