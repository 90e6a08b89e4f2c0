//! The `keys` commands (generate, status, rewrap) and the start-up check that every stored
//! envelope names a configured key.

use std::sync::Arc;

use adapter_crypto::AesGcmKeyring;
use adapter_postgres::{PgEnvelopeStore, Pool};
use anyhow::bail;
use domain::{
    ports::EnvelopeStore,
    services::{KeyRotation, RewrapOptions, RewrapReport},
};

/// Refuses to start when encrypted rows name a key id that is not configured: they could
/// never be read, and the operator most likely forgot a previous key.
///
/// # Errors
/// Names the missing kids and how many rows each holds (never key material).
pub async fn check_stored_kids(pool: &Pool, keyring: &AesGcmKeyring) -> anyhow::Result<()> {
    let counts = PgEnvelopeStore::new(pool.clone()).count_by_kid().await?;
    let missing: Vec<String> = counts
        .iter()
        .filter_map(|(kid, rows)| match kid {
            Some(kid) if !keyring.knows_kid(kid) => Some(format!("{kid} ({rows} rows)")),
            None => Some(format!("<no kid> ({rows} rows)")),
            _ => None,
        })
        .collect();
    if !missing.is_empty() {
        bail!(
            "encrypted settings are sealed with key ids that no configured key has: {}. \
             Add those keys to USER_SETTINGS_ENCRYPTION_KEYS_PREVIOUS (or fix the rows).",
            missing.join(", ")
        );
    }
    Ok(())
}

/// Rows per key id, current key marked.
///
/// # Errors
/// When the database fails.
pub async fn status(pool: &Pool, keyring: Arc<AesGcmKeyring>) -> anyhow::Result<String> {
    let current = domain::ports::SecretCipher::current_kid(keyring.as_ref());
    let rotation = KeyRotation::new(PgEnvelopeStore::new(pool.clone()), keyring.clone());
    let counts = rotation.status().await?;
    let mut out = format!(
        "current key: {current}\nconfigured keys: {}\n",
        keyring.kids().join(", ")
    );
    if counts.is_empty() {
        out.push_str("no encrypted settings\n");
    }
    for (kid, rows) in counts {
        let kid = kid.unwrap_or_else(|| "<none>".into());
        let note = if kid == current {
            "current"
        } else if keyring.knows_kid(&kid) {
            "previous: run `keys rewrap`"
        } else {
            "NOT CONFIGURED: unreadable"
        };
        out.push_str(&format!("{kid}\t{rows}\t{note}\n"));
    }
    Ok(out)
}

/// Re-encrypts every row not on the current key.
///
/// # Errors
/// When the database fails mid-run (a new run resumes).
pub async fn rewrap(
    pool: &Pool,
    keyring: Arc<AesGcmKeyring>,
    options: RewrapOptions,
) -> anyhow::Result<RewrapReport> {
    let rotation = KeyRotation::new(PgEnvelopeStore::new(pool.clone()), keyring);
    Ok(rotation.rewrap(options).await?)
}
