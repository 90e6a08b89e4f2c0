//! Key rotation: re-encrypt ("rewrap") every secret not sealed with the current key.
//!
//! Batched and resumable: each pass asks only for rows whose kid is not current, so an
//! interrupted run simply starts again, and a finished run finds nothing. Each row is
//! written only if its version is unchanged, so a concurrent user write always wins.
//! Progress goes to a callback after every batch, which may also stop the run there: the
//! domain does no I/O, the caller draws bars or prints lines.

use std::ops::ControlFlow;

use crate::{
    UserId,
    error::RepositoryError,
    ports::{EnvelopeStore, SealedCell, SecretCipher},
    secrets::{Envelope, SecretValue},
    settings::{SettingKey, seal},
};

/// Options of one rewrap run.
#[derive(Clone, Copy, Debug)]
pub struct RewrapOptions {
    /// Rows fetched per batch.
    pub batch_size: u32,
    /// Count what would be rewrapped without writing.
    pub dry_run: bool,
}

impl Default for RewrapOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            dry_run: false,
        }
    }
}

/// A row the rewrap could not process; it is left untouched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewrapFailure {
    /// Owner.
    pub user_id: UserId,
    /// Name.
    pub key: SettingKey,
    /// Why (never contains plaintext or key material).
    pub reason: String,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RewrapReport {
    /// Rows re-encrypted under the current key (or, in a dry run, that would be).
    pub rewrapped: u64,
    /// Rows skipped because a concurrent write changed them (they now hold a fresh value).
    pub changed_concurrently: u64,
    /// Rows that could not be decrypted or parsed.
    pub failures: Vec<RewrapFailure>,
    /// The caller stopped the run after a batch; the rows not reached yet keep their old
    /// key until a new run, which resumes.
    pub interrupted: bool,
}

/// How far a rewrap run is, reported before the first batch and after each one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RewrapProgress {
    /// Rows not sealed with the current key when the run started. Rows sealed with an old
    /// key during the run are processed too, so `done` may end above it.
    pub total: u64,
    /// Rows processed so far: rewrapped (or would be), changed concurrently, or failed.
    pub done: u64,
}

/// The key-rotation use cases.
pub struct KeyRotation<S, C> {
    store: S,
    cipher: C,
}

impl<S: EnvelopeStore, C: SecretCipher> KeyRotation<S, C> {
    /// Builds the use case.
    pub fn new(store: S, cipher: C) -> Self {
        Self { store, cipher }
    }

    /// Rows per key id, for `keys status`.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn status(&self) -> Result<Vec<(Option<String>, u64)>, RepositoryError> {
        self.store.count_by_kid().await
    }

    /// Re-encrypts every secret whose kid is not the current one.
    ///
    /// # Errors
    /// When the store fails; rows already rewrapped stay rewrapped, and a new run resumes.
    pub async fn rewrap(&self, options: RewrapOptions) -> Result<RewrapReport, RepositoryError> {
        self.run(options, 0, |_| ControlFlow::Continue(())).await
    }

    /// [`Self::rewrap`], counting the rows to rewrap first and calling `on_progress` before
    /// the first batch and after each one; `ControlFlow::Break` stops the run there (the
    /// report says `interrupted`).
    ///
    /// # Errors
    /// When the store fails; rows already rewrapped stay rewrapped, and a new run resumes.
    pub async fn rewrap_with_progress(
        &self,
        options: RewrapOptions,
        on_progress: impl FnMut(RewrapProgress) -> ControlFlow<()>,
    ) -> Result<RewrapReport, RepositoryError> {
        let current = self.cipher.current_kid();
        let total = self
            .store
            .count_by_kid()
            .await?
            .into_iter()
            .filter(|(kid, _)| kid.as_deref() != Some(current.as_str()))
            .map(|(_, rows)| rows)
            .sum();
        self.run(options, total, on_progress).await
    }

    async fn run(
        &self,
        options: RewrapOptions,
        total: u64,
        mut on_progress: impl FnMut(RewrapProgress) -> ControlFlow<()>,
    ) -> Result<RewrapReport, RepositoryError> {
        let current = self.cipher.current_kid();
        let mut report = RewrapReport::default();
        let mut cursor: Option<(UserId, SettingKey)> = None;
        let mut done = 0;
        loop {
            if on_progress(RewrapProgress { total, done }).is_break() {
                report.interrupted = true;
                return Ok(report);
            }
            let batch = self
                .store
                .not_sealed_with(&current, cursor.clone(), options.batch_size.max(1))
                .await?;
            let Some(last) = batch.last() else {
                return Ok(report);
            };
            cursor = Some((last.user_id, last.key.clone()));
            let fetched = batch.len() as u64;
            let mut replacements = Vec::with_capacity(batch.len());
            for cell in batch {
                match self.reseal(&cell) {
                    Err(reason) => report.failures.push(RewrapFailure {
                        user_id: cell.user_id,
                        key: cell.key,
                        reason,
                    }),
                    Ok(envelope) => replacements.push((cell, envelope)),
                }
            }
            let resealed = replacements.len() as u64;
            if options.dry_run {
                report.rewrapped += resealed;
            } else if !replacements.is_empty() {
                // One statement per batch: a round trip per row bounded the run's rate.
                let stored = self.store.replace_envelopes(&replacements).await?;
                report.rewrapped += stored;
                report.changed_concurrently += resealed - stored;
            }
            done += fetched;
        }
    }

    fn reseal(&self, cell: &SealedCell) -> Result<Envelope, String> {
        let envelope = Envelope::from_value(&cell.value).map_err(|e| e.to_string())?;
        let plaintext = self
            .cipher
            .open(cell.user_id, &cell.key, &envelope)
            .map_err(|e| e.to_string())?;
        seal(
            &self.cipher,
            cell.user_id,
            &cell.key,
            &SecretValue::from_bytes(plaintext),
        )
        .map_err(|e| e.to_string())
    }
}
