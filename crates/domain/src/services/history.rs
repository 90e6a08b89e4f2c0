//! What the settings, devices and preferences services share about history: reading a page
//! of it, and turning a kept version back into a write ("restore").
//!
//! A restore is an ordinary write of the kept value, through the same rules as any write
//! (the key's schema, enforcement, quotas, preconditions), recorded as `restored`. Only
//! values can be restored: a deletion has none, and a secret's history never holds one.

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use super::write_pipeline::SettingInput;
use crate::{
    error::{FieldError, RepositoryError, ValidationErrors},
    history::{ChangeOp, HistoryEntry, HistoryPage, HistoryTarget},
    ids::UserId,
    ports::HistoryRepository,
    settings::SettingKey,
};

/// Entries per page when the client gives no limit, and the most it may ask for.
pub const DEFAULT_HISTORY_LIMIT: u32 = 50;
/// The most entries one page holds.
pub const MAX_HISTORY_LIMIT: u32 = 200;

/// Why a history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The key, device id or limit is malformed.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// The store or the audit log failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Why a kept version cannot be written again (before any write is tried).
#[derive(Debug, thiserror::Error)]
pub enum NotRestorable {
    /// No such version is kept for this key (never existed, or pruned).
    #[error("no version {version} is kept")]
    VersionNotFound {
        /// The version asked for.
        version: i64,
    },
    /// The version is a secret's: its value is never kept.
    #[error("a secret's history holds no value to restore")]
    Secret,
    /// The version is a deletion: there is no value to restore.
    #[error("version {version} is a deletion, which holds no value")]
    Deletion {
        /// The version asked for.
        version: i64,
    },
}

/// The history store, or none (every history then reads as empty).
#[derive(Clone)]
pub(crate) struct HistorySource(Arc<dyn HistoryRepository>);

impl Default for HistorySource {
    fn default() -> Self {
        Self(Arc::new(NoHistory))
    }
}

impl HistorySource {
    pub(crate) fn new(repo: Arc<dyn HistoryRepository>) -> Self {
        Self(repo)
    }

    /// One page of `target`'s history, newest first.
    pub(crate) async fn page(
        &self,
        user: UserId,
        target: &HistoryTarget,
        before: Option<i64>,
        limit: Option<u32>,
    ) -> Result<HistoryPage, HistoryError> {
        let limit = checked_limit(limit).map_err(HistoryError::Validation)?;
        let mut entries = self.0.history(user, target, before, limit + 1).await?;
        let more = entries.len() > limit as usize;
        entries.truncate(limit as usize);
        let next_before = more.then(|| entries.last().map(|e| e.version)).flatten();
        Ok(HistoryPage {
            entries,
            next_before,
        })
    }

    /// The value kept at `version`, if it can be written again.
    pub(crate) async fn restorable(
        &self,
        user: UserId,
        target: &HistoryTarget,
        version: i64,
    ) -> Result<Result<HistoryEntry, NotRestorable>, RepositoryError> {
        let Some(entry) = self.0.entry(user, target, version).await? else {
            return Ok(Err(NotRestorable::VersionNotFound { version }));
        };
        if entry.is_secret() {
            return Ok(Err(NotRestorable::Secret));
        }
        if entry.op == ChangeOp::Deleted || entry.value.is_none() {
            return Ok(Err(NotRestorable::Deletion { version }));
        }
        Ok(Ok(entry))
    }
}

/// The write that puts a kept setting value back, as a client would send it.
pub(crate) fn restore_input(key: &SettingKey, entry: &HistoryEntry) -> SettingInput {
    let value = entry.value.as_ref().unwrap_or(&Value::Null);
    SettingInput {
        key: key.as_str().to_owned(),
        // Serializing a tree of JSON does not fail; a failure leaves no value, which the
        // pipeline refuses.
        value: serde_json::value::to_raw_value(value).ok(),
        description: entry.description.as_ref().map(|d| d.as_str().to_owned()),
        category: entry.category.as_ref().map(|c| c.as_str().to_owned()),
        data_type: entry.data_type.map(|t| t.as_str().to_owned()),
    }
}

/// A page's `limit` (of a history or of the audit trail): the default, or refused out of bounds.
pub(crate) fn checked_limit(limit: Option<u32>) -> Result<u32, ValidationErrors> {
    match limit {
        None => Ok(DEFAULT_HISTORY_LIMIT),
        Some(n) if (1..=MAX_HISTORY_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ValidationErrors::single(FieldError::new(
            "limit",
            "out_of_range",
            format!("limit must be between 1 and {MAX_HISTORY_LIMIT}"),
        ))),
    }
}

/// No history kept (services built without a history store).
struct NoHistory;

#[async_trait]
impl HistoryRepository for NoHistory {
    async fn history(
        &self,
        _: UserId,
        _: &HistoryTarget,
        _: Option<i64>,
        _: u32,
    ) -> Result<Vec<HistoryEntry>, RepositoryError> {
        Ok(Vec::new())
    }

    async fn entry(
        &self,
        _: UserId,
        _: &HistoryTarget,
        _: i64,
    ) -> Result<Option<HistoryEntry>, RepositoryError> {
        Ok(None)
    }
}
