//! `PgEnvelopeStore`: the key-rotation port on the encrypted rows of `shared.user_settings`.

use std::time::Duration;

use async_trait::async_trait;
use domain::{
    RepositoryError, UserId,
    ports::{EnvelopeStore, SealedCell},
    secrets::Envelope,
    settings::SettingKey,
};
use tokio_postgres::Row;

use crate::{
    Pool,
    deadline::{DEFAULT_OPERATION_TIMEOUT, within},
    errors::PgError,
};

/// Served by the partial index `idx_user_settings_encrypted_kid`.
const COUNT_BY_KID: &str = "SELECT value ->> 'kid' AS kid, count(*) AS rows \
     FROM shared.user_settings WHERE data_type = 'encrypted' \
     GROUP BY 1 ORDER BY 1 NULLS FIRST";

// Keyset pagination in primary-key order: each batch resumes after the last cell seen, so a
// run is one pass over the table however many rows it rewraps. Two statements rather than
// `$2 IS NULL OR ...`, which would keep the planner from using the key range.
const FIRST_NOT_SEALED_WITH: &str = "SELECT user_id, key, version, value \
     FROM shared.user_settings \
     WHERE data_type = 'encrypted' AND (value ->> 'kid') IS DISTINCT FROM $1 \
     ORDER BY user_id, key LIMIT $2";

const NEXT_NOT_SEALED_WITH: &str = "SELECT user_id, key, version, value \
     FROM shared.user_settings \
     WHERE data_type = 'encrypted' AND (value ->> 'kid') IS DISTINCT FROM $1 \
     AND (user_id, key) > ($3::uuid, $4::text) \
     ORDER BY user_id, key LIMIT $2";

/// Version and `updated_at` stay: the plaintext, and so the setting, did not change. The
/// trigger still notifies, so caches drop the old envelope. A whole batch in one statement:
/// the rows arrive as parallel arrays.
const REPLACE_ENVELOPES: &str = "UPDATE shared.user_settings AS s SET value = r.value \
     FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::jsonb[]) AS r(user_id, key, version, value) \
     WHERE s.user_id = r.user_id AND s.key = r.key AND s.version = r.version \
     AND s.data_type = 'encrypted'";

/// Encrypted settings for key rotation (`keys status`, `keys rewrap`, the start-up kid check).
#[derive(Clone, Debug)]
pub struct PgEnvelopeStore {
    pool: Pool,
    operation_timeout: Duration,
}

impl PgEnvelopeStore {
    /// A store on `pool`.
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

    async fn count_by_kid_inner(&self) -> Result<Vec<(Option<String>, u64)>, PgError> {
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(COUNT_BY_KID).await?;
        client
            .query(&statement, &[])
            .await?
            .iter()
            .map(|row| {
                let rows: i64 = row.try_get("rows")?;
                Ok((row.try_get("kid")?, u64::try_from(rows).unwrap_or(0)))
            })
            .collect()
    }

    async fn not_sealed_with_inner(
        &self,
        current_kid: &str,
        after: Option<(UserId, SettingKey)>,
        limit: u32,
    ) -> Result<Vec<SealedCell>, PgError> {
        let client = self.pool.get().await?;
        let limit = i64::from(limit);
        let rows = match &after {
            None => {
                let statement = client.prepare_cached(FIRST_NOT_SEALED_WITH).await?;
                client.query(&statement, &[&current_kid, &limit]).await?
            }
            Some((user, key)) => {
                let statement = client.prepare_cached(NEXT_NOT_SEALED_WITH).await?;
                client
                    .query(
                        &statement,
                        &[&current_kid, &limit, &user.as_uuid(), &key.as_str()],
                    )
                    .await?
            }
        };
        rows.iter().map(cell_from_row).collect()
    }

    async fn replace_envelopes_inner(
        &self,
        replacements: &[(SealedCell, Envelope)],
    ) -> Result<u64, PgError> {
        let mut users = Vec::with_capacity(replacements.len());
        let mut keys = Vec::with_capacity(replacements.len());
        let mut versions = Vec::with_capacity(replacements.len());
        let mut values = Vec::with_capacity(replacements.len());
        for (cell, envelope) in replacements {
            users.push(cell.user_id.as_uuid());
            keys.push(cell.key.as_str());
            versions.push(cell.version);
            values.push(envelope.to_value());
        }
        let client = self.pool.get().await?;
        let statement = client.prepare_cached(REPLACE_ENVELOPES).await?;
        Ok(client
            .execute(&statement, &[&users, &keys, &versions, &values])
            .await?)
    }
}

#[async_trait]
impl EnvelopeStore for PgEnvelopeStore {
    async fn count_by_kid(&self) -> Result<Vec<(Option<String>, u64)>, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.count_by_kid_inner().await?)
        })
        .await
    }

    async fn not_sealed_with(
        &self,
        current_kid: &str,
        after: Option<(UserId, SettingKey)>,
        limit: u32,
    ) -> Result<Vec<SealedCell>, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self
                .not_sealed_with_inner(current_kid, after, limit)
                .await?)
        })
        .await
    }

    async fn replace_envelopes(
        &self,
        replacements: &[(SealedCell, Envelope)],
    ) -> Result<u64, RepositoryError> {
        within(self.operation_timeout, async {
            Ok(self.replace_envelopes_inner(replacements).await?)
        })
        .await
    }
}

fn cell_from_row(row: &Row) -> Result<SealedCell, PgError> {
    let key: String = row.try_get("key")?;
    let key = SettingKey::parse(&key)
        .map_err(|e| PgError::Corrupt(format!("stored setting key: {}", e.code)))?;
    Ok(SealedCell {
        user_id: UserId::new(row.try_get("user_id")?),
        key,
        version: row.try_get("version")?,
        value: row.try_get("value")?,
    })
}
