//! `PgAuditLog`: the audit port on the append-only `shared.user_settings_audit`.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use domain::{RepositoryError, audit::AuditEntry, ports::AuditLog, settings::SettingKey};

use crate::{
    deadline::{DEFAULT_OPERATION_TIMEOUT, within},
    errors::PgError,
};

pub(crate) const INSERT: &str = "INSERT INTO shared.user_settings_audit \
     (actor_id, actor_role, subject_user_id, action, key, request_id, client_request_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Longest request id stored (`user_settings_audit_request_id_length`,
/// `user_settings_audit_client_request_id_length`). A client's id is not ours to trust: a
/// longer one is cut rather than failing the audited read.
const MAX_REQUEST_ID_CHARS: usize = 200;

pub(crate) fn cut(id: Option<&str>) -> Option<&str> {
    id.map(|id| match id.char_indices().nth(MAX_REQUEST_ID_CHARS) {
        Some((end, _)) => &id[..end],
        None => id,
    })
}

/// The audit log on PostgreSQL. Cheap to clone (shares the pool).
#[derive(Clone, Debug)]
pub struct PgAuditLog {
    pool: Pool,
    operation_timeout: Duration,
}

impl PgAuditLog {
    /// An audit log on `pool`.
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

    async fn record_inner(&self, entry: &AuditEntry) -> Result<(), PgError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(INSERT).await?;
        client
            .execute(
                &statement,
                &[
                    &entry.actor.id.as_uuid(),
                    &entry.actor.role.as_str(),
                    &entry.subject.as_uuid(),
                    &entry.action.as_str(),
                    &entry.key.as_ref().map(SettingKey::as_str),
                    &cut(entry.actor.request_id.as_deref()),
                    &cut(entry.actor.client_request_id.as_deref()),
                ],
            )
            .await?;
        Ok(())
    }
}

#[async_trait]
impl AuditLog for PgAuditLog {
    async fn record(&self, entry: AuditEntry) -> Result<(), RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.record_inner(&entry).await?)
        })
        .await
    }
}
