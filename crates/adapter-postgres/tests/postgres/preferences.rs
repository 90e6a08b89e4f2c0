//! `PgPreferencesRepository`: full-row writes with optimistic concurrency and provisioning.

use adapter_postgres::{PgPreferencesRepository, Provisioning, testing::TestDatabase};
use domain::{
    UserId,
    ports::{PreferencesRepository, PreferencesWriteError},
    preferences::{PreferenceOverrides, Preferences, Theme},
    settings::Precondition,
};
use serde_json::json;

use crate::support::{PutPreferences, insert_user, new_user, preferences_repo};

/// Preferences that differ from the defaults in every column.
fn customised() -> PreferenceOverrides {
    PreferenceOverrides::from_document(&json!({
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
        .upsert(
            user,
            &customised(),
            Precondition::Absent,
            domain::history::ChangeOrigin::User,
        )
        .await
        .unwrap();

    assert!(stored.version >= 1, "a stored row is never at version 0");
    assert_eq!(stored.overrides, customised());
    assert!(stored.created_at.is_some() && stored.updated_at.is_some());
    assert_eq!(repo.get(user).await.unwrap(), Some(stored));
}

#[tokio::test]
async fn defaults_round_trip() {
    let db = TestDatabase::create().await;
    let repo = preferences_repo(&db);
    let user = new_user();

    repo.upsert(
        user,
        &PreferenceOverrides::default(),
        Precondition::Version(0),
        domain::history::ChangeOrigin::User,
    )
    .await
    .unwrap();

    let stored = repo.get(user).await.unwrap().unwrap();
    assert_eq!(stored.overrides, PreferenceOverrides::default());
}

#[tokio::test]
async fn update_with_the_current_version_gives_a_new_greater_one() {
    let db = TestDatabase::create().await;
    let repo = preferences_repo(&db);
    let user = new_user();
    let first = repo
        .upsert(
            user,
            &PreferenceOverrides::default(),
            Precondition::Version(0),
            domain::history::ChangeOrigin::User,
        )
        .await
        .unwrap();

    let stored = repo
        .upsert(
            user,
            &customised(),
            Precondition::Version(first.version),
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

#[tokio::test]
async fn update_with_a_stale_version_is_a_conflict_that_names_the_current_one() {
    let db = TestDatabase::create().await;
    let repo = preferences_repo(&db);
    let user = new_user();
    let first = repo.put(user, &PreferenceOverrides::default()).await;
    let second = repo.put(user, &customised()).await;

    let result = repo
        .upsert(
            user,
            &PreferenceOverrides::default(),
            Precondition::Version(first.version),
            domain::history::ChangeOrigin::User,
        )
        .await;

    assert!(matches!(
        result,
        Err(PreferencesWriteError::VersionConflict { current }) if current == second.version
    ));
    assert_eq!(
        repo.get(user).await.unwrap().unwrap().overrides,
        customised()
    );
}

#[tokio::test]
async fn create_when_a_row_exists_is_a_conflict() {
    let db = TestDatabase::create().await;
    let repo = preferences_repo(&db);
    let user = new_user();
    let stored = repo
        .upsert(
            user,
            &PreferenceOverrides::default(),
            Precondition::Absent,
            domain::history::ChangeOrigin::User,
        )
        .await
        .unwrap();

    let absent = repo
        .upsert(
            user,
            &customised(),
            Precondition::Absent,
            domain::history::ChangeOrigin::User,
        )
        .await;
    let version_zero = repo
        .upsert(
            user,
            &customised(),
            Precondition::Version(0),
            domain::history::ChangeOrigin::User,
        )
        .await;

    assert!(matches!(
        absent,
        Err(PreferencesWriteError::VersionConflict { current }) if current == stored.version
    ));
    assert!(matches!(
        version_zero,
        Err(PreferencesWriteError::VersionConflict { current }) if current == stored.version
    ));
}

#[tokio::test]
async fn update_with_a_version_but_no_row_is_a_conflict_at_version_zero() {
    let db = TestDatabase::create().await;
    let repo = preferences_repo(&db);

    let result = repo
        .upsert(
            new_user(),
            &customised(),
            Precondition::Version(3),
            domain::history::ChangeOrigin::User,
        )
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
    let first = repo.put(user, &customised()).await;

    let any = repo
        .upsert(
            user,
            &customised(),
            Precondition::Any,
            domain::history::ChangeOrigin::User,
        )
        .await
        .unwrap();
    let versioned = repo
        .upsert(
            user,
            &customised(),
            Precondition::Version(first.version),
            domain::history::ChangeOrigin::User,
        )
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
    let first = repo
        .put(user, &PreferenceOverrides::default())
        .await
        .version;

    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let repo = repo.clone();
            tokio::spawn(async move {
                let next = PreferenceOverrides::from_document(&json!({
                    "show_email": i % 2 == 0,
                    "display_language": format!("en-{}", 10 + i),
                }))
                .unwrap();
                repo.upsert(
                    user,
                    &next,
                    Precondition::Version(first),
                    domain::history::ChangeOrigin::User,
                )
                .await
            })
        })
        .collect();
    let mut won = Vec::new();
    let mut conflicts = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(stored) => won.push(stored.version),
            Err(PreferencesWriteError::VersionConflict { current }) => conflicts.push(current),
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }

    assert_eq!((won.len(), conflicts.len()), (1, 5));
    assert!(won[0] > first);
    assert!(conflicts.iter().all(|&current| current == won[0]));
}

#[tokio::test]
async fn external_provisioning_refuses_unknown_users() {
    let db = TestDatabase::create().await;
    let repo = PgPreferencesRepository::new(db.pool().clone(), Provisioning::External);
    let user = new_user();

    let any = repo
        .upsert(
            user,
            &customised(),
            Precondition::Any,
            domain::history::ChangeOrigin::User,
        )
        .await;
    let absent = repo
        .upsert(
            user,
            &customised(),
            Precondition::Absent,
            domain::history::ChangeOrigin::User,
        )
        .await;

    assert!(matches!(any, Err(PreferencesWriteError::UserNotFound)));
    assert!(matches!(absent, Err(PreferencesWriteError::UserNotFound)));
}

#[tokio::test]
async fn external_provisioning_accepts_known_users() {
    let db = TestDatabase::create().await;
    let repo = PgPreferencesRepository::new(db.pool().clone(), Provisioning::External);
    let user = new_user();
    insert_user(&db, user).await;

    let stored = repo.put(user, &customised()).await;

    assert!(stored.version >= 1);
}

/// Deletes the user's `shared.users` row; the foreign key cascades to the preferences.
async fn delete_user(db: &TestDatabase, user: UserId) {
    let client = db.pool().get().await.unwrap();
    client
        .execute("DELETE FROM shared.users WHERE id = $1", &[&user.as_uuid()])
        .await
        .unwrap();
}

#[tokio::test]
async fn preferences_recreated_after_the_user_was_deleted_never_reuse_a_version() {
    let db = TestDatabase::create().await;
    let repo = preferences_repo(&db);
    let user = new_user();
    let created = repo
        .upsert(
            user,
            &PreferenceOverrides::default(),
            Precondition::Absent,
            domain::history::ChangeOrigin::User,
        )
        .await
        .unwrap();
    let before = repo
        .upsert(
            user,
            &customised(),
            Precondition::Version(created.version),
            domain::history::ChangeOrigin::User,
        )
        .await
        .unwrap()
        .version;
    delete_user(&db, user).await;
    assert_eq!(repo.get(user).await.unwrap(), None);

    // The same content as the first life: only the version tells the rows apart.
    let recreated = repo
        .upsert(
            user,
            &PreferenceOverrides::default(),
            Precondition::Version(0),
            domain::history::ChangeOrigin::User,
        )
        .await
        .unwrap();
    let stale = [created.version, before].map(Precondition::Version);
    let mut results = Vec::new();
    for expected in stale {
        results.push(
            repo.upsert(
                user,
                &customised(),
                expected.clone(),
                domain::history::ChangeOrigin::User,
            )
            .await,
        );
        results.push(
            repo.upsert(
                user,
                &PreferenceOverrides::default(),
                expected,
                domain::history::ChangeOrigin::User,
            )
            .await,
        );
    }

    assert!(
        recreated.version > before,
        "{} after {before}",
        recreated.version
    );
    for result in results {
        assert!(
            matches!(result, Err(PreferencesWriteError::VersionConflict { current }) if current == recreated.version),
            "{result:?}"
        );
    }
    assert_eq!(repo.get(user).await.unwrap(), Some(recreated));
}

/// V9 on rows written the earlier way (every field stored, defaults included): a value equal
/// to its builtin default becomes "inherit", a chosen one stays.
#[tokio::test]
async fn v9_turns_stored_defaults_into_inherit_and_keeps_choices() {
    let db = TestDatabase::create().await;
    let user = new_user();
    insert_user(&db, user).await;
    let client = db.pool().get().await.unwrap();
    client
        .execute(
            "INSERT INTO shared.user_preferences (user_id, email_notifications, \
             push_notifications, digest_notifications, profile_visibility, show_email, \
             show_activity, theme, display_language, show_adult_content, show_spoilers, \
             auto_play_videos) VALUES ($1, \
             '{\"enabled\": true, \"frequency\": \"instant\"}', '{\"enabled\": false}', \
             '{\"enabled\": true, \"frequency\": \"daily\"}', 'private', false, true, 'dark', \
             'en-US', false, false, true)",
            &[&user.as_uuid()],
        )
        .await
        .unwrap();
    let before = preferences_repo(&db).get(user).await.unwrap().unwrap();

    client
        .batch_execute(include_str!(
            "../../../../migrations/V9__layered_preferences.sql"
        ))
        .await
        .unwrap();

    let after = preferences_repo(&db).get(user).await.unwrap().unwrap();
    assert_eq!(
        after.overrides.to_document(),
        json!({"digest_notifications": {"enabled": true, "frequency": "daily"}, "theme": "dark"})
    );
    // What the user reads is unchanged, but the row is a new state of it: a new version.
    assert_eq!(
        after.overrides.apply(Preferences::default()),
        before.overrides.apply(Preferences::default())
    );
    assert!(after.version > before.version);
}
