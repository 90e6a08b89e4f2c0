//! `PgDefaultsRepository`: the deployment layer on `shared.deployment_settings` (V7) and
//! `shared.deployment_preferences` (V9). Each write and its `defaults_write` audit row commit
//! together, so no change goes unrecorded.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use async_trait::async_trait;
use domain::{
    RepositoryError,
    audit::{Actor, AuditAction},
    defaults::{DeploymentDefaults, DeploymentSetting},
    ports::DefaultsRepository,
    preferences::{DeploymentPreferences, PreferenceField, PreferenceOverrides},
    settings::{Category, DataType, SettingKey, SettingWrite, StoredValue},
};
use tokio_postgres::Row;

use crate::{
    Pool,
    audit_log::{INSERT as AUDIT, cut},
    deadline::{DEFAULT_OPERATION_TIMEOUT, within},
    errors::PgError,
};

const LOAD: &str = "SELECT key, value, category, data_type, enforced, version, updated_at \
     FROM shared.deployment_settings ORDER BY key";

/// `created` tells an insert from an update (an update draws a new version; an insert keeps
/// the column default, so `xmax = 0` is the usual insert test).
const UPSERT: &str = "INSERT INTO shared.deployment_settings AS d \
     (key, value, category, data_type, enforced, updated_by) VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, category = EXCLUDED.category, \
     data_type = EXCLUDED.data_type, enforced = EXCLUDED.enforced, \
     updated_by = EXCLUDED.updated_by, updated_at = now(), \
     version = nextval('shared.user_settings_version_seq') \
     RETURNING key, value, category, data_type, enforced, version, updated_at, \
     (xmax = 0) AS created";

const DELETE: &str = "DELETE FROM shared.deployment_settings WHERE key = $1 RETURNING key";

const LOAD_PREFERENCES: &str =
    "SELECT overrides, enforced, version FROM shared.deployment_preferences";

/// The first write of the preferences part; nothing when another came first.
const INSERT_PREFERENCES: &str = "INSERT INTO shared.deployment_preferences \
     (overrides, enforced, updated_by) VALUES ($1, $2, $3) \
     ON CONFLICT (singleton) DO NOTHING RETURNING version";

/// A later write, only over the version it was computed from.
const UPDATE_PREFERENCES: &str = "UPDATE shared.deployment_preferences \
     SET overrides = $1, enforced = $2, updated_by = $3, updated_at = now(), \
     version = nextval('shared.user_preferences_version_seq') \
     WHERE version = $4 RETURNING version";

/// The deployment layer on PostgreSQL. Cheap to clone (shares the pool).
#[derive(Clone, Debug)]
pub struct PgDefaultsRepository {
    pool: Pool,
    operation_timeout: Duration,
}

impl PgDefaultsRepository {
    /// A repository on `pool`.
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

    async fn load_inner(&self) -> Result<DeploymentDefaults, PgError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(LOAD).await?;
        let mut settings = BTreeMap::new();
        for row in client.query(&statement, &[]).await? {
            let setting = setting_from_row(&row)?;
            settings.insert(setting.key.as_str().to_owned(), setting);
        }
        let statement = client.prepare_cached(LOAD_PREFERENCES).await?;
        let (preferences, preferences_version) = match client.query_opt(&statement, &[]).await? {
            Some(row) => (preferences_from_row(&row)?, row.try_get("version")?),
            None => (DeploymentPreferences::default(), 0),
        };
        Ok(DeploymentDefaults {
            settings,
            preferences,
            preferences_version,
        })
    }

    async fn put_preferences_inner(
        &self,
        preferences: &DeploymentPreferences,
        expected_version: i64,
        actor: &Actor,
    ) -> Result<bool, PgError> {
        let overrides = preferences.values.to_document();
        let enforced: Vec<&str> = preferences.enforced.iter().map(|f| f.as_str()).collect();
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let written = if expected_version == 0 {
            let statement = tx.prepare_cached(INSERT_PREFERENCES).await?;
            tx.query_opt(&statement, &[&overrides, &enforced, &actor.id.as_uuid()])
                .await?
        } else {
            let statement = tx.prepare_cached(UPDATE_PREFERENCES).await?;
            tx.query_opt(
                &statement,
                &[
                    &overrides,
                    &enforced,
                    &actor.id.as_uuid(),
                    &expected_version,
                ],
            )
            .await?
        };
        if written.is_none() {
            return Ok(false);
        }
        audit(&tx, actor, None).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn put_inner(
        &self,
        write: &SettingWrite,
        enforced: bool,
        actor: &Actor,
    ) -> Result<(DeploymentSetting, bool), PgError> {
        let StoredValue::Plain(value) = &write.value else {
            // The domain refuses secrets before this; the table's CHECK would too.
            return Err(PgError::Corrupt(
                "a secret for the deployment layer".to_owned(),
            ));
        };
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let statement = tx.prepare_cached(UPSERT).await?;
        let row = tx
            .query_one(
                &statement,
                &[
                    &write.key.as_str(),
                    value,
                    &write.category.as_ref().map(Category::as_str),
                    &write.data_type.as_str(),
                    &enforced,
                    &actor.id.as_uuid(),
                ],
            )
            .await?;
        audit(&tx, actor, Some(&write.key)).await?;
        let created = row.try_get("created")?;
        let setting = setting_from_row(&row)?;
        tx.commit().await?;
        Ok((setting, created))
    }

    async fn delete_inner(&self, key: &SettingKey, actor: &Actor) -> Result<bool, PgError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let statement = tx.prepare_cached(DELETE).await?;
        let deleted = tx.query_opt(&statement, &[&key.as_str()]).await?.is_some();
        if deleted {
            audit(&tx, actor, Some(key)).await?;
            tx.commit().await?;
        }
        Ok(deleted)
    }
}

/// The `defaults_write` record of a change, in the change's transaction; no subject (the
/// layer concerns every user), and no key for the preferences part.
async fn audit(
    tx: &deadpool_postgres::Transaction<'_>,
    actor: &Actor,
    key: Option<&SettingKey>,
) -> Result<(), PgError> {
    let statement = tx.prepare_cached(AUDIT).await?;
    tx.execute(
        &statement,
        &[
            &actor.id.as_uuid(),
            &actor.role.as_str(),
            &None::<uuid::Uuid>,
            &AuditAction::DefaultsWrite.as_str(),
            &key.map(SettingKey::as_str),
            &cut(actor.request_id.as_deref()),
            &cut(actor.client_request_id.as_deref()),
        ],
    )
    .await?;
    Ok(())
}

/// The preferences part, checked by the domain's parser like client input.
fn preferences_from_row(row: &Row) -> Result<DeploymentPreferences, PgError> {
    let corrupt = |what: &str| PgError::Corrupt(format!("stored deployment preferences: {what}"));
    let overrides: serde_json::Value = row.try_get("overrides")?;
    let values =
        PreferenceOverrides::from_document(&overrides).map_err(|_| corrupt("overrides"))?;
    let names: Vec<String> = row.try_get("enforced")?;
    let enforced = names
        .iter()
        .map(|name| PreferenceField::from_name(name).ok_or_else(|| corrupt("enforced")))
        .collect::<Result<_, _>>()?;
    Ok(DeploymentPreferences { values, enforced })
}

fn setting_from_row(row: &Row) -> Result<DeploymentSetting, PgError> {
    let key: String = row.try_get("key")?;
    let key = SettingKey::parse(&key)
        .map_err(|e| PgError::Corrupt(format!("stored default key: {}", e.code)))?;
    let data_type: String = row.try_get("data_type")?;
    Ok(DeploymentSetting {
        key,
        value: row.try_get("value")?,
        data_type: data_type
            .parse::<DataType>()
            .map_err(|()| PgError::Corrupt("stored default data_type".to_owned()))?,
        category: row
            .try_get::<_, Option<String>>("category")?
            .map(Category::from_stored),
        enforced: row.try_get("enforced")?,
        version: row.try_get("version")?,
        updated_at: row.try_get("updated_at")?,
    })
}

#[async_trait]
impl DefaultsRepository for PgDefaultsRepository {
    async fn load(&self) -> Result<Arc<DeploymentDefaults>, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(Arc::new(self.load_inner().await?))
        })
        .await
    }

    async fn put_setting(
        &self,
        write: &SettingWrite,
        enforced: bool,
        actor: &Actor,
    ) -> Result<(DeploymentSetting, bool), RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.put_inner(write, enforced, actor).await?)
        })
        .await
    }

    async fn delete_setting(
        &self,
        key: &SettingKey,
        actor: &Actor,
    ) -> Result<bool, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.delete_inner(key, actor).await?)
        })
        .await
    }

    async fn put_preferences(
        &self,
        preferences: &DeploymentPreferences,
        expected_version: i64,
        actor: &Actor,
    ) -> Result<bool, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self
                .put_preferences_inner(preferences, expected_version, actor)
                .await?)
        })
        .await
    }
}
