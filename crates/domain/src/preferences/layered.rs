//! Preferences as layers: what one layer (deployment, user, device) sets — each field a value
//! or "inherit" — and the resolution of the effective preferences with the source of each
//! field.
//!
//! A layer stores only the fields it sets, so a changed default reaches everyone who never
//! chose that field. `null` in a merge patch, or a field omitted from a full replace, means
//! "inherit".

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::{
    Channel, ContentLanguages, LanguageTag, MAX_TYPES, NotificationPrefs, Preferences,
    ProfileVisibility, Theme,
};
use crate::{
    error::{FieldError, ValidationErrors},
    layers::{DeploymentEntry, Layer, Layers},
};

/// One field of the preferences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PreferenceField {
    /// `email_notifications`
    EmailNotifications,
    /// `push_notifications`
    PushNotifications,
    /// `digest_notifications`
    DigestNotifications,
    /// `profile_visibility`
    ProfileVisibility,
    /// `show_email`
    ShowEmail,
    /// `show_activity`
    ShowActivity,
    /// `theme`
    Theme,
    /// `display_language`
    DisplayLanguage,
    /// `content_language`
    ContentLanguage,
    /// `show_adult_content`
    ShowAdultContent,
    /// `show_spoilers`
    ShowSpoilers,
    /// `auto_play_videos`
    AutoPlayVideos,
}

impl PreferenceField {
    /// Every field, in document order.
    pub const ALL: [PreferenceField; 12] = [
        Self::EmailNotifications,
        Self::PushNotifications,
        Self::DigestNotifications,
        Self::ProfileVisibility,
        Self::ShowEmail,
        Self::ShowActivity,
        Self::Theme,
        Self::DisplayLanguage,
        Self::ContentLanguage,
        Self::ShowAdultContent,
        Self::ShowSpoilers,
        Self::AutoPlayVideos,
    ];

    /// The field's name in documents.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmailNotifications => "email_notifications",
            Self::PushNotifications => "push_notifications",
            Self::DigestNotifications => "digest_notifications",
            Self::ProfileVisibility => "profile_visibility",
            Self::ShowEmail => "show_email",
            Self::ShowActivity => "show_activity",
            Self::Theme => "theme",
            Self::DisplayLanguage => "display_language",
            Self::ContentLanguage => "content_language",
            Self::ShowAdultContent => "show_adult_content",
            Self::ShowSpoilers => "show_spoilers",
            Self::AutoPlayVideos => "auto_play_videos",
        }
    }

    /// The field named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// The notification channel this field holds, if it is one.
    fn channel(self) -> Option<Channel> {
        match self {
            Self::EmailNotifications => Some(Channel::Email),
            Self::PushNotifications => Some(Channel::Push),
            Self::DigestNotifications => Some(Channel::Digest),
            _ => None,
        }
    }
}

impl Serialize for PreferenceField {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// What one layer sets: `None` inherits from the layer below.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PreferenceOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    email_notifications: Option<NotificationPrefs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    push_notifications: Option<NotificationPrefs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    digest_notifications: Option<NotificationPrefs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    profile_visibility: Option<ProfileVisibility>,
    #[serde(skip_serializing_if = "Option::is_none")]
    show_email: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    show_activity: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    theme: Option<Theme>,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_language: Option<LanguageTag>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_language: Option<ContentLanguages>,
    #[serde(skip_serializing_if = "Option::is_none")]
    show_adult_content: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    show_spoilers: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auto_play_videos: Option<bool>,
}

/// Members a client may echo back from a read; they are ignored, not rejected.
const READ_ONLY: &[&str] = &[
    "user_id",
    "version",
    "created_at",
    "updated_at",
    "sources",
    "enforced",
];

impl PreferenceOverrides {
    /// Parses a document of overrides: members that are absent or `null` inherit.
    ///
    /// # Errors
    /// Every invalid or unknown member.
    pub fn from_document(document: &Value) -> Result<Self, ValidationErrors> {
        let Value::Object(map) = document else {
            return Err(ValidationErrors::single(FieldError::new(
                "",
                "invalid_type",
                "the preferences must be a JSON object",
            )));
        };
        let mut overrides = Self::default();
        let mut errors = ValidationErrors::new();
        for (name, value) in map {
            if value.is_null() || READ_ONLY.contains(&name.as_str()) {
                continue;
            }
            match PreferenceField::from_name(name) {
                Some(field) => {
                    if let Err(e) = overrides.set(field, value) {
                        errors.extend(e);
                    }
                }
                None => errors.push(FieldError::new(name, "unknown_field", "unknown field")),
            }
        }
        errors.into_result(overrides)
    }

    /// The layer's members as a document (only what it sets).
    pub fn to_document(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Applies an RFC 7396 merge patch to this layer: `null` makes a field inherit again, a
    /// value sets it, and an object for a notification channel merges onto what the caller
    /// sees of that channel now (`seen`), so one member can change alone.
    ///
    /// # Errors
    /// Every invalid or unknown member.
    pub fn merge_patch(&self, patch: &Value, seen: &Preferences) -> Result<Self, ValidationErrors> {
        let Value::Object(map) = patch else {
            return Err(ValidationErrors::single(FieldError::new(
                "",
                "invalid_type",
                "a merge patch of the preferences must be a JSON object",
            )));
        };
        let mut next = self.clone();
        let mut errors = ValidationErrors::new();
        for (name, value) in map {
            // `null` removes a member: of a member that does not exist, there is nothing to
            // remove, whatever its name.
            let nothing_to_remove = value.is_null() && PreferenceField::from_name(name).is_none();
            if READ_ONLY.contains(&name.as_str()) || nothing_to_remove {
                continue;
            }
            let Some(field) = PreferenceField::from_name(name) else {
                errors.push(FieldError::new(name, "unknown_field", "unknown field"));
                continue;
            };
            if value.is_null() {
                next.clear(field);
                continue;
            }
            let value = match (field.channel(), value) {
                (Some(channel), Value::Object(members)) => {
                    // A patch names at most as many types as a channel may hold, also when it
                    // only removes them, so its size is bounded by the contract.
                    if let Some(Value::Object(types)) = members.get("types")
                        && types.len() > MAX_TYPES
                    {
                        errors.push(FieldError::new(
                            format!("{name}.types"),
                            "too_many",
                            format!("a patch may name at most {MAX_TYPES} notification types"),
                        ));
                        continue;
                    }
                    let mut merged = channel_of(seen, channel).to_value();
                    json_patch::merge(&mut merged, value);
                    merged
                }
                _ => value.clone(),
            };
            if let Err(e) = next.set(field, &value) {
                errors.extend(e);
            }
        }
        errors.into_result(next)
    }

    /// Whether this layer sets `field`.
    pub fn has(&self, field: PreferenceField) -> bool {
        match field {
            PreferenceField::EmailNotifications => self.email_notifications.is_some(),
            PreferenceField::PushNotifications => self.push_notifications.is_some(),
            PreferenceField::DigestNotifications => self.digest_notifications.is_some(),
            PreferenceField::ProfileVisibility => self.profile_visibility.is_some(),
            PreferenceField::ShowEmail => self.show_email.is_some(),
            PreferenceField::ShowActivity => self.show_activity.is_some(),
            PreferenceField::Theme => self.theme.is_some(),
            PreferenceField::DisplayLanguage => self.display_language.is_some(),
            PreferenceField::ContentLanguage => self.content_language.is_some(),
            PreferenceField::ShowAdultContent => self.show_adult_content.is_some(),
            PreferenceField::ShowSpoilers => self.show_spoilers.is_some(),
            PreferenceField::AutoPlayVideos => self.auto_play_videos.is_some(),
        }
    }

    /// The fields this layer sets.
    pub fn fields(&self) -> Vec<PreferenceField> {
        PreferenceField::ALL
            .into_iter()
            .filter(|f| self.has(*f))
            .collect()
    }

    /// Whether this layer sets nothing.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }

    /// Makes `field` inherit.
    pub fn clear(&mut self, field: PreferenceField) {
        self.take_field(field, &Self::default());
    }

    /// Whether this layer and `other` say the same of `field` (both inherit, or both set
    /// the same value).
    pub fn same(&self, other: &Self, field: PreferenceField) -> bool {
        let mut a = Self::default();
        a.take_field(field, self);
        let mut b = Self::default();
        b.take_field(field, other);
        a == b
    }

    /// Copies what `from` says of `field` (a value or "inherit") into this layer.
    pub fn take_field(&mut self, field: PreferenceField, from: &Self) {
        match field {
            PreferenceField::EmailNotifications => {
                self.email_notifications = from.email_notifications.clone();
            }
            PreferenceField::PushNotifications => {
                self.push_notifications = from.push_notifications.clone();
            }
            PreferenceField::DigestNotifications => {
                self.digest_notifications = from.digest_notifications.clone();
            }
            PreferenceField::ProfileVisibility => self.profile_visibility = from.profile_visibility,
            PreferenceField::ShowEmail => self.show_email = from.show_email,
            PreferenceField::ShowActivity => self.show_activity = from.show_activity,
            PreferenceField::Theme => self.theme = from.theme,
            PreferenceField::DisplayLanguage => {
                self.display_language = from.display_language.clone();
            }
            PreferenceField::ContentLanguage => {
                self.content_language = from.content_language.clone();
            }
            PreferenceField::ShowAdultContent => self.show_adult_content = from.show_adult_content,
            PreferenceField::ShowSpoilers => self.show_spoilers = from.show_spoilers,
            PreferenceField::AutoPlayVideos => self.auto_play_videos = from.auto_play_videos,
        }
    }

    /// Whether this layer's value of `field` is what `preferences` hold (false when the
    /// layer inherits it).
    pub fn matches(&self, field: PreferenceField, preferences: &Preferences) -> bool {
        self.has(field) && {
            let mut applied = preferences.clone();
            self.apply_field(field, &mut applied);
            &applied == preferences
        }
    }

    /// Writes this layer's value of `field`, if it sets one, into `preferences`.
    pub fn apply_field(&self, field: PreferenceField, preferences: &mut Preferences) {
        let p = preferences;
        match field {
            PreferenceField::EmailNotifications => {
                set(&mut p.email_notifications, &self.email_notifications)
            }
            PreferenceField::PushNotifications => {
                set(&mut p.push_notifications, &self.push_notifications)
            }
            PreferenceField::DigestNotifications => {
                set(&mut p.digest_notifications, &self.digest_notifications)
            }
            PreferenceField::ProfileVisibility => {
                set(&mut p.profile_visibility, &self.profile_visibility)
            }
            PreferenceField::ShowEmail => set(&mut p.show_email, &self.show_email),
            PreferenceField::ShowActivity => set(&mut p.show_activity, &self.show_activity),
            PreferenceField::Theme => set(&mut p.theme, &self.theme),
            PreferenceField::DisplayLanguage => {
                set(&mut p.display_language, &self.display_language)
            }
            PreferenceField::ContentLanguage => {
                if let Some(v) = &self.content_language {
                    p.content_language = Some(v.clone());
                }
            }
            PreferenceField::ShowAdultContent => {
                set(&mut p.show_adult_content, &self.show_adult_content)
            }
            PreferenceField::ShowSpoilers => set(&mut p.show_spoilers, &self.show_spoilers),
            PreferenceField::AutoPlayVideos => set(&mut p.auto_play_videos, &self.auto_play_videos),
        }
    }

    /// These overrides on top of `base`.
    pub fn apply(&self, mut base: Preferences) -> Preferences {
        for field in PreferenceField::ALL {
            self.apply_field(field, &mut base);
        }
        base
    }

    /// Sets `field` from a client's (non-null) value.
    fn set(&mut self, field: PreferenceField, value: &Value) -> Result<(), ValidationErrors> {
        let name = field.as_str();
        let single = ValidationErrors::single;
        match field {
            PreferenceField::EmailNotifications
            | PreferenceField::PushNotifications
            | PreferenceField::DigestNotifications => {
                let channel = field.channel().unwrap_or(Channel::Email);
                let parsed = Some(NotificationPrefs::parse(value, channel)?);
                match channel {
                    Channel::Email => self.email_notifications = parsed,
                    Channel::Push => self.push_notifications = parsed,
                    Channel::Digest => self.digest_notifications = parsed,
                }
            }
            PreferenceField::ProfileVisibility => {
                self.profile_visibility = Some(
                    string(value, name)
                        .and_then(|s| ProfileVisibility::parse(s, name))
                        .map_err(single)?,
                );
            }
            PreferenceField::Theme => {
                self.theme = Some(
                    string(value, name)
                        .and_then(|s| Theme::parse(s, name))
                        .map_err(single)?,
                );
            }
            PreferenceField::DisplayLanguage => {
                self.display_language = Some(
                    string(value, name)
                        .and_then(|s| LanguageTag::parse(s, super::MAX_DISPLAY_LANGUAGE_LEN, name))
                        .map_err(single)?,
                );
            }
            PreferenceField::ContentLanguage => {
                self.content_language = Some(
                    string(value, name)
                        .and_then(ContentLanguages::parse)
                        .map_err(single)?,
                );
            }
            PreferenceField::ShowEmail => self.show_email = Some(boolean(value, name)?),
            PreferenceField::ShowActivity => self.show_activity = Some(boolean(value, name)?),
            PreferenceField::ShowAdultContent => {
                self.show_adult_content = Some(boolean(value, name)?);
            }
            PreferenceField::ShowSpoilers => self.show_spoilers = Some(boolean(value, name)?),
            PreferenceField::AutoPlayVideos => self.auto_play_videos = Some(boolean(value, name)?),
        }
        Ok(())
    }
}

fn set<T: Clone>(slot: &mut T, value: &Option<T>) {
    if let Some(v) = value {
        *slot = v.clone();
    }
}

fn channel_of(preferences: &Preferences, channel: Channel) -> &NotificationPrefs {
    match channel {
        Channel::Email => &preferences.email_notifications,
        Channel::Push => &preferences.push_notifications,
        Channel::Digest => &preferences.digest_notifications,
    }
}

fn string<'a>(value: &'a Value, field: &str) -> Result<&'a str, FieldError> {
    value
        .as_str()
        .ok_or_else(|| FieldError::new(field, "invalid_type", "must be a string"))
}

fn boolean(value: &Value, field: &str) -> Result<bool, ValidationErrors> {
    value.as_bool().ok_or_else(|| {
        ValidationErrors::single(FieldError::new(
            field,
            "invalid_type",
            "must be true or false",
        ))
    })
}

/// The deployment layer of the preferences: the fields an operator sets and those enforced
/// (an enforced field without a deployment value enforces the builtin default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeploymentPreferences {
    /// The values every user inherits.
    pub values: PreferenceOverrides,
    /// The fields that win over the user's and the device's own.
    pub enforced: BTreeSet<PreferenceField>,
}

/// Effective preferences and the layer each field comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedPreferences {
    /// The values in effect.
    pub preferences: Preferences,
    /// Where each field's value comes from.
    pub sources: BTreeMap<PreferenceField, Layer>,
}

/// Resolves every field across builtin, deployment, user and (when given) device.
pub fn resolve_preferences(
    deployment: &DeploymentPreferences,
    user: &PreferenceOverrides,
    device: Option<&PreferenceOverrides>,
) -> ResolvedPreferences {
    let mut preferences = Preferences::default();
    let mut sources = BTreeMap::new();
    for field in PreferenceField::ALL {
        let enforced = deployment.enforced.contains(&field);
        let layers = Layers {
            builtin: Some(Layer::Builtin),
            deployment: (deployment.values.has(field) || enforced).then(|| DeploymentEntry {
                value: deployment.values.has(field).then_some(Layer::Deployment),
                enforced,
            }),
            user: user.has(field).then_some(Layer::User),
            device: device.filter(|d| d.has(field)).map(|_| Layer::Device),
        };
        let source = layers.resolve().map_or(Layer::Builtin, |e| e.value);
        match source {
            Layer::Builtin => {}
            Layer::Deployment => deployment.values.apply_field(field, &mut preferences),
            Layer::User => user.apply_field(field, &mut preferences),
            Layer::Device => {
                if let Some(device) = device {
                    device.apply_field(field, &mut preferences);
                }
            }
        }
        sources.insert(field, source);
    }
    ResolvedPreferences {
        preferences,
        sources,
    }
}

/// The first enforced field whose value in this layer a write would change from `current` to
/// `next`; `None` when the write leaves every enforced field as stored.
pub fn changed_enforced_field(
    deployment: &DeploymentPreferences,
    current: &PreferenceOverrides,
    next: &PreferenceOverrides,
) -> Option<PreferenceField> {
    deployment
        .enforced
        .iter()
        .copied()
        .find(|field| !current.same(next, *field))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn layer(document: Value) -> PreferenceOverrides {
        PreferenceOverrides::from_document(&document).unwrap()
    }

    fn deployment(values: Value, enforced: &[PreferenceField]) -> DeploymentPreferences {
        DeploymentPreferences {
            values: layer(values),
            enforced: enforced.iter().copied().collect(),
        }
    }

    #[test]
    fn every_field_names_its_source() {
        let resolved = resolve_preferences(
            &deployment(json!({"theme": "dark", "show_spoilers": true}), &[]),
            &layer(json!({"show_spoilers": false, "display_language": "de"})),
            Some(&layer(json!({"display_language": "fr"}))),
        );
        let source = |f| resolved.sources[&f];
        assert_eq!(source(PreferenceField::Theme), Layer::Deployment);
        assert_eq!(source(PreferenceField::ShowSpoilers), Layer::User);
        assert_eq!(source(PreferenceField::DisplayLanguage), Layer::Device);
        assert_eq!(source(PreferenceField::AutoPlayVideos), Layer::Builtin);
        assert_eq!(resolved.sources.len(), PreferenceField::ALL.len());
        let p = resolved.preferences;
        assert_eq!((p.theme, p.show_spoilers), (Theme::Dark, false));
        assert_eq!(p.display_language.as_str(), "fr");
    }

    #[test]
    fn an_enforced_field_wins_and_without_a_value_enforces_the_builtin_default() {
        let resolved = resolve_preferences(
            &deployment(
                json!({"theme": "dark"}),
                &[PreferenceField::Theme, PreferenceField::ShowSpoilers],
            ),
            &layer(json!({"theme": "light", "show_spoilers": true})),
            None,
        );
        assert_eq!(resolved.preferences.theme, Theme::Dark);
        assert_eq!(resolved.sources[&PreferenceField::Theme], Layer::Deployment);
        assert!(!resolved.preferences.show_spoilers);
        assert_eq!(
            resolved.sources[&PreferenceField::ShowSpoilers],
            Layer::Builtin
        );
    }

    #[test]
    fn null_in_a_merge_patch_makes_a_field_inherit() {
        let current = layer(json!({"theme": "dark", "show_email": true}));
        let next = current
            .merge_patch(&json!({"theme": null}), &Preferences::default())
            .unwrap();
        assert_eq!(next.fields(), [PreferenceField::ShowEmail]);
    }

    #[test]
    fn a_channel_object_merges_onto_what_the_caller_sees() {
        let seen = Preferences::default();
        let next = PreferenceOverrides::default()
            .merge_patch(
                &json!({"email_notifications": {"frequency": "daily"}}),
                &seen,
            )
            .unwrap();
        let email = next.apply(seen).email_notifications.to_value();
        assert_eq!(email, json!({"enabled": true, "frequency": "daily"}));
    }

    #[test]
    fn a_write_that_leaves_enforced_fields_as_stored_changes_none() {
        let enforced = deployment(json!({}), &[PreferenceField::Theme]);
        let current = layer(json!({"theme": "light"}));
        assert_eq!(
            changed_enforced_field(&enforced, &current, &layer(json!({"theme": "light"}))),
            None
        );
        assert_eq!(
            changed_enforced_field(&enforced, &current, &layer(json!({}))),
            Some(PreferenceField::Theme)
        );
    }

    #[test]
    fn unknown_members_are_reported_and_read_only_ones_ignored() {
        let errors = PreferenceOverrides::from_document(&json!({
            "colour": "red", "theme": "blue", "sources": {}, "version": 3
        }))
        .unwrap_err();
        let mut fields: Vec<_> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(fields, ["colour", "theme"]);
    }
}
