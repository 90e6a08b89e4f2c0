//! Parsing a client's preferences document into validated `Preferences`, collecting every error.

use serde_json::Value;

use super::{
    Channel, ContentLanguages, LanguageTag, NotificationPrefs, Preferences, ProfileVisibility,
    Theme, language::MAX_DISPLAY_LANGUAGE_LEN,
};
use crate::error::{FieldError, ValidationErrors};

/// Read-only members a client may echo back from a GET; they are ignored, not rejected.
const READ_ONLY: &[&str] = &["user_id", "version", "created_at", "updated_at"];

/// Parses a full document; omitted and `null` members take their defaults.
pub(super) fn parse(document: &Value) -> Result<Preferences, ValidationErrors> {
    let Value::Object(map) = document else {
        return Err(ValidationErrors::single(FieldError::new(
            "",
            "invalid_type",
            "the preferences must be a JSON object",
        )));
    };
    let mut prefs = Preferences::default();
    let mut errors = ValidationErrors::new();
    for (name, value) in map {
        if value.is_null() || READ_ONLY.contains(&name.as_str()) {
            continue;
        }
        let field = name.as_str();
        match field {
            "email_notifications" => set_channel(
                &mut prefs.email_notifications,
                value,
                Channel::Email,
                &mut errors,
            ),
            "push_notifications" => set_channel(
                &mut prefs.push_notifications,
                value,
                Channel::Push,
                &mut errors,
            ),
            "digest_notifications" => set_channel(
                &mut prefs.digest_notifications,
                value,
                Channel::Digest,
                &mut errors,
            ),
            "profile_visibility" => {
                if let Some(v) = errors
                    .collect(string(value, field).and_then(|s| ProfileVisibility::parse(s, field)))
                {
                    prefs.profile_visibility = v;
                }
            }
            "theme" => {
                if let Some(v) =
                    errors.collect(string(value, field).and_then(|s| Theme::parse(s, field)))
                {
                    prefs.theme = v;
                }
            }
            "display_language" => {
                let parsed = string(value, field)
                    .and_then(|s| LanguageTag::parse(s, MAX_DISPLAY_LANGUAGE_LEN, field));
                if let Some(v) = errors.collect(parsed) {
                    prefs.display_language = v;
                }
            }
            "content_language" => {
                let parsed = string(value, field).and_then(ContentLanguages::parse);
                if let Some(v) = errors.collect(parsed) {
                    prefs.content_language = Some(v);
                }
            }
            "show_email" => set_bool(&mut prefs.show_email, value, field, &mut errors),
            "show_activity" => set_bool(&mut prefs.show_activity, value, field, &mut errors),
            "show_adult_content" => {
                set_bool(&mut prefs.show_adult_content, value, field, &mut errors)
            }
            "show_spoilers" => set_bool(&mut prefs.show_spoilers, value, field, &mut errors),
            "auto_play_videos" => set_bool(&mut prefs.auto_play_videos, value, field, &mut errors),
            _ => errors.push(FieldError::new(field, "unknown_field", "unknown field")),
        }
    }
    errors.into_result(prefs)
}

fn set_channel(
    slot: &mut NotificationPrefs,
    value: &Value,
    channel: Channel,
    errors: &mut ValidationErrors,
) {
    match NotificationPrefs::parse(value, channel) {
        Ok(parsed) => *slot = parsed,
        Err(e) => errors.extend(e),
    }
}

fn set_bool(slot: &mut bool, value: &Value, field: &str, errors: &mut ValidationErrors) {
    match value {
        Value::Bool(b) => *slot = *b,
        _ => errors.push(FieldError::new(
            field,
            "invalid_type",
            "must be true or false",
        )),
    }
}

fn string<'a>(value: &'a Value, field: &str) -> Result<&'a str, FieldError> {
    value
        .as_str()
        .ok_or_else(|| FieldError::new(field, "invalid_type", "must be a string"))
}
