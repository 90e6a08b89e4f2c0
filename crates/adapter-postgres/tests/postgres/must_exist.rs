//! `Precondition::Exists` (`If-Match: *`): writes and deletes that need a row, at any version.

use adapter_postgres::testing::TestDatabase;
use domain::{
    ports::{
        PreferencesRepository, PreferencesWriteError, SettingDeleteError, SettingWriteError,
        SettingsRepository,
    },
    preferences::{PreferenceOverrides, Preferences, Theme},
    settings::Precondition,
};
use serde_json::json;

use crate::support::{key, new_user, preferences_repo, quota, settings_repo, write};

const MAX: u32 = 1000;

#[tokio::test]
async fn a_setting_that_must_exist_is_not_created() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();

    let result = repo
        .upsert(
            user,
            &write("ui.theme", json!("dark")),
            Precondition::Exists,
            quota(MAX),
        )
        .await;

    assert!(matches!(
        result,
        Err(SettingWriteError::VersionConflict { current: None })
    ));
    assert_eq!(repo.get(user, &key("ui.theme")).await.unwrap(), None);
}

#[tokio::test]
async fn a_setting_that_must_exist_is_updated_at_any_version() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let first = repo
        .upsert(
            user,
            &write("ui.theme", json!("dark")),
            Precondition::Any,
            quota(MAX),
        )
        .await
        .unwrap();

    let second = repo
        .upsert(
            user,
            &write("ui.theme", json!("light")),
            Precondition::Exists,
            quota(MAX),
        )
        .await
        .unwrap();

    assert!(!second.created);
    assert!(second.setting.version > first.setting.version);
    assert_eq!(second.setting.value, json!("light"));
}

#[tokio::test]
async fn an_unchanged_write_that_must_exist_keeps_the_version() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let first = repo
        .upsert(
            user,
            &write("ui.theme", json!("dark")),
            Precondition::Any,
            quota(MAX),
        )
        .await
        .unwrap();

    let again = repo
        .upsert(
            user,
            &write("ui.theme", json!("dark")),
            Precondition::Exists,
            quota(MAX),
        )
        .await
        .unwrap();

    assert_eq!(again.setting.version, first.setting.version);
}

#[tokio::test]
async fn a_delete_that_must_exist_removes_the_setting() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    repo.upsert(
        user,
        &write("ui.theme", json!("dark")),
        Precondition::Any,
        quota(MAX),
    )
    .await
    .unwrap();

    repo.delete(
        user,
        &key("ui.theme"),
        Precondition::Exists,
        domain::history::ChangeOrigin::User,
    )
    .await
    .unwrap();

    assert_eq!(repo.get(user, &key("ui.theme")).await.unwrap(), None);
}

#[tokio::test]
async fn a_delete_that_must_exist_of_an_absent_setting_is_not_found() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);

    let result = repo
        .delete(
            new_user(),
            &key("ui.theme"),
            Precondition::Exists,
            domain::history::ChangeOrigin::User,
        )
        .await;

    assert!(matches!(result, Err(SettingDeleteError::NotFound)));
}

#[tokio::test]
async fn preferences_that_must_exist_are_not_created_from_the_defaults() {
    let db = TestDatabase::create().await;
    let repo = preferences_repo(&db);
    let user = new_user();

    let result = repo
        .upsert(
            user,
            &PreferenceOverrides::default(),
            Precondition::Exists,
            domain::history::ChangeOrigin::User,
        )
        .await;

    assert!(matches!(
        result,
        Err(PreferencesWriteError::VersionConflict { current: 0 })
    ));
    assert_eq!(repo.get(user).await.unwrap(), None);
}

#[tokio::test]
async fn stored_preferences_that_must_exist_are_updated_at_any_version() {
    let db = TestDatabase::create().await;
    let repo = preferences_repo(&db);
    let user = new_user();
    let first = repo
        .upsert(
            user,
            &PreferenceOverrides::default(),
            Precondition::Any,
            domain::history::ChangeOrigin::User,
        )
        .await
        .unwrap();
    let dark = PreferenceOverrides::from_document(&json!({"theme": "dark"})).unwrap();

    let stored = repo
        .upsert(
            user,
            &dark,
            Precondition::Exists,
            domain::history::ChangeOrigin::User,
        )
        .await
        .unwrap();

    assert!(stored.version > first.version);
    assert_eq!(
        stored.overrides.apply(Preferences::default()).theme,
        Theme::Dark
    );
}
