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
//! `value_bytes`, migration V6; their devices' overrides count too, and so do the devices
//! that hold any); after the write it reads the usage again, and a write that
//! raised a figure above its quota is rolled back. A user already over a lowered quota can
//! still write what does not add to that figure. Deletes only lower the figures and take no
//! user lock. The most common write (the user's own, no precondition, user row present) runs
//! all of that as one statement, the function `shared.put_user_setting` (migration V14): one
//! round trip instead of four, same lock, versions, quota and triggers; every other write is
//! a transaction the service drives.
//!
//! Listings are keyset-paginated on `key` (the primary key's order): `key > $after`, with
//! `''` (before every key) for the first page.
//!
//! Devices' overrides (`shared.user_device_settings`, migration V8) are rows of the same shape
//! named by `(user_id, device_id, key)`. The statements on one row are built once per table
//! from one template each ([`RowStatements`]), and the steps that run them (`upsert_row`,
//! `delete_row`, `get_row`, the quota) take the row's [`Owner`], so both tables follow the
//! same concurrency, version and quota rules. The quota counts both tables.

use std::{borrow::Cow, sync::LazyLock, time::Duration};

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use domain::{
    RepositoryError, UserId,
    devices::DeviceId,
    history::ChangeOrigin,
    ports::{SettingDeleteError, SettingWriteError, SettingsRepository},
    secrets::Envelope,
    settings::{
        Category, DataType, Description, Page, Precondition, QuotaExceeded, Setting, SettingKey,
        SettingWrite, StoredValue, UpsertOutcome, UserQuota,
    },
};
use tokio_postgres::{Row, types::ToSql};

use crate::{
    PgDeviceSettingsRepository, Pool,
    deadline::{DEFAULT_OPERATION_TIMEOUT, within},
    errors::{PgError, PgResultExt},
    history_repo::name_origin,
    provisioning::{LOCK_USER, Provisioning, lock_user},
};

/// The columns every read returns, in `setting_from_row`'s terms.
macro_rules! columns {
    () => {
        "key, value, description, category, data_type, version, created_at, updated_at"
    };
}
pub(crate) use columns;

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

/// What the user holds, their devices' overrides included: settings, bytes of values
/// (`value_bytes`, migrations V6 and V8) and devices that hold overrides.
/// A device counts once, whether it overrides settings, preferences (V10) or both.
/// The definition is the SQL function `shared.user_usage` (migration V14), which the
/// planner inlines.
const USAGE: &str = "SELECT settings, bytes, devices FROM shared.user_usage($1)";

/// The common write in one statement and one round trip: the user's lock, the figures, the
/// upsert and the quota check, in the statement's own transaction (migration V14).
const PUT_USER_SETTING: &str =
    "SELECT * FROM shared.put_user_setting($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// The SQLSTATE `shared.put_user_setting` raises when the write would exceed a quota; its
/// message names the figure.
const QUOTA_EXCEEDED_STATE: &str = "UQ001";

/// A fresh version for a changed row, never given before (migration V4).
const NEXT_VERSION: &str = "nextval('shared.user_settings_version_seq')";

/// The statements on one row of a table of settings rows. Their parameters: the row's name
/// (`$1..$n`, the table's `cell` columns), then the value, description, category and data
/// type, then, for conditional writes and deletes, the accepted versions.
pub(crate) struct RowStatements {
    get: String,
    /// Insert, or update only when something differs: an unchanged write returns no row and
    /// keeps its version. `created` is true only for an insert: the insert draws its version
    /// up front (`drawn`), an update takes another, later one (drawn after the row lock, so a
    /// row's versions grow), so the returned row has the drawn version exactly when it was
    /// inserted.
    upsert: String,
    /// The version comes from the column default (the same sequence).
    insert_absent: String,
    /// Updates the row if it is at one of the given versions, or at any version when they are
    /// null ("must exist").
    update_version: String,
    /// The stored row, and whether it already holds exactly what the write would write.
    current_vs_write: String,
    version_of: String,
    delete: String,
    delete_version: String,
}

impl RowStatements {
    fn new(table: &str, cell: &[&str]) -> Self {
        let columns = columns!();
        let n = cell.len();
        let names = cell.join(", ");
        let matches = cell
            .iter()
            .zip(1..)
            .map(|(column, i)| format!("{column} = ${i}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        let all = (1..=n + 4)
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let (value, description, category, data_type, versions) =
            (n + 1, n + 2, n + 3, n + 4, n + 5);
        let typed = format!(
            "(${value}::jsonb, ${description}::text, ${category}::text, ${data_type}::text)"
        );
        let fields = "(value, description, category, data_type)";
        Self {
            get: format!("SELECT {columns} FROM {table} WHERE {matches}"),
            upsert: format!(
                "WITH drawn AS (SELECT {NEXT_VERSION} AS version) \
                 INSERT INTO {table} AS s ({names}, value, description, category, data_type, version) \
                 VALUES ({all}, (SELECT version FROM drawn)) \
                 ON CONFLICT ({names}) DO UPDATE SET \
                 value = EXCLUDED.value, description = EXCLUDED.description, \
                 category = EXCLUDED.category, data_type = EXCLUDED.data_type, \
                 version = {NEXT_VERSION}, updated_at = now() \
                 WHERE (s.value, s.description, s.category, s.data_type) IS DISTINCT FROM \
                 (EXCLUDED.value, EXCLUDED.description, EXCLUDED.category, EXCLUDED.data_type) \
                 RETURNING {columns}, s.version = (SELECT version FROM drawn) AS created"
            ),
            insert_absent: format!(
                "INSERT INTO {table} ({names}, value, description, category, data_type) \
                 VALUES ({all}) ON CONFLICT ({names}) DO NOTHING RETURNING {columns}"
            ),
            update_version: format!(
                "UPDATE {table} SET \
                 value = ${value}::jsonb, description = ${description}::text, \
                 category = ${category}::text, data_type = ${data_type}::text, \
                 version = {NEXT_VERSION}, updated_at = now() \
                 WHERE {matches} AND (${versions}::bigint[] IS NULL OR version = ANY(${versions})) \
                 AND {fields} IS DISTINCT FROM {typed} RETURNING {columns}"
            ),
            current_vs_write: format!(
                "SELECT {columns}, {fields} IS NOT DISTINCT FROM {typed} AS unchanged \
                 FROM {table} WHERE {matches}"
            ),
            version_of: format!("SELECT version FROM {table} WHERE {matches}"),
            delete: format!("DELETE FROM {table} WHERE {matches} RETURNING version"),
            delete_version: format!(
                "DELETE FROM {table} WHERE {matches} AND version = ANY(${}) RETURNING version",
                n + 1
            ),
        }
    }
}

/// The user's own settings: a row is `(user_id, key)`.
static USER_ROWS: LazyLock<RowStatements> =
    LazyLock::new(|| RowStatements::new("shared.user_settings", &["user_id", "key"]));

/// The devices' overrides: a row is `(user_id, device_id, key)`.
static DEVICE_ROWS: LazyLock<RowStatements> = LazyLock::new(|| {
    RowStatements::new(
        "shared.user_device_settings",
        &["user_id", "device_id", "key"],
    )
});

/// Whose rows a statement addresses: the user's own settings, or one of their devices'
/// overrides. Its rows are in the table it names.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Owner<'a> {
    user: uuid::Uuid,
    device: Option<&'a str>,
}

impl<'a> Owner<'a> {
    /// The user's own settings.
    pub(crate) fn user(user: UserId) -> Self {
        Self {
            user: user.as_uuid(),
            device: None,
        }
    }

    /// One device's overrides.
    pub(crate) fn device(user: UserId, device: &'a DeviceId) -> Self {
        Self {
            user: user.as_uuid(),
            device: Some(device.as_str()),
        }
    }

    fn user_id(self) -> UserId {
        UserId::new(self.user)
    }

    fn statements(self) -> &'static RowStatements {
        match self.device {
            None => &USER_ROWS,
            Some(_) => &DEVICE_ROWS,
        }
    }
}

/// The parameters that name one row: the user, the device (for a device's row), the key.
#[derive(Clone, Copy, Debug)]
struct Cell<'a> {
    owner: Owner<'a>,
    key: &'a str,
}

impl Cell<'_> {
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&self.owner.user];
        if let Some(device) = &self.owner.device {
            params.push(device);
        }
        params.push(&self.key);
        params
    }
}

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

    /// The devices' overrides of these settings: the same pool, provisioning and operation
    /// timeout (a device's write counts against the same quotas, under the same lock).
    pub fn devices(&self) -> PgDeviceSettingsRepository {
        PgDeviceSettingsRepository {
            pool: self.pool.clone(),
            provisioning: self.provisioning,
            operation_timeout: self.operation_timeout,
        }
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
        let mut named = ChangeOrigin::User;
        for write in writes {
            if write.origin != named {
                name_origin(&tx, write.origin).await?;
                named = write.origin;
            }
            outcomes.push(upsert(&tx, Owner::user(user), write).await?);
        }
        check_quota(&tx, user, before, quota).await?;
        // Any error above returned early: the transaction guard rolls back on drop.
        tx.commit().await.pg()?;
        Ok(outcomes)
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
            Ok(get_row(&self.pool, Owner::user(user), key).await?)
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
            upsert_row(
                &self.pool,
                self.provisioning,
                Owner::user(user),
                write,
                expected,
                quota,
            ),
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
        origin: ChangeOrigin,
    ) -> Result<(), SettingDeleteError> {
        within(
            self.operation_timeout,
            delete_row(&self.pool, Owner::user(user), key, expected, origin),
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

/// One write of `owner`'s row of `write.key` under `expected`, in a transaction of its own
/// that holds the user's lock, kept within `quota` (see the module's documentation).
pub(crate) async fn upsert_row(
    pool: &Pool,
    provisioning: Provisioning,
    owner: Owner<'_>,
    write: &SettingWrite,
    expected: Precondition,
    quota: UserQuota,
) -> Result<UpsertOutcome, SettingWriteError> {
    let user = owner.user_id();
    let common = owner.device.is_none()
        && matches!(expected, Precondition::Any)
        && write.origin == ChangeOrigin::User;
    if common && let Some(outcome) = put_user_setting(pool, owner, write, quota).await? {
        return Ok(outcome);
    }
    let mut client = pool.get().await.pg()?;
    let tx = client.transaction().await.pg()?;
    // Statements sent together travel in one round trip and run in the order sent, which is
    // the order `biased` polls them in, provided each is sent on its first poll: so every
    // statement below is prepared (once per connection, then cached) before the batches.
    let lock = tx.prepare_cached(LOCK_USER).await.pg()?;
    let figures = tx.prepare_cached(USAGE).await.pg()?;
    tx.prepare_cached(first_write_statement(owner, &expected))
        .await
        .pg()?;
    let id = user.as_uuid();
    // The lock, then the figures under it.
    let (locked, before) = tokio::try_join!(
        biased;
        async { Ok::<_, SettingWriteError>(tx.query_opt(&lock, &[&id]).await.pg()?) },
        async { usage_row(tx.query_one(&figures, &[&id]).await.pg()?) },
    )?;
    let before = match locked {
        Some(_) => before,
        // No user row yet: create it when provisioning allows (the rare path), then read the
        // figures again under its lock.
        None if lock_user(&tx, user, provisioning).await? => usage(&tx, user).await?,
        // Without a user there is no row to match a version either.
        None => {
            return Err(match expected {
                Precondition::Version(_) | Precondition::VersionIn(_) | Precondition::Exists => {
                    SettingWriteError::VersionConflict { current: None }
                }
                Precondition::Any | Precondition::Absent => SettingWriteError::UserNotFound,
            });
        }
    };
    name_origin(&tx, write.origin).await?;
    // The write (its one writing statement goes first), then the figures after it.
    let (outcome, after) = tokio::try_join!(
        biased;
        write_row(&tx, owner, write, expected),
        async { usage_row(tx.query_one(&figures, &[&id]).await.pg()?) },
    )?;
    quota_exceeded(before, after, quota)?;
    tx.commit().await.pg()?;
    Ok(outcome)
}

/// The user's own write without a precondition, in one statement (`shared.put_user_setting`):
/// the same lock, versions, quota and triggers as [`upsert_row`]'s transaction. `None` when
/// the user has no row yet: the caller's transaction provisions it (or reports it absent).
async fn put_user_setting(
    pool: &Pool,
    owner: Owner<'_>,
    write: &SettingWrite,
    quota: UserQuota,
) -> Result<Option<UpsertOutcome>, SettingWriteError> {
    let client = pool.get().await.pg()?;
    let statement = client.prepare_cached(PUT_USER_SETTING).await.pg()?;
    let write_params = WriteParams::new(owner, write);
    let (max_settings, max_devices) = (i64::from(quota.max_settings), i64::from(quota.max_devices));
    let max_bytes = i64::try_from(quota.max_bytes).unwrap_or(i64::MAX);
    let mut params = write_params.as_params();
    params.extend([
        &max_settings as &(dyn ToSql + Sync),
        &max_bytes,
        &max_devices,
    ]);
    let row = match client.query_one(&statement, &params).await {
        Ok(row) => row,
        Err(e) => return Err(quota_raised(&e, quota).unwrap_or_else(|| PgError::from(e).into())),
    };
    if !row.try_get::<_, bool>("user_found").pg()? {
        return Ok(None);
    }
    if row.try_get::<_, Option<&str>>("key").pg()?.is_none() {
        // Unchanged, and deleted meanwhile by a writer that does not lock the user.
        return Err(SettingWriteError::VersionConflict { current: None });
    }
    Ok(Some(UpsertOutcome {
        setting: setting_from_row(owner.user_id(), &row)?,
        created: row.try_get("created").pg()?,
    }))
}

/// The quota `shared.put_user_setting` reported exceeded, if `e` is that report.
fn quota_raised(e: &tokio_postgres::Error, quota: UserQuota) -> Option<SettingWriteError> {
    let db = e
        .as_db_error()
        .filter(|db| db.code().code() == QUOTA_EXCEEDED_STATE)?;
    let exceeded = match db.message() {
        "settings" => QuotaExceeded::Settings {
            limit: quota.max_settings,
        },
        "bytes" => QuotaExceeded::Bytes {
            limit: quota.max_bytes,
        },
        "devices" => QuotaExceeded::Devices {
            limit: quota.max_devices,
        },
        _ => return None,
    };
    Some(SettingWriteError::QuotaExceeded(exceeded))
}

/// The statement `write_row` sends first for `expected`: its only writing one (what follows
/// it only reads).
fn first_write_statement<'s>(owner: Owner<'s>, expected: &Precondition) -> &'s str {
    let statements = owner.statements();
    match expected {
        Precondition::Version(_) | Precondition::VersionIn(_) | Precondition::Exists => {
            &statements.update_version
        }
        Precondition::Absent => &statements.insert_absent,
        Precondition::Any => &statements.upsert,
    }
}

/// Writes `owner`'s row of `write.key` under `expected`, in the caller's transaction (which
/// holds the user's lock and checks the quota).
pub(crate) async fn write_row(
    tx: &Transaction<'_>,
    owner: Owner<'_>,
    write: &SettingWrite,
    expected: Precondition,
) -> Result<UpsertOutcome, SettingWriteError> {
    match expected {
        Precondition::Version(version) => update_version(tx, owner, write, Some(&[version])).await,
        Precondition::VersionIn(versions) => {
            update_version(tx, owner, write, Some(&versions)).await
        }
        Precondition::Exists => update_version(tx, owner, write, None).await,
        Precondition::Absent => insert_absent(tx, owner, write).await,
        Precondition::Any => upsert(tx, owner, write).await,
    }
}

/// Deletes `owner`'s row of `key` if `expected` holds; its history names `origin`. Deletes
/// only lower the quota's figures: no user lock.
pub(crate) async fn delete_row(
    pool: &Pool,
    owner: Owner<'_>,
    key: &SettingKey,
    expected: Precondition,
    origin: ChangeOrigin,
) -> Result<(), SettingDeleteError> {
    let mut client = pool.get().await.pg()?;
    if origin != ChangeOrigin::User {
        // The origin is named for a transaction: one of its own (rare: an integration's).
        let tx = client.transaction().await.pg()?;
        name_origin(&tx, origin).await?;
        let result = delete_in(&tx, owner, key, expected).await;
        if result.is_ok() {
            tx.commit().await.pg()?;
        }
        return result;
    }
    delete_in(&client, owner, key, expected).await
}

/// Deletes `owner`'s row of `key` if `expected` holds, on `client` (a connection, or the
/// caller's transaction).
pub(crate) async fn delete_in(
    client: &impl deadpool_postgres::GenericClient,
    owner: Owner<'_>,
    key: &SettingKey,
    expected: Precondition,
) -> Result<(), SettingDeleteError> {
    let statements = owner.statements();
    let cell = Cell {
        owner,
        key: key.as_str(),
    };
    let params = cell.params();
    let deleted = match expected {
        // The statement deletes only a row that exists; an absent one is reported below.
        Precondition::Any | Precondition::Exists => {
            let statement = client.prepare_cached(&statements.delete).await.pg()?;
            client.query_opt(&statement, &params).await.pg()?
        }
        Precondition::Version(version) => delete_version(client, cell, &[version]).await?,
        Precondition::VersionIn(versions) => delete_version(client, cell, &versions).await?,
        // "Only if absent" cannot delete anything: report what is there.
        Precondition::Absent => None,
    };
    if deleted.is_some() {
        return Ok(());
    }
    let statement = client.prepare_cached(&statements.version_of).await.pg()?;
    match client.query_opt(&statement, &params).await.pg()? {
        None => Err(SettingDeleteError::NotFound),
        Some(row) => Err(SettingDeleteError::VersionConflict {
            current: row.try_get("version").pg()?,
        }),
    }
}

/// `owner`'s row of `key`, if stored.
pub(crate) async fn get_row(
    pool: &Pool,
    owner: Owner<'_>,
    key: &SettingKey,
) -> Result<Option<Setting>, PgError> {
    let client = pool.get().await?;
    let statement = client.prepare_cached(&owner.statements().get).await?;
    let cell = Cell {
        owner,
        key: key.as_str(),
    };
    client
        .query_opt(&statement, &cell.params())
        .await?
        .map(|row| setting_from_row(owner.user_id(), &row))
        .transpose()
}

/// The parameters of a write: the row's name, then the value, description, category and
/// data type.
struct WriteParams<'a> {
    cell: Cell<'a>,
    /// The JSON stored: the value itself, or the members of a secret's envelope.
    value: Cow<'a, serde_json::Value>,
    description: Option<&'a str>,
    category: Option<&'a str>,
    data_type: &'static str,
}

impl<'a> WriteParams<'a> {
    fn new(owner: Owner<'a>, write: &'a SettingWrite) -> Self {
        Self {
            cell: Cell {
                owner,
                key: write.key.as_str(),
            },
            value: match &write.value {
                StoredValue::Plain(value) => Cow::Borrowed(value),
                StoredValue::Sealed(envelope) => Cow::Owned(envelope.to_value()),
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

    fn as_params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params = self.cell.params();
        params.extend([
            self.value.as_ref() as &(dyn ToSql + Sync),
            &self.description,
            &self.category,
            &self.data_type,
        ]);
        params
    }
}

async fn upsert(
    tx: &Transaction<'_>,
    owner: Owner<'_>,
    write: &SettingWrite,
) -> Result<UpsertOutcome, SettingWriteError> {
    let statements = owner.statements();
    let params = WriteParams::new(owner, write);
    let statement = tx.prepare_cached(&statements.upsert).await.pg()?;
    if let Some(row) = tx.query_opt(&statement, &params.as_params()).await.pg()? {
        let setting = setting_from_row(owner.user_id(), &row)?;
        let created = row.try_get("created").pg()?;
        return Ok(UpsertOutcome { setting, created });
    }
    // Nothing differed, so nothing was written: report the row as it is.
    let statement = tx.prepare_cached(&statements.get).await.pg()?;
    match tx.query_opt(&statement, &params.cell.params()).await.pg()? {
        Some(row) => Ok(UpsertOutcome {
            setting: setting_from_row(owner.user_id(), &row)?,
            created: false,
        }),
        // Deleted between the two statements by a writer that does not lock the user.
        None => Err(SettingWriteError::VersionConflict { current: None }),
    }
}

async fn insert_absent(
    tx: &Transaction<'_>,
    owner: Owner<'_>,
    write: &SettingWrite,
) -> Result<UpsertOutcome, SettingWriteError> {
    let statements = owner.statements();
    let params = WriteParams::new(owner, write);
    let statement = tx.prepare_cached(&statements.insert_absent).await.pg()?;
    if let Some(row) = tx.query_opt(&statement, &params.as_params()).await.pg()? {
        return Ok(UpsertOutcome {
            setting: setting_from_row(owner.user_id(), &row)?,
            created: true,
        });
    }
    let statement = tx.prepare_cached(&statements.version_of).await.pg()?;
    let current = tx
        .query_opt(&statement, &params.cell.params())
        .await
        .pg()?
        .map(|row| row.try_get::<_, i64>("version"))
        .transpose()
        .pg()?;
    Err(SettingWriteError::VersionConflict { current })
}

/// Deletes the row if it is at one of the `expected` versions.
async fn delete_version(
    client: &impl deadpool_postgres::GenericClient,
    cell: Cell<'_>,
    expected: &[i64],
) -> Result<Option<Row>, SettingDeleteError> {
    let statement = client
        .prepare_cached(&cell.owner.statements().delete_version)
        .await
        .pg()?;
    let mut params = cell.params();
    params.push(&expected);
    Ok(client.query_opt(&statement, &params).await.pg()?)
}

/// Updates the row if it is at one of the `expected` versions, or at any version for `None`.
async fn update_version(
    tx: &Transaction<'_>,
    owner: Owner<'_>,
    write: &SettingWrite,
    expected: Option<&[i64]>,
) -> Result<UpsertOutcome, SettingWriteError> {
    let statements = owner.statements();
    let params = WriteParams::new(owner, write);
    let mut with_versions = params.as_params();
    with_versions.push(&expected);
    let statement = tx.prepare_cached(&statements.update_version).await.pg()?;
    if let Some(row) = tx.query_opt(&statement, &with_versions).await.pg()? {
        return Ok(UpsertOutcome {
            setting: setting_from_row(owner.user_id(), &row)?,
            created: false,
        });
    }
    let statement = tx.prepare_cached(&statements.current_vs_write).await.pg()?;
    let Some(row) = tx.query_opt(&statement, &params.as_params()).await.pg()? else {
        return Err(SettingWriteError::VersionConflict { current: None });
    };
    let current: i64 = row.try_get("version").pg()?;
    let unchanged: bool = row.try_get("unchanged").pg()?;
    if expected.is_none_or(|versions| versions.contains(&current)) && unchanged {
        return Ok(UpsertOutcome {
            setting: setting_from_row(owner.user_id(), &row)?,
            created: false,
        });
    }
    Err(SettingWriteError::VersionConflict {
        current: Some(current),
    })
}

/// What the user holds, as this transaction sees them: settings and bytes of values (their
/// own and their devices'), and devices that hold overrides.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Usage {
    settings: i64,
    bytes: i64,
    devices: i64,
}

pub(crate) async fn usage(tx: &Transaction<'_>, user: UserId) -> Result<Usage, SettingWriteError> {
    let statement = tx.prepare_cached(USAGE).await.pg()?;
    usage_row(tx.query_one(&statement, &[&user.as_uuid()]).await.pg()?)
}

fn usage_row(row: Row) -> Result<Usage, SettingWriteError> {
    Ok(Usage {
        settings: row.try_get(0).pg()?,
        bytes: row.try_get(1).pg()?,
        devices: row.try_get(2).pg()?,
    })
}

/// Fails when the writes since `before` raised a figure above its quota; the caller's
/// transaction is then dropped, which rolls them back. A figure already over a lowered
/// quota that the writes did not raise is let be.
pub(crate) async fn check_quota(
    tx: &Transaction<'_>,
    user: UserId,
    before: Usage,
    quota: UserQuota,
) -> Result<(), SettingWriteError> {
    quota_exceeded(before, usage(tx, user).await?, quota)
}

/// Whether going from `before` to `after` raised a figure above its quota.
fn quota_exceeded(before: Usage, after: Usage, quota: UserQuota) -> Result<(), SettingWriteError> {
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
    // Only a device's first override raises this one.
    if after.devices > i64::from(quota.max_devices) && after.devices > before.devices {
        return Err(SettingWriteError::QuotaExceeded(QuotaExceeded::Devices {
            limit: quota.max_devices,
        }));
    }
    Ok(())
}

pub(crate) fn setting_from_row(user: UserId, row: &Row) -> Result<Setting, PgError> {
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
