//! `PgPreferencesRepository`: full-row writes with optimistic concurrency and provisioning.

use adapter_postgres::{PgPreferencesRepository, Provisioning, testing::TestDatabase};
use domain::{
    ports::{PreferencesRepository, PreferencesWriteError},
    preferences::{Preferences, Theme},
    settings::Precondition,
};
use serde_json::json;

use crate::support::{insert_user, new_user, preferences_repo};

/// Preferences that differ from the defaults in every column.
fn customised() -> Preferences {
    Preferences::replace_with(&json!({
        "email_notifications": {"enabled": false, "frequency": "daily",
                                "types": {"new_episodes": true, "friend_activity": false}},
        "push_notifications": {"enabled": true, "frequency": "instant",
                               "device_tokens": ["token-1", "token-2"]},
        "digest_notifications": {"enabled": false},
        "profile_visibility": "friends",
        "show_email": true,
        "show_activity": false,
        "theme": "dark",
        "display_language": "de-CH",
        "content_language": "de,en,ja",
        "show_adult_content": true,
        "show_spoilers": true,
        "auto_play_videos": false
    }))
    .unwrap()
}

#[tokio::test]
async fn get_without_a_row_is_none() {
    let db = TestDatabase::create().await;
    let repo = preferences_repo(&db);

    assert_eq!(repo.get(new_user()).await.unwrap(), None);
}

#[tokio::test]
async fn every_column_round_trips() {
    let db = TestDatabase::create().await;
    let repo = preferences_repo(&db);
    let user = new_user();

    let stored = repo
        .upsert(user, &customised(), Precondition::Absent)
        .await
        .unwrap();

    assert_eq!(stored.version, 1);
    assert_eq!(stored.preferences, customised());
    assert!(stored.created_at.is_some() && stored.updated_at.is_some());
    assert_eq!(repo.get(user).await.unwrap(), Some(stored));
}

#[tokio::test]
async fn defaults_round_trip() {
    let db = TestDatabase::create().await;
    let repo = preferences_repo(&db);
    let user = new_user();

    repo.upsert(user, &Preferences::default(), Precondition::Version(0))
        .await
        .unwrap();

    let stored = repo.get(user).await.unwrap().unwrap();
    assert_eq!(stored.preferences, Preferences::default());
}

#[tokio::test]
async fn update_with_the_current_version_increments_it() {
    let db = TestDatabase::create().await;
    let repo = preferences_repo(&db);
    let user = new_user();
    repo.upsert(user, &Preferences::default(), Precondition::Version(0))
        .await
        .unwrap();

    let stored = repo
        .upsert(user, &customised(), Precondition::Version(1))
        .await
        .unwrap();

    assert_eq!(stored.version, 2);
    assert_eq!(stored.preferences.theme, Theme::Dark);
}

#[tokio::test]
async fn update_with_a_stale_version_is_a_conflict_that_names_the_current_one() {
    let db = TestDatabase::create().await;
    let repo = preferences_repo(&db);
    let user = new_user();
    repo.upsert(user, &Preferences::default(), Precondition::Any)
        .await
        .unwrap();
    repo.upsert(user, &customised(), Precondition::Any)
        .await
        .unwrap();

    let result = repo
        .upsert(user, &Preferences::default(), Precondition::Version(1))
        .await;

    assert!(matches!(
        result,
        Err(PreferencesWriteError::VersionConflict { current: 2 })
    ));
    assert_eq!(
        repo.get(user).await.unwrap().unwrap().preferences,
        customised()
    );
}

#[tokio::test]
async fn create_when_a_row_exists_is_a_conflict() {
    let db = TestDatabase::create().await;
    let repo = preferences_repo(&db);
    let user = new_user();
    repo.upsert(user, &Preferences::default(), Precondition::Absent)
        .await
        .unwrap();

    let absent = repo.upsert(user, &customised(), Precondition::Absent).await;
    let version_zero = repo
        .upsert(user, &customised(), Precondition::Version(0))
        .await;

    assert!(matches!(
        absent,
        Err(PreferencesWriteError::VersionConflict { current: 1 })
    ));
    assert!(matches!(
        version_zero,
        Err(PreferencesWriteError::VersionConflict { current: 1 })
    ));
}

#[tokio::test]
async fn update_with_a_version_but_no_row_is_a_conflict_at_version_zero() {
    let db = TestDatabase::create().await;
    let repo = preferences_repo(&db);

    let result = repo
        .upsert(new_user(), &customised(), Precondition::Version(3))
        .await;

    assert!(matches!(
        result,
        Err(PreferencesWriteError::VersionConflict { current: 0 })
    ));
}

#[tokio::test]
async fn unchanged_write_keeps_the_version() {
    let db = TestDatabase::create().await;
    let repo = preferences_repo(&db);
    let user = new_user();
    let first = repo
        .upsert(user, &customised(), Precondition::Any)
        .await
        .unwrap();

    let any = repo
        .upsert(user, &customised(), Precondition::Any)
        .await
        .unwrap();
    let versioned = repo
        .upsert(user, &customised(), Precondition::Version(1))
        .await
        .unwrap();

    assert_eq!(any, first);
    assert_eq!(versioned, first);
}

#[tokio::test]
async fn concurrent_updates_with_the_same_version_let_exactly_one_win() {
    let db = TestDatabase::create().await;
    let repo = preferences_repo(&db);
    let user = new_user();
    repo.upsert(user, &Preferences::default(), Precondition::Any)
        .await
        .unwrap();

    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let repo = repo.clone();
            tokio::spawn(async move {
                let mut next = customised();
                next.show_email = i % 2 == 0;
                next.display_language = Preferences::replace_with(
                    &json!({"display_language": format!("en-{}", 10 + i)}),
                )
                .unwrap()
                .display_language;
                repo.upsert(user, &next, Precondition::Version(1)).await
            })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(stored) => {
                wins += 1;
                assert_eq!(stored.version, 2);
            }
            Err(PreferencesWriteError::VersionConflict { current: 2 }) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }

    assert_eq!(wins, 1);
}

#[tokio::test]
async fn external_provisioning_refuses_unknown_users() {
    let db = TestDatabase::create().await;
    let repo = PgPreferencesRepository::new(db.pool().clone(), Provisioning::External);
    let user = new_user();

    let any = repo.upsert(user, &customised(), Precondition::Any).await;
    let absent = repo.upsert(user, &customised(), Precondition::Absent).await;

    assert!(matches!(any, Err(PreferencesWriteError::UserNotFound)));
    assert!(matches!(absent, Err(PreferencesWriteError::UserNotFound)));
}

#[tokio::test]
async fn external_provisioning_accepts_known_users() {
    let db = TestDatabase::create().await;
    let repo = PgPreferencesRepository::new(db.pool().clone(), Provisioning::External);
    let user = new_user();
    insert_user(&db, user).await;

    let stored = repo
        .upsert(user, &customised(), Precondition::Any)
        .await
        .unwrap();

    assert_eq!(stored.version, 1);
}
