//! The preferences use cases: read with defaults, replace, merge-patch and field updates.

use serde_json::Value;

use crate::{
    audit::{Actor, AuditAction, AuditEntry},
    error::{FieldError, RepositoryError, ValidationErrors},
    ids::UserId,
    ports::{AuditLog, PreferencesRepository, PreferencesWriteError},
    preferences::{
        Channel, ContentLanguages, LanguageTag, NotificationPrefs, Preferences, PrivacyPrefs,
        StoredPreferences, Theme,
    },
    settings::Precondition,
};

/// How often a read-modify-write without a client precondition retries a lost race.
const MAX_ATTEMPTS: usize = 3;

/// Why preferences could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PreferencesError {
    /// Every problem with the input.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// The client's precondition did not hold.
    #[error("the preferences were changed concurrently (current version {current})")]
    VersionConflict {
        /// The version now stored.
        current: i64,
    },
    /// The user does not exist (external provisioning).
    #[error("the user does not exist")]
    UserNotFound,
    /// The store or the audit log failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

impl From<PreferencesWriteError> for PreferencesError {
    fn from(e: PreferencesWriteError) -> Self {
        match e {
            PreferencesWriteError::VersionConflict { current } => Self::VersionConflict { current },
            PreferencesWriteError::UserNotFound => Self::UserNotFound,
            PreferencesWriteError::Repository(r) => Self::Repository(r),
        }
    }
}

impl From<ValidationErrors> for PreferencesError {
    fn from(e: ValidationErrors) -> Self {
        Self::Validation(e)
    }
}

/// The preferences use cases.
pub struct PreferencesService<P, A> {
    repo: P,
    audit: A,
}

impl<P, A> PreferencesService<P, A>
where
    P: PreferencesRepository,
    A: AuditLog,
{
    /// Builds the service from its ports.
    pub fn new(repo: P, audit: A) -> Self {
        Self { repo, audit }
    }

    /// The user's preferences, or the defaults at version 0 when none are stored
    /// (GetPreferences).
    ///
    /// # Errors
    /// `Repository` when the store fails.
    pub async fn get(&self, user: UserId) -> Result<StoredPreferences, PreferencesError> {
        Ok(self
            .repo
            .get(user)
            .await?
            .unwrap_or_else(|| StoredPreferences::defaults(user)))
    }

    /// An admin's read of another user's preferences, audited first.
    ///
    /// # Errors
    /// `Repository` when the store or the audit log fails.
    pub async fn get_as_admin(
        &self,
        actor: &Actor,
        subject: UserId,
    ) -> Result<StoredPreferences, PreferencesError> {
        self.audit
            .record(AuditEntry {
                actor: actor.clone(),
                subject,
                action: AuditAction::AdminRead,
                key: None,
            })
            .await?;
        self.get(subject).await
    }

    /// Full replace from a client document: omitted fields take their defaults
    /// (UpdatePreferences / `PUT`).
    ///
    /// # Errors
    /// `Validation` listing every bad field, `VersionConflict`, `UserNotFound`, `Repository`.
    pub async fn replace(
        &self,
        user: UserId,
        document: &Value,
        expected: Precondition,
    ) -> Result<StoredPreferences, PreferencesError> {
        let preferences = Preferences::replace_with(document)?;
        let expected = match expected {
            // One of several versions: whichever is current, if any, conditions the write
            // (so the defaults' version 0 can be among them).
            Precondition::VersionIn(versions) => {
                let current = self.get(user).await?.version;
                if !versions.contains(&current) {
                    return Err(PreferencesError::VersionConflict { current });
                }
                Precondition::Version(current)
            }
            // Preferences always have a representation (the defaults), so "must exist" holds.
            Precondition::Exists => Precondition::Any,
            other => other,
        };
        Ok(self.repo.upsert(user, &preferences, expected).await?)
    }

    /// Applies an RFC 7396 merge patch (`PATCH`); `null` resets a field to its default.
    ///
    /// # Errors
    /// As [`Self::replace`].
    pub async fn patch(
        &self,
        user: UserId,
        patch: &Value,
        expected: Precondition,
    ) -> Result<StoredPreferences, PreferencesError> {
        self.modify(user, expected, |current| current.merge_patch(patch))
            .await
    }

    /// Sets the theme (UpdateTheme).
    ///
    /// # Errors
    /// As [`Self::replace`].
    pub async fn update_theme(
        &self,
        user: UserId,
        theme: &str,
    ) -> Result<StoredPreferences, PreferencesError> {
        let theme = Theme::parse(theme, "theme").map_err(ValidationErrors::single)?;
        self.modify(user, Precondition::Any, |p| {
            Ok(Preferences { theme, ..p.clone() })
        })
        .await
    }

    /// Sets the display language and, when given, the content languages (UpdateLanguage).
    ///
    /// # Errors
    /// As [`Self::replace`].
    pub async fn update_language(
        &self,
        user: UserId,
        display_language: &str,
        content_language: Option<&str>,
    ) -> Result<StoredPreferences, PreferencesError> {
        let mut errors = ValidationErrors::new();
        let display = errors.collect(LanguageTag::parse(
            display_language,
            crate::preferences::MAX_DISPLAY_LANGUAGE_LEN,
            "display_language",
        ));
        let content = content_language.and_then(|c| errors.collect(ContentLanguages::parse(c)));
        let display = errors.into_result(display)?;
        self.modify(user, Precondition::Any, |p| {
            let mut next = p.clone();
            if let Some(d) = display.clone() {
                next.display_language = d;
            }
            if content.is_some() {
                next.content_language = content.clone();
            }
            Ok(next)
        })
        .await
    }

    /// Replaces one channel's notification settings (UpdateNotifications).
    ///
    /// # Errors
    /// As [`Self::replace`].
    pub async fn update_notifications(
        &self,
        user: UserId,
        channel: Channel,
        notifications: &Value,
    ) -> Result<StoredPreferences, PreferencesError> {
        let parsed = NotificationPrefs::parse(notifications, channel)?;
        self.modify(user, Precondition::Any, |p| {
            let mut next = p.clone();
            let slot = match channel {
                Channel::Email => &mut next.email_notifications,
                Channel::Push => &mut next.push_notifications,
                Channel::Digest => &mut next.digest_notifications,
            };
            *slot = parsed.clone();
            Ok(next)
        })
        .await
    }

    /// Replaces the privacy settings (UpdatePrivacy).
    ///
    /// # Errors
    /// As [`Self::replace`] (without `Validation`: the input is already typed).
    pub async fn update_privacy(
        &self,
        user: UserId,
        privacy: PrivacyPrefs,
    ) -> Result<StoredPreferences, PreferencesError> {
        self.modify(user, Precondition::Any, |p| {
            let mut next = p.clone();
            next.set_privacy(privacy);
            Ok(next)
        })
        .await
    }

    /// Stores the defaults for a new user; a user who already has preferences keeps them
    /// (InitializeDefaults).
    ///
    /// # Errors
    /// `UserNotFound` or `Repository`.
    pub async fn initialize_defaults(
        &self,
        user: UserId,
    ) -> Result<StoredPreferences, PreferencesError> {
        match self
            .repo
            .upsert(user, &Preferences::default(), Precondition::Absent)
            .await
        {
            Ok(stored) => Ok(stored),
            Err(PreferencesWriteError::VersionConflict { .. }) => self.get(user).await,
            Err(e) => Err(e.into()),
        }
    }

    /// Read-modify-write with optimistic concurrency. With a client precondition the stored
    /// version must match it; without one, a lost race is retried on fresh data.
    async fn modify<F>(
        &self,
        user: UserId,
        expected: Precondition,
        change: F,
    ) -> Result<StoredPreferences, PreferencesError>
    where
        F: Fn(&Preferences) -> Result<Preferences, ValidationErrors> + Send + Sync,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self.get(user).await?;
            let precondition = match expected {
                Precondition::Version(v) if v != current.version => {
                    return Err(PreferencesError::VersionConflict {
                        current: current.version,
                    });
                }
                Precondition::VersionIn(ref versions) if !versions.contains(&current.version) => {
                    return Err(PreferencesError::VersionConflict {
                        current: current.version,
                    });
                }
                Precondition::Absent if current.version != 0 => {
                    return Err(PreferencesError::VersionConflict {
                        current: current.version,
                    });
                }
                _ => Precondition::Version(current.version),
            };
            let next = change(&current.preferences)?;
            match self.repo.upsert(user, &next, precondition).await {
                Err(PreferencesWriteError::VersionConflict { .. })
                    if matches!(expected, Precondition::Any | Precondition::Exists)
                        && attempt < MAX_ATTEMPTS => {}
                result => return Ok(result?),
            }
        }
    }
}

impl From<FieldError> for PreferencesError {
    fn from(e: FieldError) -> Self {
        Self::Validation(ValidationErrors::single(e))
    }
}
