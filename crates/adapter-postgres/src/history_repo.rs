//! `PgHistoryRepository`: the kept history of changes (`shared.user_settings_history`,
//! `shared.deployment_history`, migration V11), and its retention.
//!
//! The rows are written by triggers in the transaction of each change; this module reads
//! them, names the origin of a write for those triggers ([`name_origin`]), and prunes.
//!
//! Pruning runs in small batches, each its own short transaction, so it never holds locks for
//! long: per batch, the rows of at most [`PRUNE_USERS_PER_BATCH`] users beyond the versions
//! kept, then at most [`PRUNE_ROWS_PER_BATCH`] rows older than the maximum age.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::Transaction;
use domain::{
    RepositoryError, UserId,
    devices::DeviceId,
    events::{ChangeLog, ChangeNotice, NoticeScope, NoticeStore, Replay},
    history::{
        ChangeActor, ChangeOp, ChangeOrigin, HistoryEntry, HistoryTarget, Pruned, Retention,
    },
    ports::HistoryRepository,
    settings::{Category, DataType, Description},
};
use tokio_postgres::Row;

use crate::{
    Pool,
    deadline::{DEFAULT_OPERATION_TIMEOUT, within},
    errors::PgError,
};

/// The users whose history one batch trims to the versions kept.
pub const PRUNE_USERS_PER_BATCH: i64 = 200;
/// The rows one batch removes for their age.
pub const PRUNE_ROWS_PER_BATCH: i64 = 5_000;

macro_rules! columns {
    () => {
        "version, op, actor, value, data_type, category, description, changed_at"
    };
}

/// Served by `idx_user_settings_history_cell`, newest first. `$4`: before this version
/// (NULL: from the newest).
const HISTORY: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM shared.user_settings_history \
     WHERE user_id = $1 AND store = $2 AND device_id = $3 AND key = $4 \
     AND ($5::bigint IS NULL OR version < $5) \
     ORDER BY position DESC LIMIT $6"
);

const ENTRY: &str = concat!(
    "SELECT ",
    columns!(),
    " FROM shared.user_settings_history \
     WHERE user_id = $1 AND store = $2 AND device_id = $3 AND key = $4 AND version = $5"
);

/// Whether the change at `$2` is still kept: then every later change a stream announces is
/// too (age pruning removes the oldest first; per-key pruning only superseded versions).
const POSITION_KEPT: &str = "SELECT EXISTS (SELECT 1 FROM shared.user_settings_history \
     WHERE user_id = $1 AND position = $2) \
     OR EXISTS (SELECT 1 FROM shared.deployment_history WHERE position = $2)";

/// A stream's changes after `$2`: the user's own layer, the device `$3` (`''`: none), the
/// deployment; by the primary keys.
const SINCE: &str = "SELECT position, user_id, store, device_id, key, op, version, changed_at \
     FROM (SELECT position, user_id, store, device_id, key, op, version, changed_at \
           FROM shared.user_settings_history \
           WHERE user_id = $1 AND position > $2 AND (device_id = '' OR device_id = $3) \
           UNION ALL \
           SELECT position, NULL::uuid, 'defaults', '', key, op, version, changed_at \
           FROM shared.deployment_history WHERE position > $2) AS changes \
     ORDER BY position LIMIT $4";

const NAME_ORIGIN: &str = "SELECT set_config('user_settings.change_actor', $1, true), \
     set_config('user_settings.change_op', $2, true)";

/// The next users (after `$1`) that have history, in key order: a walk over the users'
/// primary key, so each batch is a bounded range.
const NEXT_USERS: &str = "SELECT id FROM shared.users WHERE id > $1 ORDER BY id LIMIT $2";

/// Of the users in `[$1, $2]`, every row beyond the newest `$3` of its cell.
const PRUNE_BEYOND_VERSIONS: &str = "DELETE FROM shared.user_settings_history h \
     USING (SELECT user_id, position FROM ( \
              SELECT user_id, position, row_number() OVER ( \
                  PARTITION BY user_id, store, device_id, key ORDER BY position DESC) AS newer \
              FROM shared.user_settings_history WHERE user_id BETWEEN $1 AND $2) ranked \
            WHERE newer > $3) old \
     WHERE h.user_id = old.user_id AND h.position = old.position";

const PRUNE_DEPLOYMENT_BEYOND_VERSIONS: &str = "DELETE FROM shared.deployment_history h \
     USING (SELECT position FROM ( \
              SELECT position, row_number() OVER ( \
                  PARTITION BY store, key ORDER BY position DESC) AS newer \
              FROM shared.deployment_history) ranked \
            WHERE newer > $1) old \
     WHERE h.position = old.position";

const PRUNE_TOO_OLD: &str = "DELETE FROM shared.user_settings_history \
     WHERE ctid = ANY(ARRAY(SELECT ctid FROM shared.user_settings_history \
                            WHERE changed_at < now() - make_interval(secs => $1) LIMIT $2))";

const PRUNE_DEPLOYMENT_TOO_OLD: &str = "DELETE FROM shared.deployment_history \
     WHERE changed_at < now() - make_interval(secs => $1)";

/// Names who makes the writes of `tx` and why, for the history triggers (migration V11). The
/// user's own writes need nothing: they are the triggers' default.
pub(crate) async fn name_origin(tx: &Transaction<'_>, origin: ChangeOrigin) -> Result<(), PgError> {
    if origin == ChangeOrigin::User {
        return Ok(());
    }
    let op = origin.op().map_or("", ChangeOp::as_str);
    let statement = tx.prepare_cached(NAME_ORIGIN).await?;
    tx.query_one(&statement, &[&origin.actor().as_str(), &op])
        .await?;
    Ok(())
}

/// The history store on PostgreSQL. Cheap to clone (shares the pool).
#[derive(Clone, Debug)]
pub struct PgHistoryRepository {
    pool: Pool,
    operation_timeout: Duration,
}

impl PgHistoryRepository {
    /// A repository on `pool`.
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

    /// One batch of pruning after user `after` (`None`: from the first): trims the next
    /// users' cells to the versions `retention` keeps, and removes rows older than its
    /// maximum age. Returns what it removed and the user to continue after (`None`: the walk
    /// reached the last user and starts over).
    ///
    /// # Errors
    /// When the store fails.
    pub async fn prune_batch(
        &self,
        retention: Retention,
        after: Option<UserId>,
    ) -> Result<(Pruned, Option<UserId>), RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.prune_batch_inner(retention, after).await?)
        })
        .await
    }

    async fn prune_batch_inner(
        &self,
        retention: Retention,
        after: Option<UserId>,
    ) -> Result<(Pruned, Option<UserId>), PgError> {
        let client = self.pool.get().await?;
        let keep = i64::from(retention.keep_versions);
        let max_age = retention.max_age.as_secs_f64();
        let start = after.map_or(uuid::Uuid::nil(), |user| user.as_uuid());
        let users = client
            .query(NEXT_USERS, &[&start, &PRUNE_USERS_PER_BATCH])
            .await?;
        let mut pruned = Pruned::default();
        let next = match (users.first(), users.last()) {
            (Some(first), Some(last)) => {
                let (first, last): (uuid::Uuid, uuid::Uuid) = (first.try_get(0)?, last.try_get(0)?);
                pruned.beyond_versions = client
                    .execute(PRUNE_BEYOND_VERSIONS, &[&first, &last, &keep])
                    .await?;
                (users.len() as i64 == PRUNE_USERS_PER_BATCH).then(|| UserId::new(last))
            }
            _ => None,
        };
        if next.is_none() {
            // Once per walk: the deployment's history is small.
            pruned.beyond_versions += client
                .execute(PRUNE_DEPLOYMENT_BEYOND_VERSIONS, &[&keep])
                .await?;
            pruned.too_old += client
                .execute(PRUNE_DEPLOYMENT_TOO_OLD, &[&max_age])
                .await?;
        }
        pruned.too_old += client
            .execute(PRUNE_TOO_OLD, &[&max_age, &PRUNE_ROWS_PER_BATCH])
            .await?;
        Ok((pruned, next))
    }

    async fn history_inner(
        &self,
        user: UserId,
        target: &HistoryTarget,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, PgError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(HISTORY).await?;
        let (store, device, key) = cell(target);
        let rows = client
            .query(
                &statement,
                &[
                    &user.as_uuid(),
                    &store,
                    &device,
                    &key,
                    &before,
                    &i64::from(limit),
                ],
            )
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn entry_inner(
        &self,
        user: UserId,
        target: &HistoryTarget,
        version: i64,
    ) -> Result<Option<HistoryEntry>, PgError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(ENTRY).await?;
        let (store, device, key) = cell(target);
        client
            .query_opt(
                &statement,
                &[&user.as_uuid(), &store, &device, &key, &version],
            )
            .await?
            .as_ref()
            .map(entry_from_row)
            .transpose()
    }
}

impl PgHistoryRepository {
    async fn since_inner(
        &self,
        user: UserId,
        device: Option<&DeviceId>,
        position: i64,
        limit: u32,
    ) -> Result<Replay, PgError> {
        let client = self.pool.get().await?;
        let kept = client.prepare_cached(POSITION_KEPT).await?;
        let kept: bool = client
            .query_one(&kept, &[&user.as_uuid(), &position])
            .await?
            .try_get(0)?;
        if !kept {
            return Ok(Replay::Reset);
        }
        let since = client.prepare_cached(SINCE).await?;
        let device = device.map_or("", DeviceId::as_str);
        let rows = client
            .query(
                &since,
                &[&user.as_uuid(), &position, &device, &(i64::from(limit) + 1)],
            )
            .await?;
        if rows.len() > limit as usize {
            return Ok(Replay::Reset);
        }
        let notices = rows
            .iter()
            .map(notice_from_row)
            .collect::<Result<Vec<_>, PgError>>()?;
        Ok(Replay::Missed(notices))
    }
}

#[async_trait]
impl ChangeLog for PgHistoryRepository {
    async fn since(
        &self,
        user: UserId,
        device: Option<DeviceId>,
        position: i64,
        limit: u32,
    ) -> Result<Replay, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self
                .since_inner(user, device.as_ref(), position, limit)
                .await?)
        })
        .await
    }
}

/// A stream's notice from a row of [`SINCE`].
fn notice_from_row(row: &Row) -> Result<ChangeNotice, PgError> {
    let corrupt = |what: &str| PgError::Corrupt(format!("stored history {what}"));
    let user_id: Option<uuid::Uuid> = row.try_get("user_id")?;
    let store: String = row.try_get("store")?;
    let device: String = row.try_get("device_id")?;
    let key: String = row.try_get("key")?;
    let op: String = row.try_get("op")?;
    let (store, scope) = match (store.as_str(), device.is_empty()) {
        ("defaults", _) => (NoticeStore::Defaults, NoticeScope::Deployment),
        ("settings", true) => (NoticeStore::Settings, NoticeScope::User),
        ("settings", false) => (NoticeStore::Settings, NoticeScope::Device),
        ("preferences", true) => (NoticeStore::Preferences, NoticeScope::User),
        ("preferences", false) => (NoticeStore::Preferences, NoticeScope::Device),
        _ => return Err(corrupt("store")),
    };
    Ok(ChangeNotice {
        position: row.try_get("position")?,
        user_id: user_id.map(UserId::new),
        store,
        scope,
        device_id: if device.is_empty() {
            None
        } else {
            Some(DeviceId::parse(&device).map_err(|_| corrupt("device_id"))?)
        },
        key: (!key.is_empty()).then_some(key),
        op: ChangeOp::parse(&op).ok_or_else(|| corrupt("op"))?,
        version: row.try_get("version")?,
        changed_at: row.try_get("changed_at")?,
    })
}

#[async_trait]
impl HistoryRepository for PgHistoryRepository {
    async fn history(
        &self,
        user: UserId,
        target: &HistoryTarget,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.history_inner(user, target, before, limit).await?)
        })
        .await
    }

    async fn entry(
        &self,
        user: UserId,
        target: &HistoryTarget,
        version: i64,
    ) -> Result<Option<HistoryEntry>, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.entry_inner(user, target, version).await?)
        })
        .await
    }
}

/// The row's cell: store, device ('' for the user's own layer), key ('' for preferences).
fn cell(target: &HistoryTarget) -> (&'static str, &str, &str) {
    let device = target.device.as_ref().map_or("", |d| d.as_str());
    match &target.key {
        Some(key) => ("settings", device, key.as_str()),
        None => ("preferences", device, ""),
    }
}

fn entry_from_row(row: &Row) -> Result<HistoryEntry, PgError> {
    let corrupt = |what: &str| PgError::Corrupt(format!("stored history {what}"));
    let op: String = row.try_get("op")?;
    let actor: String = row.try_get("actor")?;
    let data_type = row
        .try_get::<_, Option<String>>("data_type")?
        .map(|t| t.parse::<DataType>().map_err(|()| corrupt("data_type")))
        .transpose()?;
    Ok(HistoryEntry {
        version: row.try_get("version")?,
        op: ChangeOp::parse(&op).ok_or_else(|| corrupt("op"))?,
        actor: ChangeActor::parse(&actor).ok_or_else(|| corrupt("actor"))?,
        value: row.try_get("value")?,
        data_type,
        category: row
            .try_get::<_, Option<String>>("category")?
            .map(Category::from_stored),
        description: row
            .try_get::<_, Option<String>>("description")?
            .map(Description::from_stored),
        changed_at: row.try_get("changed_at")?,
    })
}
