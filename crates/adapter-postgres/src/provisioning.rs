//! User provisioning: who creates `shared.users` rows.

use deadpool_postgres::Transaction;
use domain::UserId;

use crate::errors::{PgError, PgResultExt};

/// Whether a write for a user without a `shared.users` row creates that row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Provisioning {
    /// The first write for an unknown user inserts its row (stand-alone deployments).
    #[default]
    Auto,
    /// The user service owns the rows: a write for an unknown user fails with "user not found".
    External,
}

/// Locks the user's row for this transaction (`FOR NO KEY UPDATE`: writers of the user's
/// settings wait for each other, readers and foreign-key checks do not); no row if none.
pub(crate) const LOCK_USER: &str = "SELECT 1 FROM shared.users WHERE id = $1 FOR NO KEY UPDATE";

/// Locks the user's row for the rest of the transaction, creating it first when provisioning
/// is [`Provisioning::Auto`]. Returns false when the user does not exist (external).
///
/// The lock (`FOR NO KEY UPDATE`: it does not block foreign-key checks) serialises the writes
/// of one user that may insert, so counting their settings for the quota is race-free.
pub(crate) async fn lock_user(
    tx: &Transaction<'_>,
    user: UserId,
    provisioning: Provisioning,
) -> Result<bool, PgError> {
    const CREATE: &str = "INSERT INTO shared.users (id) VALUES ($1) ON CONFLICT (id) DO NOTHING";
    let id = user.as_uuid();
    let lock = tx.prepare_cached(LOCK_USER).await.pg()?;
    if tx.query_opt(&lock, &[&id]).await.pg()?.is_some() {
        return Ok(true);
    }
    if provisioning == Provisioning::External {
        return Ok(false);
    }
    let create = tx.prepare_cached(CREATE).await.pg()?;
    tx.execute(&create, &[&id]).await.pg()?;
    Ok(tx.query_opt(&lock, &[&id]).await.pg()?.is_some())
}

/// Creates the user's row when provisioning is [`Provisioning::Auto`]; with
/// [`Provisioning::External`] the foreign key reports an unknown user.
pub(crate) async fn ensure_user(
    tx: &Transaction<'_>,
    user: UserId,
    provisioning: Provisioning,
) -> Result<(), PgError> {
    const CREATE: &str = "INSERT INTO shared.users (id) VALUES ($1) ON CONFLICT (id) DO NOTHING";
    if provisioning == Provisioning::Auto {
        let create = tx.prepare_cached(CREATE).await.pg()?;
        tx.execute(&create, &[&user.as_uuid()]).await.pg()?;
    }
    Ok(())
}
