//! `PgDeviceSettingsRepository`: the device layer's port on `shared.user_device_settings`
//! (migration V8).
//!
//! A device's override is a row of the same shape as a user's setting, named by
//! `(user_id, device_id, key)`; one-row reads, writes and deletes run the statements and
//! steps of `settings_repo` for that table, so they follow the same rules: the precondition in
//! the statement, a fresh version from the settings' sequence on every change, and every
//! insert or update under the user's row lock with the quotas (counted over the user's own
//! settings and every device's overrides, and the devices that hold any) checked in the
//! same transaction.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Pool;
use domain::{
    RepositoryError, UserId,
    devices::{DeviceId, DeviceSummary},
    ports::{DeviceSettingsRepository, SettingDeleteError, SettingWriteError},
    settings::{Precondition, Setting, SettingKey, SettingWrite, UpsertOutcome, UserQuota},
};
use time::OffsetDateTime;

use crate::{
    deadline::within,
    errors::PgError,
    provisioning::Provisioning,
    settings_repo::{Owner, columns, delete_row, get_row, setting_from_row, upsert_row},
};

/// Served by the primary key `(user_id, device_id, key)`, in its order.
const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM shared.user_device_settings WHERE user_id = $1 AND device_id = $2 ORDER BY key"
);

/// Served by the primary key's prefix `(user_id, device_id)`.
const DEVICES: &str = "SELECT device_id, count(*), max(updated_at) \
     FROM shared.user_device_settings WHERE user_id = $1 \
     GROUP BY device_id ORDER BY device_id";

/// Deletes only lower the quota's figures: no user lock.
const DELETE_DEVICE: &str =
    "DELETE FROM shared.user_device_settings WHERE user_id = $1 AND device_id = $2";

/// The device layer's store on PostgreSQL: the rows of the settings store that devices
/// override, on its pool, provisioning and operation timeout
/// ([`PgSettingsRepository::devices`](crate::PgSettingsRepository::devices)). Cheap to clone.
#[derive(Clone, Debug)]
pub struct PgDeviceSettingsRepository {
    pub(crate) pool: Pool,
    pub(crate) provisioning: Provisioning,
    pub(crate) operation_timeout: Duration,
}

impl PgDeviceSettingsRepository {
    async fn list_inner(&self, user: UserId, device: &DeviceId) -> Result<Vec<Setting>, PgError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(LIST).await?;
        client
            .query(&statement, &[&user.as_uuid(), &device.as_str()])
            .await?
            .iter()
            .map(|row| setting_from_row(user, row))
            .collect()
    }

    async fn devices_inner(&self, user: UserId) -> Result<Vec<DeviceSummary>, PgError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(DEVICES).await?;
        client
            .query(&statement, &[&user.as_uuid()])
            .await?
            .iter()
            .map(|row| {
                let device_id: String = row.try_get(0)?;
                let settings: i64 = row.try_get(1)?;
                let updated_at: OffsetDateTime = row.try_get(2)?;
                Ok(DeviceSummary {
                    device_id: DeviceId::parse(&device_id)
                        .map_err(|e| PgError::Corrupt(format!("stored device id: {}", e.code)))?,
                    settings: u64::try_from(settings).unwrap_or(0),
                    updated_at,
                })
            })
            .collect()
    }

    async fn delete_device_inner(&self, user: UserId, device: &DeviceId) -> Result<bool, PgError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(DELETE_DEVICE).await?;
        let deleted = client
            .execute(&statement, &[&user.as_uuid(), &device.as_str()])
            .await?;
        Ok(deleted > 0)
    }
}

#[async_trait]
impl DeviceSettingsRepository for PgDeviceSettingsRepository {
    async fn get(
        &self,
        user: UserId,
        device: &DeviceId,
        key: &SettingKey,
    ) -> Result<Option<Setting>, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(get_row(&self.pool, Owner::device(user, device), key).await?)
        })
        .await
    }

    async fn list(&self, user: UserId, device: &DeviceId) -> Result<Vec<Setting>, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.list_inner(user, device).await?)
        })
        .await
    }

    async fn upsert(
        &self,
        user: UserId,
        device: &DeviceId,
        write: &SettingWrite,
        expected: Precondition,
        quota: UserQuota,
    ) -> Result<UpsertOutcome, SettingWriteError> {
        within(
            self.operation_timeout,
            upsert_row(
                &self.pool,
                self.provisioning,
                Owner::device(user, device),
                write,
                expected,
                quota,
            ),
        )
        .await
    }

    async fn delete(
        &self,
        user: UserId,
        device: &DeviceId,
        key: &SettingKey,
        expected: Precondition,
    ) -> Result<(), SettingDeleteError> {
        within(
            self.operation_timeout,
            delete_row(&self.pool, Owner::device(user, device), key, expected),
        )
        .await
    }

    async fn devices(&self, user: UserId) -> Result<Vec<DeviceSummary>, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.devices_inner(user).await?)
        })
        .await
    }

    async fn delete_device(
        &self,
        user: UserId,
        device: &DeviceId,
    ) -> Result<bool, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.delete_device_inner(user, device).await?)
        })
        .await
    }
}
