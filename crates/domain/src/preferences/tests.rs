//! Tests of the preferences document: defaults, validation, replace and merge-patch.

use serde_json::json;

use super::*;

fn codes(errors: &crate::ValidationErrors) -> Vec<(String, &'static str)> {
    errors
        .errors()
        .iter()
        .map(|e| (e.field.clone(), e.code))
        .collect()
}

#[test]
fn defaults_are_the_documented_ones() {
    let doc = Preferences::default().to_document();
    assert_eq!(
        doc,
        json!({
            "email_notifications": {"enabled": true, "frequency": "instant"},
            "push_notifications": {"enabled": false},
            "digest_notifications": {"enabled": true, "frequency": "weekly"},
            "profile_visibility": "private",
            "show_email": false,
            "show_activity": true,
            "theme": "system",
            "display_language": "en-US",
            "content_language": null,
            "show_adult_content": false,
            "show_spoilers": false,
            "auto_play_videos": true
        })
    );
}

#[test]
fn replace_fills_omitted_fields_with_defaults() {
    let prefs = Preferences::replace_with(&json!({"theme": "dark"})).unwrap();
    assert_eq!(prefs.theme, Theme::Dark);
    assert_eq!(prefs.profile_visibility, ProfileVisibility::Private);
    assert!(prefs.auto_play_videos);
}

#[test]
fn replace_reports_every_invalid_field() {
    let errors = Preferences::replace_with(&json!({
        "theme": "blue",
        "profile_visibility": "everyone",
        "display_language": "en_GB",
        "show_email": "yes",
        "email_notifications": {"frequency": "hourly"},
        "colour": "red"
    }))
    .unwrap_err();
    let mut found = codes(&errors);
    found.sort();
    assert_eq!(
        found,
        vec![
            ("colour".to_owned(), "unknown_field"),
            ("display_language".to_owned(), "invalid_language_tag"),
            ("email_notifications.frequency".to_owned(), "invalid_value"),
            ("profile_visibility".to_owned(), "invalid_value"),
            ("show_email".to_owned(), "invalid_type"),
            ("theme".to_owned(), "invalid_value"),
        ]
    );
}

#[test]
fn replace_ignores_read_only_members_echoed_from_a_get() {
    let prefs =
        Preferences::replace_with(&json!({"version": 4, "updated_at": "x", "theme": "light"}));
    assert_eq!(prefs.unwrap().theme, Theme::Light);
}

#[test]
fn document_must_be_an_object() {
    let errors = Preferences::replace_with(&json!(["theme"])).unwrap_err();
    assert_eq!(codes(&errors), vec![(String::new(), "invalid_type")]);
}

#[test]
fn merge_patch_changes_only_named_fields() {
    let current =
        Preferences::replace_with(&json!({"theme": "dark", "show_spoilers": true})).unwrap();
    let next = current.merge_patch(&json!({"show_email": true})).unwrap();
    assert_eq!(next.theme, Theme::Dark);
    assert!(next.show_spoilers);
    assert!(next.show_email);
}

#[test]
fn merge_patch_null_resets_a_field_to_its_default() {
    let current =
        Preferences::replace_with(&json!({"theme": "dark", "content_language": "en,de"})).unwrap();
    let next = current
        .merge_patch(&json!({"theme": null, "content_language": null}))
        .unwrap();
    assert_eq!(next.theme, Theme::System);
    assert_eq!(next.content_language, None);
}

#[test]
fn merge_patch_merges_nested_notification_objects() {
    let current = Preferences::replace_with(&json!({
        "email_notifications": {"enabled": true, "frequency": "daily", "types": {"new_episodes": true, "friend_activity": false}}
    }))
    .unwrap();
    let next = current
        .merge_patch(&json!({"email_notifications": {"types": {"friend_activity": true, "new_episodes": null}}}))
        .unwrap();
    let email = &next.email_notifications;
    assert_eq!(email.frequency(), Some(Frequency::Daily));
    assert_eq!(email.types().get("friend_activity"), Some(&true));
    assert_eq!(email.types().get("new_episodes"), None);
}

#[test]
fn merge_patch_removes_any_type_name_and_bounds_how_many_it_names() {
    let current = Preferences::default();
    // Removing a type that is not there (whatever its name) changes nothing.
    let next = current
        .merge_patch(&json!({"digest_notifications": {"types": {"Not A Type": null}}}))
        .unwrap();
    assert_eq!(next, current);

    let many: serde_json::Map<String, serde_json::Value> = (0..=MAX_TYPES)
        .map(|i| (format!("t{i}"), serde_json::Value::Null))
        .collect();
    let errors = current
        .merge_patch(&json!({"digest_notifications": {"types": many}}))
        .unwrap_err();
    assert_eq!(
        codes(&errors),
        vec![("digest_notifications.types".to_owned(), "too_many")]
    );
}

#[test]
fn merge_patch_versus_replace_on_the_same_input() {
    let current =
        Preferences::replace_with(&json!({"theme": "dark", "show_spoilers": true})).unwrap();
    let input = json!({"show_email": true});
    let patched = current.merge_patch(&input).unwrap();
    let replaced = Preferences::replace_with(&input).unwrap();
    assert!(patched.show_spoilers, "patch keeps unnamed fields");
    assert!(!replaced.show_spoilers, "replace resets unnamed fields");
}

#[test]
fn merge_patch_with_invalid_value_is_rejected() {
    let err = Preferences::default()
        .merge_patch(&json!({"digest_notifications": {"enabled": "often"}}))
        .unwrap_err();
    assert_eq!(
        codes(&err),
        vec![("digest_notifications.enabled".to_owned(), "invalid_type")]
    );
}

#[test]
fn only_push_notifications_carry_device_tokens() {
    let ok = Preferences::replace_with(&json!({"push_notifications": {"enabled": true, "device_tokens": ["fcm_1", "fcm_2", "fcm_1"]}}))
        .unwrap();
    assert_eq!(ok.push_notifications.device_tokens(), ["fcm_1", "fcm_2"]);
    let err = Preferences::replace_with(&json!({"email_notifications": {"device_tokens": ["x"]}}))
        .unwrap_err();
    assert_eq!(
        codes(&err),
        vec![(
            "email_notifications.device_tokens".to_owned(),
            "not_allowed"
        )]
    );
}

#[test]
fn device_tokens_are_bounded() {
    let tokens: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
    let err = Preferences::replace_with(&json!({"push_notifications": {"device_tokens": tokens}}))
        .unwrap_err();
    assert_eq!(
        codes(&err),
        vec![("push_notifications.device_tokens".to_owned(), "too_many")]
    );
}

#[test]
fn notification_type_names_are_checked() {
    let err = Preferences::replace_with(
        &json!({"email_notifications": {"types": {"New Episodes": true}}}),
    )
    .unwrap_err();
    assert_eq!(err.errors()[0].code, "invalid_name");
}

#[test]
fn privacy_part_round_trips() {
    let mut prefs = Preferences::default();
    prefs.set_privacy(PrivacyPrefs {
        profile_visibility: ProfileVisibility::Friends,
        show_email: true,
        show_activity: false,
    });
    assert_eq!(
        prefs.privacy().profile_visibility,
        ProfileVisibility::Friends
    );
    assert!(prefs.show_email && !prefs.show_activity);
}

#[test]
fn document_round_trips_through_replace() {
    let prefs = Preferences::replace_with(&json!({
        "theme": "light",
        "content_language": "ja,en",
        "push_notifications": {"enabled": true, "types": {"live_streams": true}, "device_tokens": ["a"]}
    }))
    .unwrap();
    assert_eq!(
        Preferences::replace_with(&prefs.to_document()).unwrap(),
        prefs
    );
}
