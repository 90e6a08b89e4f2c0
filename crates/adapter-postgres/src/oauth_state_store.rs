//! `PgOAuthStateStore`: pending OAuth authorizations in `shared.user_settings_oauth_states`
//! (migration V3). A `state` is consumed with `DELETE ... RETURNING`: single use, atomic.

use std::time::Duration;

use async_trait::async_trait;
use domain::{
    RepositoryError, UserId,
    integrations::{OAuthStateStore, PendingAuthorization, ProviderId},
    secrets::Envelope,
};
use serde_json::Value;
use tokio_postgres::Row;

use crate::{
    Pool,
    deadline::{DEFAULT_OPERATION_TIMEOUT, within},
    errors::PgError,
};

/// Expired rows are useless (the application refuses them); dropping them on each insert
/// keeps the table small without a background job. Served by the `expires_at` index.
const PURGE_EXPIRED: &str =
    "DELETE FROM shared.user_settings_oauth_states WHERE expires_at < now()";

const INSERT: &str = "INSERT INTO shared.user_settings_oauth_states \
     (state, user_id, provider, redirect_uri, pkce_verifier, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6)";

/// Matching user and provider in the `WHERE` means a state presented by anyone else is left
/// alone (it cannot be burnt by a third party) and reads as unknown.
const TAKE: &str = "DELETE FROM shared.user_settings_oauth_states \
     WHERE state = $1 AND user_id = $2 AND provider = $3 \
     RETURNING redirect_uri, pkce_verifier, expires_at";

/// Pending authorizations on PostgreSQL. Cheap to clone (shares the pool).
#[derive(Clone, Debug)]
pub struct PgOAuthStateStore {
    pool: Pool,
    operation_timeout: Duration,
}

impl PgOAuthStateStore {
    /// A store on `pool`.
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// Sets the client-side limit of one operation (default
    /// [`DEFAULT_OPERATION_TIMEOUT`]); past it the call fails as unavailable.
    #[must_use]
    pub fn with_operation_timeout(mut self, limit: Duration) -> Self {
        self.operation_timeout = limit;
        self
    }

    async fn save_inner(&self, pending: &PendingAuthorization) -> Result<(), PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let purge = tx.prepare_cached(PURGE_EXPIRED).await?;
        tx.execute(&purge, &[]).await?;
        let insert = tx.prepare_cached(INSERT).await?;
        let verifier: Option<Value> = pending.pkce_verifier.as_ref().map(Envelope::to_value);
        tx.execute(
            &insert,
            &[
                &pending.state,
                &pending.user.as_uuid(),
                &pending.provider.as_str(),
                &pending.redirect_uri,
                &verifier,
                &pending.expires_at,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn take_inner(
        &self,
        state: &str,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<PendingAuthorization>, PgError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(TAKE).await?;
        client
            .query_opt(&statement, &[&state, &user.as_uuid(), &provider.as_str()])
            .await?
            .map(|row| pending_from_row(state, user, provider, &row))
            .transpose()
    }
}

fn pending_from_row(
    state: &str,
    user: UserId,
    provider: ProviderId,
    row: &Row,
) -> Result<PendingAuthorization, PgError> {
    let verifier: Option<Value> = row.try_get("pkce_verifier")?;
    let pkce_verifier = verifier
        .map(|v| Envelope::from_value(&v))
        .transpose()
        .map_err(|_| PgError::Corrupt("stored PKCE verifier envelope".to_owned()))?;
    Ok(PendingAuthorization {
        state: state.to_owned(),
        user,
        provider,
        redirect_uri: row.try_get("redirect_uri")?,
        pkce_verifier,
        expires_at: row.try_get("expires_at")?,
    })
}

#[async_trait]
impl OAuthStateStore for PgOAuthStateStore {
    async fn save(&self, pending: &PendingAuthorization) -> Result<(), RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.save_inner(pending).await?)
        })
        .await
    }

    async fn take(
        &self,
        state: &str,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<PendingAuthorization>, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.take_inner(state, user, provider).await?)
        })
        .await
    }
}
