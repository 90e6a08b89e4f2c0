//! `PgImportRepository`: an import's writes in one transaction (the import port).
//!
//! The transaction holds the user's lock throughout, names the import as the origin of every
//! change for the history (migration V11), writes and deletes each row under the precondition
//! it was planned with, and checks the quotas on the result, as a bulk write does: all or
//! nothing.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use domain::{
    UserId,
    history::ChangeOrigin,
    portability::ImportChanges,
    ports::{ImportRepository, PreferencesWriteError, SettingDeleteError, SettingWriteError},
    settings::{Precondition, SettingKey, SettingWrite, UserQuota},
};

use crate::{
    Pool,
    deadline::{DEFAULT_OPERATION_TIMEOUT, within},
    device_settings_repo::put_device_preferences,
    errors::PgResultExt,
    history_repo::name_origin,
    preferences_repo::write_preferences,
    provisioning::{Provisioning, lock_user},
    settings_repo::{Owner, check_quota, delete_in, usage, write_row},
};

/// Imports on PostgreSQL. Cheap to clone (shares the pool).
#[derive(Clone, Debug)]
pub struct PgImportRepository {
    pool: Pool,
    provisioning: Provisioning,
    operation_timeout: Duration,
}

impl PgImportRepository {
    /// A repository on `pool` that provisions users as `provisioning` says.
    pub fn new(pool: Pool, provisioning: Provisioning) -> Self {
        Self {
            pool,
            provisioning,
            operation_timeout: DEFAULT_OPERATION_TIMEOUT,
        }
    }

    /// Sets the client-side limit of one import (default [`DEFAULT_OPERATION_TIMEOUT`]).
    #[must_use]
    pub fn with_operation_timeout(mut self, limit: Duration) -> Self {
        self.operation_timeout = limit;
        self
    }

    async fn apply_inner(
        &self,
        user: UserId,
        changes: &ImportChanges,
        quota: UserQuota,
    ) -> Result<(), SettingWriteError> {
        let mut client = self.pool.get().await.pg()?;
        let tx = client.transaction().await.pg()?;
        if !lock_user(&tx, user, self.provisioning).await? {
            return Err(SettingWriteError::UserNotFound);
        }
        name_origin(&tx, ChangeOrigin::Import).await?;
        let before = usage(&tx, user).await?;
        rows(&tx, Owner::user(user), &changes.settings, &changes.deletes).await?;
        if let Some((overrides, expected)) = &changes.preferences {
            write_preferences(&tx, user, overrides, expected.clone(), self.provisioning)
                .await
                .map_err(|e| match e {
                    PreferencesWriteError::VersionConflict { .. } => {
                        SettingWriteError::VersionConflict { current: None }
                    }
                    PreferencesWriteError::UserNotFound => SettingWriteError::UserNotFound,
                    PreferencesWriteError::Repository(r) => SettingWriteError::Repository(r),
                })?;
        }
        for device in &changes.devices {
            let owner = Owner::device(user, &device.device);
            rows(&tx, owner, &device.settings, &device.deletes).await?;
            if let Some((overrides, expected)) = &device.preferences {
                put_device_preferences(&tx, user, &device.device, overrides, expected.clone())
                    .await?;
            }
        }
        check_quota(&tx, user, before, quota).await?;
        tx.commit().await.pg()?;
        Ok(())
    }
}

/// The writes and deletes of one owner's rows.
async fn rows(
    tx: &Transaction<'_>,
    owner: Owner<'_>,
    writes: &[(SettingWrite, Precondition)],
    deletes: &[(SettingKey, i64)],
) -> Result<(), SettingWriteError> {
    for (write, expected) in writes {
        write_row(tx, owner, write, expected.clone()).await?;
    }
    for (key, version) in deletes {
        delete_in(tx, owner, key, Precondition::Version(*version))
            .await
            .map_err(|e| match e {
                SettingDeleteError::NotFound => {
                    SettingWriteError::VersionConflict { current: None }
                }
                SettingDeleteError::VersionConflict { current } => {
                    SettingWriteError::VersionConflict {
                        current: Some(current),
                    }
                }
                SettingDeleteError::Repository(r) => SettingWriteError::Repository(r),
            })?;
    }
    Ok(())
}

#[async_trait]
impl ImportRepository for PgImportRepository {
    async fn apply(
        &self,
        user: UserId,
        changes: &ImportChanges,
        quota: UserQuota,
    ) -> Result<(), SettingWriteError> {
        within(
            self.operation_timeout,
            self.apply_inner(user, changes, quota),
        )
        .await
    }
}
