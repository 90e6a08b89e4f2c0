//! `Preferences`: one user's structured preferences, with their defaults.

use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use super::{
    Channel, ContentLanguages, LanguageTag, NotificationPrefs, PreferenceOverrides,
    ProfileVisibility, Theme,
};
use crate::{UserId, ValidationErrors};

/// The structured preferences of one user. Every field holds a validated value object, so a
/// `Preferences` is always valid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Preferences {
    /// E-mail notifications.
    pub email_notifications: NotificationPrefs,
    /// Push notifications (may carry device tokens).
    pub push_notifications: NotificationPrefs,
    /// Digest notifications.
    pub digest_notifications: NotificationPrefs,
    /// Who may see the profile.
    pub profile_visibility: ProfileVisibility,
    /// Show the e-mail address publicly.
    pub show_email: bool,
    /// Show watch activity to friends.
    pub show_activity: bool,
    /// UI colour scheme.
    pub theme: Theme,
    /// UI language.
    pub display_language: LanguageTag,
    /// Preferred content languages, when set.
    pub content_language: Option<ContentLanguages>,
    /// Show adult content.
    pub show_adult_content: bool,
    /// Show spoilers in descriptions.
    pub show_spoilers: bool,
    /// Start videos automatically.
    pub auto_play_videos: bool,
}

impl Default for Preferences {
    /// The defaults: what a user who never chose reads.
    fn default() -> Self {
        Self {
            email_notifications: NotificationPrefs::default_for(Channel::Email),
            push_notifications: NotificationPrefs::default_for(Channel::Push),
            digest_notifications: NotificationPrefs::default_for(Channel::Digest),
            profile_visibility: ProfileVisibility::Private,
            show_email: false,
            show_activity: true,
            theme: Theme::System,
            display_language: default_display_language(),
            content_language: None,
            show_adult_content: false,
            show_spoilers: false,
            auto_play_videos: true,
        }
    }
}

fn default_display_language() -> LanguageTag {
    LanguageTag::trusted("en-US")
}

impl Preferences {
    /// The preferences as a JSON document (the API's and the merge patch's shape).
    pub fn to_document(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Full replace: builds preferences from a client document; omitted or `null` fields take
    /// their defaults.
    ///
    /// # Errors
    /// Every invalid or unknown field.
    pub fn replace_with(document: &Value) -> Result<Self, ValidationErrors> {
        Ok(PreferenceOverrides::from_document(document)?.apply(Self::default()))
    }

    /// Applies an RFC 7396 JSON merge patch: objects merge recursively (so one notification
    /// member can change alone) and `null` removes a member, which resets it to its default.
    ///
    /// # Errors
    /// Every invalid or unknown field of the patched document.
    pub fn merge_patch(&self, patch: &Value) -> Result<Self, ValidationErrors> {
        // These preferences as a layer that sets every field they hold.
        let every_field = PreferenceOverrides::from_document(&self.to_document())?;
        Ok(every_field.merge_patch(patch, self)?.apply(Self::default()))
    }

    /// The privacy part.
    pub fn privacy(&self) -> PrivacyPrefs {
        PrivacyPrefs {
            profile_visibility: self.profile_visibility,
            show_email: self.show_email,
            show_activity: self.show_activity,
        }
    }

    /// Replaces the privacy part.
    pub fn set_privacy(&mut self, privacy: PrivacyPrefs) {
        self.profile_visibility = privacy.profile_visibility;
        self.show_email = privacy.show_email;
        self.show_activity = privacy.show_activity;
    }
}

/// The privacy subset of the preferences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PrivacyPrefs {
    /// Who may see the profile.
    pub profile_visibility: ProfileVisibility,
    /// Show the e-mail address publicly.
    pub show_email: bool,
    /// Show watch activity to friends.
    pub show_activity: bool,
}

/// The user layer of the preferences as read from the store: only the fields the user set.
/// A user without a row sets nothing, at version 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPreferences {
    /// Owner.
    pub user_id: UserId,
    /// The fields the user set; the others inherit.
    pub overrides: PreferenceOverrides,
    /// Optimistic-concurrency version; 0 when nothing is stored yet.
    pub version: i64,
    /// First write, when stored.
    pub created_at: Option<OffsetDateTime>,
    /// Last change, when stored.
    pub updated_at: Option<OffsetDateTime>,
}

impl StoredPreferences {
    /// A user with no row: every field inherits.
    pub fn defaults(user_id: UserId) -> Self {
        Self {
            user_id,
            overrides: PreferenceOverrides::default(),
            version: 0,
            created_at: None,
            updated_at: None,
        }
    }
}
