//! `PgEventTickets`: single-use tickets that open a change stream (migration V12), shared by
//! every instance. Only the SHA-256 of a ticket is stored; redeeming deletes its row, so a
//! ticket opens one stream at most, whichever instance sees it.

use std::time::Duration;

use async_trait::async_trait;
use domain::{
    RepositoryError, UserId,
    events::{EventTickets, TicketHolder},
};

use crate::{
    Pool,
    deadline::{DEFAULT_OPERATION_TIMEOUT, within},
    errors::PgError,
};

/// Expired tickets go with every issue (served by the `expires_at` index).
const PURGE: &str = "DELETE FROM shared.user_settings_event_tickets WHERE expires_at < now()";

const ISSUE: &str = "INSERT INTO shared.user_settings_event_tickets \
     (ticket_hash, user_id, token_expires_at, expires_at) \
     VALUES (sha256(convert_to($1, 'UTF8')), $2, $3, now() + make_interval(secs => $4))";

/// Used up whether or not it is still valid: an expired ticket is refused and gone.
const REDEEM: &str = "DELETE FROM shared.user_settings_event_tickets \
     WHERE ticket_hash = sha256(convert_to($1, 'UTF8')) \
     RETURNING user_id, token_expires_at, expires_at > now() AS valid";

/// Tickets on PostgreSQL. Cheap to clone (shares the pool).
#[derive(Clone, Debug)]
pub struct PgEventTickets {
    pool: Pool,
    operation_timeout: Duration,
}

impl PgEventTickets {
    /// Tickets on `pool`.
    pub fn new(pool: Pool) -> Self {
        Self {
            pool,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// Sets the client-side limit of one operation (default [`DEFAULT_OPERATION_TIMEOUT`]).
    #[must_use]
    pub fn with_operation_timeout(mut self, limit: Duration) -> Self {
        self.operation_timeout = limit;
        self
    }

    async fn issue_inner(&self, holder: TicketHolder, lifetime: u32) -> Result<String, PgError> {
        // Two v4 UUIDs: 244 bits from the operating system's generator.
        let ticket = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let client = self.pool.get().await?;
        let purge = client.prepare_cached(PURGE).await?;
        client.execute(&purge, &[]).await?;
        let issue = client.prepare_cached(ISSUE).await?;
        client
            .execute(
                &issue,
                &[
                    &ticket,
                    &holder.user_id.as_uuid(),
                    &holder.token_expires_at,
                    &f64::from(lifetime),
                ],
            )
            .await?;
        Ok(ticket)
    }

    async fn redeem_inner(&self, ticket: &str) -> Result<Option<TicketHolder>, PgError> {
        let client = self.pool.get().await?;
        let redeem = client.prepare_cached(REDEEM).await?;
        let Some(row) = client.query_opt(&redeem, &[&ticket]).await? else {
            return Ok(None);
        };
        if !row.try_get::<_, bool>("valid")? {
            return Ok(None);
        }
        Ok(Some(TicketHolder {
            user_id: UserId::new(row.try_get("user_id")?),
            token_expires_at: row.try_get("token_expires_at")?,
        }))
    }
}

#[async_trait]
impl EventTickets for PgEventTickets {
    async fn issue(
        &self,
        holder: TicketHolder,
        lifetime_seconds: u32,
    ) -> Result<String, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.issue_inner(holder, lifetime_seconds).await?)
        })
        .await
    }

    async fn redeem(&self, ticket: &str) -> Result<Option<TicketHolder>, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.redeem_inner(ticket).await?)
        })
        .await
    }
}
