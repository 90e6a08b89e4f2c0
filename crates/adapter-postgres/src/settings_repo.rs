//! `PgSettingsRepository`: the settings port on `shared.user_settings`.
//!
//! Concurrency: the expected version is part of each `UPDATE`/`DELETE`'s `WHERE`, so a stale
//! write changes nothing. When a statement matches no row, a follow-up read in a new statement
//! tells a conflict from an absent row or an unchanged write. (A CTE reading the row in the
//! same statement would not do: it sees the snapshot from before a concurrent commit the
//! `UPDATE` waited for, and would report a stale "current" version.)
//!
//! Versions: every insert and every change takes a fresh value of
//! `shared.user_settings_version_seq` (migration V4), so a version never repeats for a
//! `(user_id, key)`, even across a delete and re-create: a precondition or ETag from before a
//! delete can never match the new row. Versions are opaque; only equality means anything.
//!
//! Quota: every insert and update first locks the user's row (see `provisioning::lock_user`)
//! and reads the user's usage (settings, and bytes of values: the generated column
//! `value_bytes`, migration V6); after the write it reads the usage again, and a write that
//! raised a figure above its quota is rolled back. A user already over a lowered quota can
//! still write what does not add to that figure. Deletes only lower the figures and take no
//! user lock.
//!
//! Listings are keyset-paginated on `key` (the primary key's order): `key > $after`, with
//! `''` (before every key) for the first page.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Pool, Transaction};
use domain::{
    RepositoryError, UserId,
    ports::{SettingDeleteError, SettingWriteError, SettingsRepository},
    secrets::Envelope,
    settings::{
        Category, DataType, Description, Page, Precondition, QuotaExceeded, Setting, SettingKey,
        SettingWrite, StoredValue, UpsertOutcome, UserQuota,
    },
};
use tokio_postgres::{Row, types::ToSql};

use crate::{
    deadline::{DEFAULT_OPERATION_TIMEOUT, within},
    errors::{PgError, PgResultExt},
    provisioning::{Provisioning, lock_user},
};

/// The columns every read returns, in `setting_from_row`'s terms.
macro_rules! columns {
    () => {
        "key, value, description, category, data_type, version, created_at, updated_at"
    };
}

const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM shared.user_settings WHERE user_id = $1 AND key = $2"
);

/// Served by the primary key `(user_id, key)`, in its order.
const LIST: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM shared.user_settings WHERE user_id = $1 AND key > $2 ORDER BY key LIMIT $3"
);

/// Served by `idx_user_settings_category (user_id, category)`.
const LIST_BY_CATEGORY: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM shared.user_settings WHERE user_id = $1 AND category = $2 AND key > $3 ",
    "ORDER BY key LIMIT $4"
);

const COUNT: &str = "SELECT count(*) FROM shared.user_settings WHERE user_id = $1";

/// What the user holds: settings and bytes of values (`value_bytes`, migration V6).
const USAGE: &str = "SELECT count(*), coalesce(sum(value_bytes), 0)::bigint \
     FROM shared.user_settings WHERE user_id = $1";

/// A fresh version for a changed row, never given before (migration V4).
macro_rules! next_version {
    () => {
        "nextval('shared.user_settings_version_seq')"
    };
}

/// Insert, or update only when something differs: an unchanged write returns no row and
/// keeps its version. `created` is true only for an insert: the insert draws its version up
/// front (`drawn`), an update takes another, later one (drawn after the row lock, so a row's
/// versions grow), so the returned row has the drawn version exactly when it was inserted.
const UPSERT: &str = concat!(
    "WITH drawn AS (SELECT ",
    next_version!(),
    " AS version) ",
    "INSERT INTO shared.user_settings AS s ",
    "(user_id, key, value, description, category, data_type, version) ",
    "VALUES ($1, $2, $3, $4, $5, $6, (SELECT version FROM drawn)) ",
    "ON CONFLICT (user_id, key) DO UPDATE SET ",
    "value = EXCLUDED.value, description = EXCLUDED.description, ",
    "category = EXCLUDED.category, data_type = EXCLUDED.data_type, ",
    "version = ",
    next_version!(),
    ", updated_at = now() ",
    "WHERE (s.value, s.description, s.category, s.data_type) IS DISTINCT FROM ",
    "(EXCLUDED.value, EXCLUDED.description, EXCLUDED.category, EXCLUDED.data_type) ",
    "RETURNING ",
    columns!(),
    ", s.version = (SELECT version FROM drawn) AS created"
);

/// The version comes from the column default (the same sequence).
const INSERT_ABSENT: &str = concat!(
    "INSERT INTO shared.user_settings (user_id, key, value, description, category, data_type) ",
    "VALUES ($1, $2, $3, $4, $5, $6) ",
    "ON CONFLICT (user_id, key) DO NOTHING ",
    "RETURNING ",
    columns!()
);

/// Updates the row if it is at one of the versions `$7`, or at any version when `$7` is null
/// ("must exist").
const UPDATE_VERSION: &str = concat!(
    "UPDATE shared.user_settings SET ",
    "value = $3::jsonb, description = $4::text, category = $5::text, data_type = $6::text, ",
    "version = ",
    next_version!(),
    ", updated_at = now() ",
    "WHERE user_id = $1 AND key = $2 AND ($7::bigint[] IS NULL OR version = ANY($7)) ",
    "AND (value, description, category, data_type) IS DISTINCT FROM ",
    "($3::jsonb, $4::text, $5::text, $6::text) ",
    "RETURNING ",
    columns!()
);

/// The stored row, and whether it already holds exactly what `$3..$6` would write.
const CURRENT_VS_WRITE: &str = concat!(
    "SELECT ",
    columns!(),
    ", (value, description, category, data_type) IS NOT DISTINCT FROM ",
    "($3::jsonb, $4::text, $5::text, $6::text) AS unchanged ",
    "FROM shared.user_settings WHERE user_id = $1 AND key = $2"
);

const VERSION_OF: &str = "SELECT version FROM shared.user_settings WHERE user_id = $1 AND key = $2";

const DELETE: &str =
    "DELETE FROM shared.user_settings WHERE user_id = $1 AND key = $2 RETURNING version";

const DELETE_VERSION: &str = "DELETE FROM shared.user_settings \
     WHERE user_id = $1 AND key = $2 AND version = ANY($3) RETURNING version";

/// The settings store on PostgreSQL. Cheap to clone (shares the pool).
#[derive(Clone, Debug)]
pub struct PgSettingsRepository {
    pool: Pool,
    provisioning: Provisioning,
    operation_timeout: Duration,
}

impl PgSettingsRepository {
    /// A repository on `pool` that provisions users as `provisioning` says.
    pub fn new(pool: Pool, provisioning: Provisioning) -> Self {
        Self {
            pool,
            provisioning,
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

    async fn upsert_inner(
        &self,
        user: UserId,
        write: &SettingWrite,
        expected: Precondition,
        quota: UserQuota,
    ) -> Result<UpsertOutcome, SettingWriteError> {
        let mut client = self.pool.get().await.pg()?;
        let tx = client.transaction().await.pg()?;
        if !lock_user(&tx, user, self.provisioning).await? {
            // Without a user there is no row to match a version either.
            return Err(match expected {
                Precondition::Version(_) | Precondition::VersionIn(_) | Precondition::Exists => {
                    SettingWriteError::VersionConflict { current: None }
                }
                Precondition::Any | Precondition::Absent => SettingWriteError::UserNotFound,
            });
        }
        let before = usage(&tx, user).await?;
        let outcome = match expected {
            Precondition::Version(version) => {
                update_version(&tx, user, write, Some(&[version])).await?
            }
            Precondition::VersionIn(versions) => {
                update_version(&tx, user, write, Some(&versions)).await?
            }
            Precondition::Exists => update_version(&tx, user, write, None).await?,
            Precondition::Absent => insert_absent(&tx, user, write).await?,
            Precondition::Any => upsert(&tx, user, write).await?,
        };
        check_quota(&tx, user, before, quota).await?;
        tx.commit().await.pg()?;
        Ok(outcome)
    }

    async fn upsert_many_inner(
        &self,
        user: UserId,
        writes: &[SettingWrite],
        quota: UserQuota,
    ) -> Result<Vec<UpsertOutcome>, SettingWriteError> {
        if writes.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.pool.get().await.pg()?;
        let tx = client.transaction().await.pg()?;
        if !lock_user(&tx, user, self.provisioning).await? {
            return Err(SettingWriteError::UserNotFound);
        }
        let before = usage(&tx, user).await?;
        let mut outcomes = Vec::with_capacity(writes.len());
        for write in writes {
            outcomes.push(upsert(&tx, user, write).await?);
        }
        check_quota(&tx, user, before, quota).await?;
        // Any error above returned early: the transaction guard rolls back on drop.
        tx.commit().await.pg()?;
        Ok(outcomes)
    }

    async fn delete_inner(
        &self,
        user: UserId,
        key: &SettingKey,
        expected: Precondition,
    ) -> Result<(), SettingDeleteError> {
        let client = self.pool.get().await.pg()?;
        let params: [&(dyn ToSql + Sync); 2] = [&user.as_uuid(), &key.as_str()];
        let deleted = match expected {
            // The statement deletes only a row that exists; an absent one is reported below.
            Precondition::Any | Precondition::Exists => {
                let statement = client.prepare_cached(DELETE).await.pg()?;
                client.query_opt(&statement, &params).await.pg()?
            }
            Precondition::Version(version) => delete_version(&client, &params, &[version]).await?,
            Precondition::VersionIn(versions) => {
                delete_version(&client, &params, &versions).await?
            }
            // "Only if absent" cannot delete anything: report what is there.
            Precondition::Absent => None,
        };
        if deleted.is_some() {
            return Ok(());
        }
        let statement = client.prepare_cached(VERSION_OF).await.pg()?;
        match client.query_opt(&statement, &params).await.pg()? {
            None => Err(SettingDeleteError::NotFound),
            Some(row) => Err(SettingDeleteError::VersionConflict {
                current: row.try_get("version").pg()?,
            }),
        }
    }

    async fn get_inner(&self, user: UserId, key: &SettingKey) -> Result<Option<Setting>, PgError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(GET).await?;
        client
            .query_opt(&statement, &[&user.as_uuid(), &key.as_str()])
            .await?
            .map(|row| setting_from_row(user, &row))
            .transpose()
    }

    async fn list_inner(
        &self,
        user: UserId,
        category: Option<&Category>,
        page: &Page,
    ) -> Result<Vec<Setting>, PgError> {
        let client = self.pool.get().await?;
        // Every key sorts after the empty string.
        let after = page.after.as_ref().map_or("", SettingKey::as_str);
        let limit = i64::from(page.limit);
        let rows = match category {
            None => {
                let statement = client.prepare_cached(LIST).await?;
                client
                    .query(&statement, &[&user.as_uuid(), &after, &limit])
                    .await?
            }
            Some(category) => {
                let statement = client.prepare_cached(LIST_BY_CATEGORY).await?;
                client
                    .query(
                        &statement,
                        &[&user.as_uuid(), &category.as_str(), &after, &limit],
                    )
                    .await?
            }
        };
        rows.iter().map(|row| setting_from_row(user, row)).collect()
    }

    async fn count_inner(&self, user: UserId) -> Result<u64, PgError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(COUNT).await?;
        let count: i64 = client
            .query_one(&statement, &[&user.as_uuid()])
            .await?
            .try_get(0)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

#[async_trait]
impl SettingsRepository for PgSettingsRepository {
    async fn get(
        &self,
        user: UserId,
        key: &SettingKey,
    ) -> Result<Option<Setting>, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.get_inner(user, key).await?)
        })
        .await
    }

    async fn list(
        &self,
        user: UserId,
        category: Option<Category>,
        page: Page,
    ) -> Result<Vec<Setting>, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.list_inner(user, category.as_ref(), &page).await?)
        })
        .await
    }

    async fn upsert(
        &self,
        user: UserId,
        write: &SettingWrite,
        expected: Precondition,
        quota: UserQuota,
    ) -> Result<UpsertOutcome, SettingWriteError> {
        within(
            self.operation_timeout,
            self.upsert_inner(user, write, expected, quota),
        )
        .await
    }

    async fn upsert_many(
        &self,
        user: UserId,
        writes: &[SettingWrite],
        quota: UserQuota,
    ) -> Result<Vec<UpsertOutcome>, SettingWriteError> {
        within(
            self.operation_timeout,
            self.upsert_many_inner(user, writes, quota),
        )
        .await
    }

    async fn delete(
        &self,
        user: UserId,
        key: &SettingKey,
        expected: Precondition,
    ) -> Result<(), SettingDeleteError> {
        within(
            self.operation_timeout,
            self.delete_inner(user, key, expected),
        )
        .await
    }

    async fn count(&self, user: UserId) -> Result<u64, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.count_inner(user).await?)
        })
        .await
    }
}

/// The six parameters `$1..$6` of a write.
struct WriteParams<'a> {
    user: uuid::Uuid,
    key: &'a str,
    /// The JSON stored: the value itself, or the members of a secret's envelope.
    value: std::borrow::Cow<'a, serde_json::Value>,
    description: Option<&'a str>,
    category: Option<&'a str>,
    data_type: &'static str,
}

impl<'a> WriteParams<'a> {
    fn new(user: UserId, write: &'a SettingWrite) -> Self {
        Self {
            user: user.as_uuid(),
            key: write.key.as_str(),
            value: match &write.value {
                StoredValue::Plain(value) => std::borrow::Cow::Borrowed(value),
                StoredValue::Sealed(envelope) => std::borrow::Cow::Owned(envelope.to_value()),
            },
            description: write.description.as_ref().map(Description::as_str),
            category: write.category.as_ref().map(Category::as_str),
            // A sealed value is stored as a secret whatever the write says.
            data_type: if write.value.is_sealed() {
                DataType::Encrypted.as_str()
            } else {
                write.data_type.as_str()
            },
        }
    }

    fn as_params(&self) -> [&(dyn ToSql + Sync); 6] {
        [
            &self.user,
            &self.key,
            self.value.as_ref(),
            &self.description,
            &self.category,
            &self.data_type,
        ]
    }
}

async fn upsert(
    tx: &Transaction<'_>,
    user: UserId,
    write: &SettingWrite,
) -> Result<UpsertOutcome, SettingWriteError> {
    let params = WriteParams::new(user, write);
    let statement = tx.prepare_cached(UPSERT).await.pg()?;
    if let Some(row) = tx.query_opt(&statement, &params.as_params()).await.pg()? {
        let setting = setting_from_row(user, &row)?;
        let created = row.try_get("created").pg()?;
        return Ok(UpsertOutcome { setting, created });
    }
    // Nothing differed, so nothing was written: report the row as it is.
    let statement = tx.prepare_cached(GET).await.pg()?;
    match tx
        .query_opt(&statement, &[&params.user, &params.key])
        .await
        .pg()?
    {
        Some(row) => Ok(UpsertOutcome {
            setting: setting_from_row(user, &row)?,
            created: false,
        }),
        // Deleted between the two statements by a writer that does not lock the user.
        None => Err(SettingWriteError::VersionConflict { current: None }),
    }
}

async fn insert_absent(
    tx: &Transaction<'_>,
    user: UserId,
    write: &SettingWrite,
) -> Result<UpsertOutcome, SettingWriteError> {
    let params = WriteParams::new(user, write);
    let statement = tx.prepare_cached(INSERT_ABSENT).await.pg()?;
    if let Some(row) = tx.query_opt(&statement, &params.as_params()).await.pg()? {
        return Ok(UpsertOutcome {
            setting: setting_from_row(user, &row)?,
            created: true,
        });
    }
    let statement = tx.prepare_cached(VERSION_OF).await.pg()?;
    let current = tx
        .query_opt(&statement, &[&params.user, &params.key])
        .await
        .pg()?
        .map(|row| row.try_get::<_, i64>("version"))
        .transpose()
        .pg()?;
    Err(SettingWriteError::VersionConflict { current })
}

/// Deletes the row if it is at one of the `expected` versions.
async fn delete_version(
    client: &deadpool_postgres::Client,
    params: &[&(dyn ToSql + Sync); 2],
    expected: &[i64],
) -> Result<Option<Row>, SettingDeleteError> {
    let statement = client.prepare_cached(DELETE_VERSION).await.pg()?;
    Ok(client
        .query_opt(&statement, &[params[0], params[1], &expected])
        .await
        .pg()?)
}

/// Updates the row if it is at one of the `expected` versions, or at any version for `None`.
async fn update_version(
    tx: &Transaction<'_>,
    user: UserId,
    write: &SettingWrite,
    expected: Option<&[i64]>,
) -> Result<UpsertOutcome, SettingWriteError> {
    let params = WriteParams::new(user, write);
    let [p1, p2, p3, p4, p5, p6] = params.as_params();
    let statement = tx.prepare_cached(UPDATE_VERSION).await.pg()?;
    if let Some(row) = tx
        .query_opt(&statement, &[p1, p2, p3, p4, p5, p6, &expected])
        .await
        .pg()?
    {
        return Ok(UpsertOutcome {
            setting: setting_from_row(user, &row)?,
            created: false,
        });
    }
    let statement = tx.prepare_cached(CURRENT_VS_WRITE).await.pg()?;
    let Some(row) = tx.query_opt(&statement, &params.as_params()).await.pg()? else {
        return Err(SettingWriteError::VersionConflict { current: None });
    };
    let current: i64 = row.try_get("version").pg()?;
    let unchanged: bool = row.try_get("unchanged").pg()?;
    if expected.is_none_or(|versions| versions.contains(&current)) && unchanged {
        return Ok(UpsertOutcome {
            setting: setting_from_row(user, &row)?,
            created: false,
        });
    }
    Err(SettingWriteError::VersionConflict {
        current: Some(current),
    })
}

/// The user's settings and bytes of values, as this transaction sees them.
#[derive(Clone, Copy, Debug)]
struct Usage {
    settings: i64,
    bytes: i64,
}

async fn usage(tx: &Transaction<'_>, user: UserId) -> Result<Usage, SettingWriteError> {
    let statement = tx.prepare_cached(USAGE).await.pg()?;
    let row = tx.query_one(&statement, &[&user.as_uuid()]).await.pg()?;
    Ok(Usage {
        settings: row.try_get(0).pg()?,
        bytes: row.try_get(1).pg()?,
    })
}

/// Fails when the writes since `before` raised a figure above its quota; the caller's
/// transaction is then dropped, which rolls them back. A figure already over a lowered
/// quota that the writes did not raise is let be.
async fn check_quota(
    tx: &Transaction<'_>,
    user: UserId,
    before: Usage,
    quota: UserQuota,
) -> Result<(), SettingWriteError> {
    let after = usage(tx, user).await?;
    if after.settings > i64::from(quota.max_settings) && after.settings > before.settings {
        return Err(SettingWriteError::QuotaExceeded(QuotaExceeded::Settings {
            limit: quota.max_settings,
        }));
    }
    let max_bytes = i64::try_from(quota.max_bytes).unwrap_or(i64::MAX);
    if after.bytes > max_bytes && after.bytes > before.bytes {
        return Err(SettingWriteError::QuotaExceeded(QuotaExceeded::Bytes {
            limit: quota.max_bytes,
        }));
    }
    Ok(())
}

fn setting_from_row(user: UserId, row: &Row) -> Result<Setting, PgError> {
    let key: String = row.try_get("key")?;
    let key = SettingKey::parse(&key)
        .map_err(|e| PgError::Corrupt(format!("stored setting key: {}", e.code)))?;
    let data_type: String = row.try_get("data_type")?;
    let data_type = data_type
        .parse::<DataType>()
        .map_err(|()| PgError::Corrupt("stored data_type".to_owned()))?;
    let value: serde_json::Value = row.try_get("value")?;
    let value = if data_type == DataType::Encrypted {
        // The CHECK constraint keeps the envelope's members; their types are checked here.
        StoredValue::Sealed(
            Envelope::from_value(&value)
                .map_err(|_| PgError::Corrupt("stored envelope".to_owned()))?,
        )
    } else {
        StoredValue::Plain(value)
    };
    Ok(Setting {
        user_id: user,
        key,
        value,
        description: row
            .try_get::<_, Option<String>>("description")?
            .map(Description::from_stored),
        category: row
            .try_get::<_, Option<String>>("category")?
            .map(Category::from_stored),
        data_type,
        version: row.try_get("version")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
