//! Support's reads that no other service audits: the gate that records an admin's read of a
//! user before the read runs, and the audit trail itself ("who has looked at this user's
//! data"), which is audited like any other read of it.

use std::{future::Future, sync::Arc};

use super::history::checked_limit;
use crate::{
    audit::{Actor, AuditEntry, AuditPage},
    error::{RepositoryError, ValidationErrors},
    ids::UserId,
    ports::{AuditLog, AuditTrail},
};

/// Why the audit trail could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AuditTrailError {
    /// The limit is out of range.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// The audit log failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Support's audited reads.
pub struct SupportService {
    audit: Arc<dyn AuditLog>,
    trail: Arc<dyn AuditTrail>,
}

impl SupportService {
    /// Records into `audit` and reads back through `trail`.
    pub fn new(audit: Arc<dyn AuditLog>, trail: Arc<dyn AuditTrail>) -> Self {
        Self { audit, trail }
    }

    /// Runs `read` of `subject`'s data once `actor`'s read is on record: when the audit log
    /// fails, nothing is read.
    ///
    /// # Errors
    /// The audit log's failure, or `read`'s.
    pub async fn audited<T, E: From<RepositoryError>>(
        &self,
        actor: &Actor,
        subject: UserId,
        read: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        self.audit
            .record(AuditEntry::admin_read(actor, subject))
            .await?;
        read.await
    }

    /// One page of the privileged reads (and operators' writes) of `subject`'s data, newest
    /// first, below record `before`. This read is recorded first, so the first page shows it.
    ///
    /// # Errors
    /// `Validation` for a limit out of 1..=200; `Repository` when the log fails.
    pub async fn trail_as_admin(
        &self,
        actor: &Actor,
        subject: UserId,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Result<AuditPage, AuditTrailError> {
        let limit = checked_limit(limit).map_err(AuditTrailError::Validation)?;
        self.audited(actor, subject, async {
            let mut records = self.trail.trail(subject, before, limit + 1).await?;
            let more = records.len() > limit as usize;
            records.truncate(limit as usize);
            let next_before = more.then(|| records.last().map(|r| r.id)).flatten();
            Ok(AuditPage {
                records,
                next_before,
            })
        })
        .await
    }
}
