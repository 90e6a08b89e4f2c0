//! `PgPreferencesRepository`: the preferences port on `shared.user_preferences`, the user
//! layer: a column is NULL where the user did not choose (the field inherits, V9).
//!
//! Full-row writes with the expected version in the statement, as for settings
//! (`settings_repo`): `Version(0)` and `Absent` insert only when no row exists, `Version(n)`
//! updates only version `n`, `Any` upserts. A write equal to the stored row writes nothing.
//!
//! Versions come from `shared.user_preferences_version_seq` (migration V4): a row created
//! again after its user was deleted never reuses a version of the old row. Stored versions
//! are >= 1; version 0 stays "no row" (the defaults).

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use domain::{
    RepositoryError, UserId,
    history::ChangeOrigin,
    ports::{PreferencesRepository, PreferencesWriteError},
    preferences::{PreferenceOverrides, StoredPreferences},
    settings::Precondition,
};
use serde_json::{Map, Value};
use tokio_postgres::{Row, types::ToSql};

use crate::{
    Pool,
    deadline::{DEFAULT_OPERATION_TIMEOUT, within},
    errors::{PgError, PgResultExt},
    history_repo::name_origin,
    provisioning::{Provisioning, ensure_user},
};

/// The twelve preference columns, in the order of the parameters `$2..$13`.
macro_rules! fields {
    () => {
        "email_notifications, push_notifications, digest_notifications, profile_visibility, \
         show_email, show_activity, theme, display_language, content_language, \
         show_adult_content, show_spoilers, auto_play_videos"
    };
}

/// `$2..$13` typed as their columns, for row comparisons.
macro_rules! typed_params {
    () => {
        "($2::jsonb, $3::jsonb, $4::jsonb, $5::text, $6::boolean, $7::boolean, $8::text, \
         $9::text, $10::text, $11::boolean, $12::boolean, $13::boolean)"
    };
}

macro_rules! columns {
    () => {
        concat!(fields!(), ", version, created_at, updated_at")
    };
}

const GET: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM shared.user_preferences WHERE user_id = $1"
);

const INSERT_ABSENT: &str = concat!(
    "INSERT INTO shared.user_preferences (user_id, ",
    fields!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ",
    "ON CONFLICT (user_id) DO NOTHING RETURNING ",
    columns!()
);

const UPSERT: &str = concat!(
    "INSERT INTO shared.user_preferences AS p (user_id, ",
    fields!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ",
    "ON CONFLICT (user_id) DO UPDATE SET ",
    "email_notifications = EXCLUDED.email_notifications, ",
    "push_notifications = EXCLUDED.push_notifications, ",
    "digest_notifications = EXCLUDED.digest_notifications, ",
    "profile_visibility = EXCLUDED.profile_visibility, show_email = EXCLUDED.show_email, ",
    "show_activity = EXCLUDED.show_activity, theme = EXCLUDED.theme, ",
    "display_language = EXCLUDED.display_language, ",
    "content_language = EXCLUDED.content_language, ",
    "show_adult_content = EXCLUDED.show_adult_content, ",
    "show_spoilers = EXCLUDED.show_spoilers, auto_play_videos = EXCLUDED.auto_play_videos, ",
    "version = nextval('shared.user_preferences_version_seq'), updated_at = now() ",
    "WHERE (p.email_notifications, p.push_notifications, p.digest_notifications, ",
    "p.profile_visibility, p.show_email, p.show_activity, p.theme, p.display_language, ",
    "p.content_language, p.show_adult_content, p.show_spoilers, p.auto_play_videos) ",
    "IS DISTINCT FROM (EXCLUDED.email_notifications, EXCLUDED.push_notifications, ",
    "EXCLUDED.digest_notifications, EXCLUDED.profile_visibility, EXCLUDED.show_email, ",
    "EXCLUDED.show_activity, EXCLUDED.theme, EXCLUDED.display_language, ",
    "EXCLUDED.content_language, EXCLUDED.show_adult_content, EXCLUDED.show_spoilers, ",
    "EXCLUDED.auto_play_videos) ",
    "RETURNING ",
    columns!()
);

/// Updates the row if it is at one of the versions `$14`, or at any version when `$14` is
/// null ("must exist").
const UPDATE_VERSION: &str = concat!(
    "UPDATE shared.user_preferences SET (",
    fields!(),
    ") = ",
    typed_params!(),
    ", version = nextval('shared.user_preferences_version_seq'), updated_at = now() ",
    "WHERE user_id = $1 AND ($14::bigint[] IS NULL OR version = ANY($14)) AND (",
    fields!(),
    ") IS DISTINCT FROM ",
    typed_params!(),
    " RETURNING ",
    columns!()
);

/// The stored row, and whether it already holds exactly what `$2..$13` would write.
const CURRENT_VS_WRITE: &str = concat!(
    "SELECT ",
    columns!(),
    ", (",
    fields!(),
    ") IS NOT DISTINCT FROM ",
    typed_params!(),
    " AS unchanged FROM shared.user_preferences WHERE user_id = $1"
);

const VERSION_OF: &str = "SELECT version FROM shared.user_preferences WHERE user_id = $1";

/// The preferences store on PostgreSQL. Cheap to clone (shares the pool).
#[derive(Clone, Debug)]
pub struct PgPreferencesRepository {
    pool: Pool,
    provisioning: Provisioning,
    operation_timeout: Duration,
}

impl PgPreferencesRepository {
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

    async fn get_inner(&self, user: UserId) -> Result<Option<StoredPreferences>, PgError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(GET).await?;
        client
            .query_opt(&statement, &[&user.as_uuid()])
            .await?
            .map(|row| stored_from_row(user, &row))
            .transpose()
    }

    async fn upsert_inner(
        &self,
        user: UserId,
        overrides: &PreferenceOverrides,
        expected: Precondition,
        origin: ChangeOrigin,
    ) -> Result<StoredPreferences, PreferencesWriteError> {
        let mut client = self.pool.get().await.pg()?;
        let tx = client.transaction().await.pg()?;
        name_origin(&tx, origin).await?;
        let stored = write_preferences(&tx, user, overrides, expected, self.provisioning).await?;
        tx.commit().await.pg()?;
        Ok(stored)
    }
}

#[async_trait]
impl PreferencesRepository for PgPreferencesRepository {
    async fn get(&self, user: UserId) -> Result<Option<StoredPreferences>, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.get_inner(user).await?)
        })
        .await
    }

    async fn upsert(
        &self,
        user: UserId,
        overrides: &PreferenceOverrides,
        expected: Precondition,
        origin: ChangeOrigin,
    ) -> Result<StoredPreferences, PreferencesWriteError> {
        within(
            self.operation_timeout,
            self.upsert_inner(user, overrides, expected, origin),
        )
        .await
    }
}

/// Writes the user layer under `expected` in the caller's transaction.
pub(crate) async fn write_preferences(
    tx: &Transaction<'_>,
    user: UserId,
    overrides: &PreferenceOverrides,
    expected: Precondition,
    provisioning: Provisioning,
) -> Result<StoredPreferences, PreferencesWriteError> {
    let params = WriteParams::new(user, overrides);
    match expected {
        Precondition::Absent | Precondition::Version(0) => {
            ensure_user(tx, user, provisioning).await?;
            insert_absent(tx, user, &params).await
        }
        Precondition::Version(version) => update_version(tx, user, &params, Some(&[version])).await,
        // Matches stored rows only: a listed 0 (the defaults) does not create one.
        Precondition::VersionIn(versions) => {
            update_version(tx, user, &params, Some(&versions)).await
        }
        // A stored row, at whatever version: the defaults alone do not count.
        Precondition::Exists => update_version(tx, user, &params, None).await,
        Precondition::Any => {
            ensure_user(tx, user, provisioning).await?;
            upsert(tx, user, &params).await
        }
    }
}

/// The parameters `$1..$13` of a write: NULL for a field the user layer does not set.
struct WriteParams {
    user: uuid::Uuid,
    email_notifications: Option<Value>,
    push_notifications: Option<Value>,
    digest_notifications: Option<Value>,
    profile_visibility: Option<String>,
    show_email: Option<bool>,
    show_activity: Option<bool>,
    theme: Option<String>,
    display_language: Option<String>,
    content_language: Option<String>,
    show_adult_content: Option<bool>,
    show_spoilers: Option<bool>,
    auto_play_videos: Option<bool>,
}

impl WriteParams {
    /// The columns from the layer's document: each set member, typed as its column.
    fn new(user: UserId, overrides: &PreferenceOverrides) -> Self {
        let document = overrides.to_document();
        let member = |name: &str| document.get(name).cloned();
        let text = |name: &str| {
            document
                .get(name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let flag = |name: &str| document.get(name).and_then(Value::as_bool);
        Self {
            user: user.as_uuid(),
            email_notifications: member("email_notifications"),
            push_notifications: member("push_notifications"),
            digest_notifications: member("digest_notifications"),
            profile_visibility: text("profile_visibility"),
            show_email: flag("show_email"),
            show_activity: flag("show_activity"),
            theme: text("theme"),
            display_language: text("display_language"),
            content_language: text("content_language"),
            show_adult_content: flag("show_adult_content"),
            show_spoilers: flag("show_spoilers"),
            auto_play_videos: flag("auto_play_videos"),
        }
    }

    fn as_params(&self) -> [&(dyn ToSql + Sync); 13] {
        [
            &self.user,
            &self.email_notifications,
            &self.push_notifications,
            &self.digest_notifications,
            &self.profile_visibility,
            &self.show_email,
            &self.show_activity,
            &self.theme,
            &self.display_language,
            &self.content_language,
            &self.show_adult_content,
            &self.show_spoilers,
            &self.auto_play_videos,
        ]
    }
}

async fn insert_absent(
    tx: &Transaction<'_>,
    user: UserId,
    params: &WriteParams,
) -> Result<StoredPreferences, PreferencesWriteError> {
    let statement = tx.prepare_cached(INSERT_ABSENT).await.pg()?;
    if let Some(row) = tx.query_opt(&statement, &params.as_params()).await.pg()? {
        return Ok(stored_from_row(user, &row)?);
    }
    let statement = tx.prepare_cached(VERSION_OF).await.pg()?;
    let current = match tx.query_opt(&statement, &[&params.user]).await.pg()? {
        Some(row) => row.try_get("version").pg()?,
        None => 0,
    };
    Err(PreferencesWriteError::VersionConflict { current })
}

async fn upsert(
    tx: &Transaction<'_>,
    user: UserId,
    params: &WriteParams,
) -> Result<StoredPreferences, PreferencesWriteError> {
    let statement = tx.prepare_cached(UPSERT).await.pg()?;
    if let Some(row) = tx.query_opt(&statement, &params.as_params()).await.pg()? {
        return Ok(stored_from_row(user, &row)?);
    }
    // Nothing differed, so nothing was written: report the row as it is.
    let statement = tx.prepare_cached(GET).await.pg()?;
    match tx.query_opt(&statement, &[&params.user]).await.pg()? {
        Some(row) => Ok(stored_from_row(user, &row)?),
        None => Err(PreferencesWriteError::VersionConflict { current: 0 }),
    }
}

async fn update_version(
    tx: &Transaction<'_>,
    user: UserId,
    params: &WriteParams,
    expected: Option<&[i64]>,
) -> Result<StoredPreferences, PreferencesWriteError> {
    let mut with_version: Vec<&(dyn ToSql + Sync)> = params.as_params().to_vec();
    with_version.push(&expected);
    let statement = tx.prepare_cached(UPDATE_VERSION).await.pg()?;
    if let Some(row) = tx.query_opt(&statement, &with_version).await.pg()? {
        return Ok(stored_from_row(user, &row)?);
    }
    let statement = tx.prepare_cached(CURRENT_VS_WRITE).await.pg()?;
    let Some(row) = tx.query_opt(&statement, &params.as_params()).await.pg()? else {
        return Err(PreferencesWriteError::VersionConflict { current: 0 });
    };
    let current: i64 = row.try_get("version").pg()?;
    let unchanged: bool = row.try_get("unchanged").pg()?;
    if expected.is_none_or(|versions| versions.contains(&current)) && unchanged {
        return Ok(stored_from_row(user, &row)?);
    }
    Err(PreferencesWriteError::VersionConflict { current })
}

/// Rebuilds the validated user layer from a row through the domain's document parser, so a
/// row written by another program is checked like client input. NULL columns inherit.
fn stored_from_row(user: UserId, row: &Row) -> Result<StoredPreferences, PgError> {
    let mut document = Map::new();
    for name in [
        "email_notifications",
        "push_notifications",
        "digest_notifications",
    ] {
        let value: Option<Value> = row.try_get(name)?;
        document.insert(name.to_owned(), value.unwrap_or(Value::Null));
    }
    for name in [
        "profile_visibility",
        "theme",
        "display_language",
        "content_language",
    ] {
        let value: Option<String> = row.try_get(name)?;
        document.insert(name.to_owned(), value.map_or(Value::Null, Value::String));
    }
    for name in [
        "show_email",
        "show_activity",
        "show_adult_content",
        "show_spoilers",
        "auto_play_videos",
    ] {
        let value: Option<bool> = row.try_get(name)?;
        document.insert(name.to_owned(), value.map_or(Value::Null, Value::Bool));
    }
    let overrides =
        PreferenceOverrides::from_document(&Value::Object(document)).map_err(|errors| {
            // Field names and codes only: the values stay out of logs.
            let fields: Vec<String> = errors
                .errors()
                .iter()
                .map(|e| format!("{} ({})", e.field, e.code))
                .collect();
            PgError::Corrupt(format!("stored preferences: {}", fields.join(", ")))
        })?;
    Ok(StoredPreferences {
        user_id: user,
        overrides,
        version: row.try_get("version")?,
        created_at: Some(row.try_get("created_at")?),
        updated_at: Some(row.try_get("updated_at")?),
    })
}
