//! `PgDeviceSettingsRepository`: the device layer's port on `shared.user_device_settings`
//! (migration V8) and `shared.user_device_preferences` (V10: one document of overrides per
//! device, written under the same user lock, so a device counts once towards the user's
//! devices whatever it overrides).
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
use deadpool_postgres::Transaction;
use domain::{
    RepositoryError, UserId,
    devices::{DeviceId, DeviceSummary},
    history::ChangeOrigin,
    ports::{DeviceSettingsRepository, SettingDeleteError, SettingWriteError},
    preferences::{PreferenceOverrides, StoredPreferences},
    settings::{Precondition, Setting, SettingKey, SettingWrite, UpsertOutcome, UserQuota},
};
use time::OffsetDateTime;
use tokio_postgres::{Row, types::ToSql};

use crate::{
    Pool,
    deadline::within,
    errors::{PgError, PgResultExt},
    provisioning::{Provisioning, lock_user},
    settings_repo::{
        Owner, check_quota, columns, delete_row, get_row, setting_from_row, upsert_row, usage,
    },
};

/// Served by the primary key `(user_id, device_id, key)`, in its order.
const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM shared.user_device_settings WHERE user_id = $1 AND device_id = $2 ORDER BY key"
);

/// Served by the primary key's prefix `(user_id, device_id)`.
const DEVICES: &str = "SELECT device_id, coalesce(s.settings, 0), p.overrides, \
     greatest(s.updated_at, p.updated_at) \
     FROM (SELECT device_id, count(*) AS settings, max(updated_at) AS updated_at \
           FROM shared.user_device_settings WHERE user_id = $1 GROUP BY device_id) AS s \
     FULL JOIN (SELECT device_id, overrides, updated_at \
           FROM shared.user_device_preferences WHERE user_id = $1) AS p USING (device_id) \
     ORDER BY device_id";

const PREFERENCES: &str = "SELECT overrides, version, created_at, updated_at \
     FROM shared.user_device_preferences WHERE user_id = $1 AND device_id = $2";

/// The row under the user's lock, so its version is the one the write is checked against.
const PREFERENCES_FOR_UPDATE: &str = "SELECT version FROM shared.user_device_preferences \
     WHERE user_id = $1 AND device_id = $2 FOR UPDATE";

/// Inserts or changes the overrides; an unchanged document keeps its version (no row back).
const PUT_PREFERENCES: &str = "INSERT INTO shared.user_device_preferences AS d \
     (user_id, device_id, overrides) VALUES ($1, $2, $3) \
     ON CONFLICT (user_id, device_id) DO UPDATE SET overrides = EXCLUDED.overrides, \
     version = nextval('shared.user_preferences_version_seq'), updated_at = now() \
     WHERE d.overrides IS DISTINCT FROM EXCLUDED.overrides \
     RETURNING overrides, version, created_at, updated_at";

const DELETE_PREFERENCES: &str =
    "DELETE FROM shared.user_device_preferences WHERE user_id = $1 AND device_id = $2";

/// Deletes only lower the quota's figures: no user lock.
const DELETE_DEVICE: &str = "WITH settings AS (\
     DELETE FROM shared.user_device_settings WHERE user_id = $1 AND device_id = $2 \
     RETURNING 1), preferences AS (\
     DELETE FROM shared.user_device_preferences WHERE user_id = $1 AND device_id = $2 \
     RETURNING 1) \
     SELECT (SELECT count(*) FROM settings) + (SELECT count(*) FROM preferences)";

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
                let overrides: Option<serde_json::Value> = row.try_get(2)?;
                let updated_at: OffsetDateTime = row.try_get(3)?;
                Ok(DeviceSummary {
                    device_id: DeviceId::parse(&device_id)
                        .map_err(|e| PgError::Corrupt(format!("stored device id: {}", e.code)))?,
                    settings: u64::try_from(settings).unwrap_or(0),
                    preferences: overrides
                        .map(|o| overrides_from(&o).map(|o| o.fields()))
                        .transpose()?
                        .unwrap_or_default(),
                    updated_at,
                })
            })
            .collect()
    }

    async fn delete_device_inner(&self, user: UserId, device: &DeviceId) -> Result<bool, PgError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(DELETE_DEVICE).await?;
        let deleted: i64 = client
            .query_one(&statement, &[&user.as_uuid(), &device.as_str()])
            .await?
            .try_get(0)?;
        Ok(deleted > 0)
    }

    async fn preferences_inner(
        &self,
        user: UserId,
        device: &DeviceId,
    ) -> Result<Option<StoredPreferences>, PgError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(PREFERENCES).await?;
        client
            .query_opt(&statement, &[&user.as_uuid(), &device.as_str()])
            .await?
            .map(|row| stored_from_row(user, &row))
            .transpose()
    }

    async fn put_preferences_inner(
        &self,
        user: UserId,
        device: &DeviceId,
        overrides: &PreferenceOverrides,
        expected: Precondition,
        quota: UserQuota,
    ) -> Result<Option<StoredPreferences>, SettingWriteError> {
        let mut client = self.pool.get().await.pg()?;
        let tx = client.transaction().await.pg()?;
        if !lock_user(&tx, user, self.provisioning).await? {
            return Err(SettingWriteError::UserNotFound);
        }
        let before = usage(&tx, user).await?;
        let stored = put_device_preferences(&tx, user, device, overrides, expected).await?;
        check_quota(&tx, user, before, quota).await?;
        tx.commit().await.pg()?;
        Ok(stored)
    }
}

/// Writes `device`'s preference overrides under `expected` in the caller's transaction (which
/// holds the user's lock); empty overrides remove its row. Returns the row written, if any.
pub(crate) async fn put_device_preferences(
    tx: &Transaction<'_>,
    user: UserId,
    device: &DeviceId,
    overrides: &PreferenceOverrides,
    expected: Precondition,
) -> Result<Option<StoredPreferences>, SettingWriteError> {
    let params: [&(dyn ToSql + Sync); 2] = [&user.as_uuid(), &device.as_str()];
    let statement = tx.prepare_cached(PREFERENCES_FOR_UPDATE).await.pg()?;
    let current: Option<i64> = tx
        .query_opt(&statement, &params)
        .await
        .pg()?
        .map(|row| row.try_get(0))
        .transpose()
        .pg()?;
    let holds = match (&expected, current) {
        (Precondition::Any, _) | (Precondition::Absent, None) => true,
        (Precondition::Exists, Some(_)) => true,
        (condition, Some(version)) => condition.accepts_version(version),
        _ => false,
    };
    if !holds {
        return Err(SettingWriteError::VersionConflict { current });
    }
    Ok(if overrides.is_empty() {
        let statement = tx.prepare_cached(DELETE_PREFERENCES).await.pg()?;
        tx.execute(&statement, &params).await.pg()?;
        None
    } else {
        let document = overrides.to_document();
        let statement = tx.prepare_cached(PUT_PREFERENCES).await.pg()?;
        let written = tx
            .query_opt(&statement, &[params[0], params[1], &document])
            .await
            .pg()?;
        let row = match written {
            Some(row) => row,
            // Unchanged: report the row as it is.
            None => {
                let statement = tx.prepare_cached(PREFERENCES).await.pg()?;
                tx.query_one(&statement, &params).await.pg()?
            }
        };
        Some(stored_from_row(user, &row)?)
    })
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
            delete_row(
                &self.pool,
                Owner::device(user, device),
                key,
                expected,
                ChangeOrigin::User,
            ),
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

    async fn preferences(
        &self,
        user: UserId,
        device: &DeviceId,
    ) -> Result<Option<StoredPreferences>, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.preferences_inner(user, device).await?)
        })
        .await
    }

    async fn put_preferences(
        &self,
        user: UserId,
        device: &DeviceId,
        overrides: &PreferenceOverrides,
        expected: Precondition,
        quota: UserQuota,
    ) -> Result<Option<StoredPreferences>, SettingWriteError> {
        within(
            self.operation_timeout,
            self.put_preferences_inner(user, device, overrides, expected, quota),
        )
        .await
    }
}

/// A device's overrides, checked by the domain's parser like client input (names and codes
/// only in the error: values stay out of logs).
fn overrides_from(document: &serde_json::Value) -> Result<PreferenceOverrides, PgError> {
    PreferenceOverrides::from_document(document).map_err(|errors| {
        let fields: Vec<String> = errors
            .errors()
            .iter()
            .map(|e| format!("{} ({})", e.field, e.code))
            .collect();
        PgError::Corrupt(format!("stored device preferences: {}", fields.join(", ")))
    })
}

fn stored_from_row(user: UserId, row: &Row) -> Result<StoredPreferences, PgError> {
    Ok(StoredPreferences {
        user_id: user,
        overrides: overrides_from(&row.try_get("overrides")?)?,
        version: row.try_get("version")?,
        created_at: Some(row.try_get("created_at")?),
        updated_at: Some(row.try_get("updated_at")?),
    })
}
