//! `PgAuditLog`: the audit port on the append-only `shared.user_settings_audit`.

use std::time::Duration;

use async_trait::async_trait;
use domain::{
    RepositoryError, UserId,
    audit::{AuditAction, AuditEntry, AuditRecord, Role},
    ports::{AuditLog, AuditTrail},
    settings::SettingKey,
};
use tokio_postgres::Row;

use crate::{
    Pool,
    deadline::{DEFAULT_OPERATION_TIMEOUT, within},
    errors::PgError,
};

pub(crate) const INSERT: &str = "INSERT INTO shared.user_settings_audit \
     (actor_id, actor_role, subject_user_id, action, key, request_id, client_request_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// A user's records, newest first, below an id (`idx_user_settings_audit_subject_id`).
const TRAIL: &str = "SELECT id, at, actor_id, actor_role, action, key, request_id, \
     client_request_id FROM shared.user_settings_audit \
     WHERE subject_user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3";

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

    async fn trail_inner(
        &self,
        subject: UserId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, PgError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(TRAIL).await?;
        let below = before.unwrap_or(i64::MAX);
        let rows = client
            .query(&statement, &[&subject.as_uuid(), &below, &i64::from(limit)])
            .await?;
        rows.iter().map(record).collect()
    }
}

/// A stored record; a role or action this version does not know (a newer migration's) is
/// an error rather than a guess.
fn record(row: &Row) -> Result<AuditRecord, PgError> {
    let role: &str = row.try_get(3)?;
    let action: &str = row.try_get(4)?;
    let unknown = |what: &str, name: &str| {
        PgError::Corrupt(format!("audit record with an unknown {what} {name:?}"))
    };
    Ok(AuditRecord {
        id: row.try_get(0)?,
        at: row.try_get(1)?,
        actor_id: UserId::new(row.try_get(2)?),
        actor_role: Role::parse(role).ok_or_else(|| unknown("role", role))?,
        action: AuditAction::parse(action).ok_or_else(|| unknown("action", action))?,
        key: row.try_get(5)?,
        request_id: row.try_get(6)?,
        client_request_id: row.try_get(7)?,
    })
}

#[async_trait]
impl AuditTrail for PgAuditLog {
    async fn trail(
        &self,
        subject: UserId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.trail_inner(subject, before, limit).await?)
        })
        .await
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
