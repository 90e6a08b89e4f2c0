//! Preferences service: defaults, replace, merge-patch with preconditions, field updates.

use mockall::Sequence;
use serde_json::json;
use time::OffsetDateTime;

use super::{admin, user};
use crate::{
    audit::AuditAction,
    ports::{MockAuditLog, MockPreferencesRepository, PreferencesWriteError},
    preferences::{
        Channel, PreferenceOverrides, Preferences, PrivacyPrefs, ProfileVisibility,
        StoredPreferences, Theme,
    },
    services::{EffectivePreferences, PreferencesError, PreferencesService},
    settings::Precondition,
};

fn stored(overrides: PreferenceOverrides, version: i64) -> StoredPreferences {
    StoredPreferences {
        user_id: user(),
        overrides,
        version,
        created_at: Some(OffsetDateTime::UNIX_EPOCH),
        updated_at: Some(OffsetDateTime::UNIX_EPOCH),
    }
}

/// A user layer that sets the theme to dark.
fn dark() -> PreferenceOverrides {
    PreferenceOverrides::from_document(&json!({"theme": "dark"})).unwrap()
}

/// What a user with only the layer `p` reads.
fn seen(p: &PreferenceOverrides) -> Preferences {
    p.apply(Preferences::default())
}

/// A store holding `current` at version 1 that expects one write, conditioned on that
/// version, of preferences satisfying `check`.
fn store_expecting(
    current: PreferenceOverrides,
    check: impl Fn(&Preferences) -> bool + Send + 'static,
) -> MockPreferencesRepository {
    let mut repo = MockPreferencesRepository::new();
    repo.expect_get()
        .returning(move |_| Ok(Some(stored(current.clone(), 1))));
    repo.expect_upsert()
        .withf(move |_, p, e, _| *e == Precondition::Version(1) && check(&seen(p)))
        .times(1)
        .returning(|_, p, _, _| Ok(stored(p.clone(), 2)));
    repo
}

/// The fields the validation errors of `result` name, sorted.
fn invalid_fields(result: Result<EffectivePreferences, PreferencesError>) -> Vec<String> {
    match result {
        Err(PreferencesError::Validation(e)) => {
            let mut fields: Vec<_> = e.errors().iter().map(|e| e.field.clone()).collect();
            fields.sort();
            fields
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn user_without_row_reads_defaults_at_version_zero() {
    let mut repo = MockPreferencesRepository::new();
    repo.expect_get().returning(|_| Ok(None));
    let svc = PreferencesService::new(repo, MockAuditLog::new());
    let prefs = svc.get(user()).await.unwrap();
    assert_eq!(prefs.version, 0);
    assert_eq!(prefs.resolved.preferences, Preferences::default());
}

#[tokio::test]
async fn replace_passes_the_client_precondition() {
    let mut repo = MockPreferencesRepository::new();
    repo.expect_get().returning(|_| Ok(Some(stored(dark(), 4))));
    repo.expect_upsert()
        .withf(|_, p, e, _| {
            let p = seen(p);
            p.theme == Theme::Light && !p.show_spoilers && *e == Precondition::Version(4)
        })
        .times(1)
        .returning(|_, p, _, _| Ok(stored(p.clone(), 5)));
    let svc = PreferencesService::new(repo, MockAuditLog::new());
    let out = svc
        .replace(user(), &json!({"theme": "light"}), Precondition::Version(4))
        .await
        .unwrap();
    assert_eq!(out.version, 5);
}

#[tokio::test]
async fn replace_with_several_versions_is_conditioned_on_the_current_one() {
    let mut repo = MockPreferencesRepository::new();
    repo.expect_get()
        .returning(|_| Ok(Some(stored(PreferenceOverrides::default(), 4))));
    repo.expect_upsert()
        .withf(|_, _, e, _| *e == Precondition::Version(4))
        .times(1)
        .returning(|_, p, _, _| Ok(stored(p.clone(), 5)));
    let svc = PreferencesService::new(repo, MockAuditLog::new());
    let out = svc
        .replace(
            user(),
            &json!({"theme": "light"}),
            Precondition::VersionIn(vec![2, 4]),
        )
        .await
        .unwrap();
    assert_eq!(out.version, 5);
}

#[tokio::test]
async fn replace_with_several_versions_none_current_writes_nothing() {
    let mut repo = MockPreferencesRepository::new();
    repo.expect_get()
        .returning(|_| Ok(Some(stored(PreferenceOverrides::default(), 4))));
    let svc = PreferencesService::new(repo, MockAuditLog::new());
    let err = svc
        .replace(
            user(),
            &json!({"theme": "light"}),
            Precondition::VersionIn(vec![2, 3]),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        PreferencesError::VersionConflict { current: 4 }
    ));
}

#[tokio::test]
async fn invalid_replace_writes_nothing() {
    let svc = PreferencesService::new(MockPreferencesRepository::new(), MockAuditLog::new());
    let err = svc
        .replace(user(), &json!({"theme": 1}), Precondition::Any)
        .await
        .unwrap_err();
    assert!(matches!(err, PreferencesError::Validation(_)));
}

#[tokio::test]
async fn patch_writes_against_the_version_it_read() {
    let mut repo = MockPreferencesRepository::new();
    repo.expect_get().returning(|_| Ok(Some(stored(dark(), 7))));
    repo.expect_upsert()
        .withf(|_, p, e, _| {
            seen(p).theme == Theme::Dark && seen(p).show_email && *e == Precondition::Version(7)
        })
        .times(1)
        .returning(|_, p, _, _| Ok(stored(p.clone(), 8)));
    let svc = PreferencesService::new(repo, MockAuditLog::new());
    let out = svc
        .patch(user(), &json!({"show_email": true}), Precondition::Any)
        .await
        .unwrap();
    assert_eq!(out.version, 8);
}

#[tokio::test]
async fn patch_with_stale_precondition_conflicts_without_writing() {
    let mut repo = MockPreferencesRepository::new();
    repo.expect_get().returning(|_| Ok(Some(stored(dark(), 7))));
    let svc = PreferencesService::new(repo, MockAuditLog::new());
    let err = svc
        .patch(
            user(),
            &json!({"show_email": true}),
            Precondition::Version(6),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        PreferencesError::VersionConflict { current: 7 }
    ));
}

#[tokio::test]
async fn patch_without_precondition_retries_a_lost_race_on_fresh_data() {
    let mut seq = Sequence::new();
    let mut repo = MockPreferencesRepository::new();
    repo.expect_get()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(None));
    repo.expect_upsert()
        .withf(|_, _, e, _| *e == Precondition::Version(0))
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, _, _, _| Err(PreferencesWriteError::VersionConflict { current: 1 }));
    repo.expect_get()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(Some(stored(dark(), 1))));
    repo.expect_upsert()
        .withf(|_, p, e, _| {
            seen(p).theme == Theme::Dark && seen(p).show_email && *e == Precondition::Version(1)
        })
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_, p, _, _| Ok(stored(p.clone(), 2)));
    let svc = PreferencesService::new(repo, MockAuditLog::new());
    let out = svc
        .patch(user(), &json!({"show_email": true}), Precondition::Any)
        .await
        .unwrap();
    assert_eq!(out.version, 2);
}

#[tokio::test]
async fn update_theme_rejects_unknown_theme() {
    let svc = PreferencesService::new(MockPreferencesRepository::new(), MockAuditLog::new());
    assert!(matches!(
        svc.update_theme(user(), "blue").await,
        Err(PreferencesError::Validation(_))
    ));
}

#[tokio::test]
async fn update_notifications_replaces_one_channel() {
    let mut repo = MockPreferencesRepository::new();
    repo.expect_get().returning(|_| Ok(Some(stored(dark(), 1))));
    repo.expect_upsert()
        .withf(|_, p, _, _| {
            let p = seen(p);
            p.push_notifications.enabled()
                && p.theme == Theme::Dark
                && p.email_notifications.enabled()
        })
        .returning(|_, p, _, _| Ok(stored(p.clone(), 2)));
    let svc = PreferencesService::new(repo, MockAuditLog::new());
    svc.update_notifications(user(), Channel::Push, &json!({"enabled": true}))
        .await
        .unwrap();
}

#[tokio::test]
async fn initialize_defaults_keeps_existing_preferences() {
    let mut repo = MockPreferencesRepository::new();
    repo.expect_upsert()
        .withf(|_, _, e, _| *e == Precondition::Absent)
        .returning(|_, _, _, _| Err(PreferencesWriteError::VersionConflict { current: 3 }));
    repo.expect_get().returning(|_| Ok(Some(stored(dark(), 3))));
    let svc = PreferencesService::new(repo, MockAuditLog::new());
    let out = svc.initialize_defaults(user()).await.unwrap();
    assert_eq!(out.resolved.preferences.theme, Theme::Dark);
}

#[tokio::test]
async fn admin_read_of_preferences_is_audited() {
    let mut audit = MockAuditLog::new();
    audit
        .expect_record()
        .withf(|e| e.action == AuditAction::AdminRead && e.subject == user())
        .times(1)
        .returning(|_| Ok(()));
    let mut repo = MockPreferencesRepository::new();
    repo.expect_get().returning(|_| Ok(None));
    let svc = PreferencesService::new(repo, audit);
    svc.get_as_admin(&admin(), user()).await.unwrap();
}

#[tokio::test]
async fn update_language_sets_both_languages_and_keeps_the_rest() {
    let repo = store_expecting(dark(), |p| {
        p.display_language.as_str() == "de-CH"
            && p.content_language.as_ref().map(|c| c.as_str()) == Some("de,en")
            && p.theme == Theme::Dark
    });
    let svc = PreferencesService::new(repo, MockAuditLog::new());
    let out = svc
        .update_language(user(), "de-CH", Some("de, en"))
        .await
        .unwrap();
    assert_eq!(out.version, 2);
}

#[tokio::test]
async fn update_language_without_content_languages_keeps_the_stored_ones() {
    let current = PreferenceOverrides::from_document(&json!({"content_language": "ja"})).unwrap();
    let repo = store_expecting(current, |p| {
        p.display_language.as_str() == "fr"
            && p.content_language.as_ref().map(|c| c.as_str()) == Some("ja")
    });
    let svc = PreferencesService::new(repo, MockAuditLog::new());
    svc.update_language(user(), "fr", None).await.unwrap();
}

#[tokio::test]
async fn update_language_reports_both_bad_languages_and_writes_nothing() {
    let svc = PreferencesService::new(MockPreferencesRepository::new(), MockAuditLog::new());
    assert_eq!(
        invalid_fields(
            svc.update_language(user(), "not a tag", Some("en,,de"))
                .await
        ),
        ["content_language", "display_language"]
    );
}

#[tokio::test]
async fn update_privacy_replaces_only_the_privacy_fields() {
    let privacy = PrivacyPrefs {
        profile_visibility: ProfileVisibility::Friends,
        show_email: true,
        show_activity: false,
    };
    let repo = store_expecting(dark(), move |p| {
        p.privacy() == privacy
            && p.theme == Theme::Dark
            && p.email_notifications == Preferences::default().email_notifications
    });
    let svc = PreferencesService::new(repo, MockAuditLog::new());
    let out = svc.update_privacy(user(), privacy).await.unwrap();
    assert_eq!(out.resolved.preferences.privacy(), privacy);
}

#[tokio::test]
async fn update_privacy_retries_a_lost_race_on_fresh_data() {
    let mut repo = MockPreferencesRepository::new();
    let mut order = Sequence::new();
    repo.expect_get()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(Some(stored(PreferenceOverrides::default(), 1))));
    repo.expect_upsert()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _, _| Err(PreferencesWriteError::VersionConflict { current: 2 }));
    repo.expect_get()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(Some(stored(dark(), 2))));
    repo.expect_upsert()
        .withf(|_, p, e, _| {
            *e == Precondition::Version(2) && seen(p).theme == Theme::Dark && seen(p).show_email
        })
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, p, _, _| Ok(stored(p.clone(), 3)));
    let svc = PreferencesService::new(repo, MockAuditLog::new());
    let privacy = PrivacyPrefs {
        show_email: true,
        ..Preferences::default().privacy()
    };
    assert_eq!(
        svc.update_privacy(user(), privacy).await.unwrap().version,
        3
    );
}

/// A deployment layer that sets and enforces the theme `dark`.
fn dark_enforced() -> std::sync::Arc<dyn crate::ports::DefaultsRepository> {
    use crate::{
        defaults::DeploymentDefaults,
        preferences::{DeploymentPreferences, PreferenceField},
    };
    let layer = std::sync::Arc::new(DeploymentDefaults {
        preferences: DeploymentPreferences {
            values: dark(),
            enforced: [PreferenceField::Theme].into(),
        },
        preferences_version: 12,
        ..DeploymentDefaults::default()
    });
    let mut defaults = crate::ports::MockDefaultsRepository::new();
    defaults
        .expect_load()
        .returning(move || Ok(std::sync::Arc::clone(&layer)));
    std::sync::Arc::new(defaults)
}

/// A user layer that set the theme `light` (before the enforcement), at version 3.
fn light_user() -> MockPreferencesRepository {
    let mut repo = MockPreferencesRepository::new();
    repo.expect_get().returning(|_| {
        Ok(Some(stored(
            PreferenceOverrides::from_document(&json!({"theme": "light"})).unwrap(),
            3,
        )))
    });
    repo
}

#[tokio::test]
async fn an_enforced_field_reads_the_deployment_value_and_the_user_value_stays_stored() {
    let svc =
        PreferencesService::new(light_user(), MockAuditLog::new()).with_defaults(dark_enforced());
    let read = svc.get(user()).await.unwrap();
    assert_eq!(read.resolved.preferences.theme, Theme::Dark);
    assert_eq!(read.deployment_version, 12);
    assert!(!read.enforced.is_empty());
}

#[tokio::test]
async fn changing_an_enforced_field_is_refused_without_writing() {
    let svc =
        PreferencesService::new(light_user(), MockAuditLog::new()).with_defaults(dark_enforced());
    for patch in [json!({"theme": "system"}), json!({"theme": null})] {
        let refused = svc.patch(user(), &patch, Precondition::Any).await;
        assert!(
            matches!(refused, Err(PreferencesError::EnforcedByDeployment { .. })),
            "{patch}"
        );
    }
}

#[tokio::test]
async fn echoing_the_enforced_value_or_leaving_it_out_of_a_replace_keeps_the_stored_one() {
    let mut repo = light_user();
    repo.expect_upsert()
        .withf(|_, p, _, _| p.to_document() == json!({"theme": "light", "show_email": true}))
        .times(2)
        .returning(|_, p, _, _| Ok(stored(p.clone(), 4)));
    let svc = PreferencesService::new(repo, MockAuditLog::new()).with_defaults(dark_enforced());
    for document in [
        json!({"theme": "dark", "show_email": true}),
        json!({"show_email": true}),
    ] {
        svc.replace(user(), &document, Precondition::Any)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_device_patch_is_written_over_the_version_it_read_and_retried_on_a_lost_race() {
    use crate::{
        ports::{MockDeviceSettingsRepository, SettingWriteError},
        settings::{Limits, Precondition},
    };
    let stored_device = |document: serde_json::Value, version: i64| {
        Some(stored(
            PreferenceOverrides::from_document(&document).unwrap(),
            version,
        ))
    };
    let mut devices = MockDeviceSettingsRepository::new();
    let mut order = Sequence::new();
    devices
        .expect_preferences()
        .times(1)
        .in_sequence(&mut order)
        .returning(move |_, _| Ok(stored_device(json!({"theme": "dark"}), 3)));
    devices
        .expect_put_preferences()
        .withf(|_, _, _, e, _| *e == Precondition::Version(3))
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _, _, _| Err(SettingWriteError::VersionConflict { current: Some(4) }));
    // Another patch came first: the retry merges into what it wrote.
    devices
        .expect_preferences()
        .times(1)
        .in_sequence(&mut order)
        .returning(move |_, _| {
            Ok(stored_device(
                json!({"theme": "dark", "show_spoilers": true}),
                4,
            ))
        });
    devices
        .expect_put_preferences()
        .withf(|_, _, p, e, _| {
            *e == Precondition::Version(4)
                && p.to_document()
                    == json!({"theme": "dark", "show_spoilers": true, "auto_play_videos": false})
        })
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, p, _, _| Ok(Some(stored(p.clone(), 5))));
    let mut repo = MockPreferencesRepository::new();
    repo.expect_get().returning(|_| Ok(None));
    let svc = PreferencesService::new(repo, MockAuditLog::new())
        .with_devices(std::sync::Arc::new(devices), Limits::default().quota());

    let out = svc
        .patch_device(
            user(),
            "tv",
            &json!({"auto_play_videos": false}),
            Precondition::Any,
        )
        .await
        .unwrap();
    assert_eq!(out.version, 5);
}
