//! `PgSettingsRepository`: CRUD, ordering, concurrency, quota, bulk and provisioning.

use adapter_postgres::{PgSettingsRepository, Provisioning, testing::TestDatabase};
use domain::{
    ports::{SettingDeleteError, SettingWriteError, SettingsRepository},
    settings::{Category, DataType, Precondition, QuotaExceeded, SettingWrite},
};
use serde_json::json;

use crate::support::{
    PutSetting, described, envelope, first_page, insert_user, key, new_user, quota, sealed,
    settings_repo, write, write_in,
};

const MAX: u32 = 1000;

#[tokio::test]
async fn upsert_creates_a_setting_that_get_returns() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let input = described(
        write_in(
            "playback.subtitles.defaults",
            json!({"size": "medium"}),
            "playback",
        ),
        "subtitle defaults",
    );

    let outcome = repo.put_write(user, &input).await;

    assert!(outcome.created);
    assert!(outcome.setting.version >= 1);
    assert_eq!(outcome.setting.value, input.value);
    assert_eq!(outcome.setting.description, input.description);
    assert_eq!(outcome.setting.category, input.category);
    assert_eq!(outcome.setting.data_type, DataType::Json);
    let stored = repo.get(user, &input.key).await.unwrap();
    assert_eq!(stored, Some(outcome.setting));
}

#[tokio::test]
async fn get_of_an_absent_setting_is_none() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);

    let stored = repo.get(new_user(), &key("ui.theme")).await.unwrap();

    assert_eq!(stored, None);
}

#[tokio::test]
async fn changing_upsert_gives_a_new_greater_version() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let first = repo.put(user, "ui.theme", json!("dark")).await;

    let outcome = repo.put(user, "ui.theme", json!("light")).await;

    assert!(!outcome.created);
    assert!(outcome.setting.version > first.setting.version);
    assert_eq!(outcome.setting.value, json!("light"));
    assert!(outcome.setting.updated_at >= outcome.setting.created_at);
}

#[tokio::test]
async fn unchanged_upsert_keeps_version_and_timestamp() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let input = write_in("ui.layout", json!({"b": 1, "a": [1, 2]}), "ui");
    let first = repo.put_write(user, &input).await;

    let again = repo.put_write(user, &input).await;
    let with_version = repo
        .upsert(
            user,
            &input,
            Precondition::Version(first.setting.version),
            quota(MAX),
        )
        .await
        .unwrap();

    assert!(!again.created);
    assert_eq!(again.setting, first.setting);
    assert_eq!(with_version.setting, first.setting);
}

#[tokio::test]
async fn delete_removes_the_setting() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let input = write("ui.theme", json!("dark"));
    repo.put_write(user, &input).await;

    repo.delete(
        user,
        &input.key,
        Precondition::Any,
        domain::history::ChangeOrigin::User,
    )
    .await
    .unwrap();

    assert_eq!(repo.get(user, &input.key).await.unwrap(), None);
    assert_eq!(repo.count(user).await.unwrap(), 0);
}

#[tokio::test]
async fn delete_of_an_absent_setting_is_not_found() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);

    let result = repo
        .delete(
            new_user(),
            &key("ui.theme"),
            Precondition::Any,
            domain::history::ChangeOrigin::User,
        )
        .await;

    assert!(matches!(result, Err(SettingDeleteError::NotFound)));
}

#[tokio::test]
async fn delete_with_a_stale_version_is_a_conflict_and_keeps_the_row() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let input = write("ui.theme", json!("dark"));
    let first = repo.put_write(user, &input).await;
    let second = repo.put(user, "ui.theme", json!("light")).await;

    let result = repo
        .delete(
            user,
            &input.key,
            Precondition::Version(first.setting.version),
            domain::history::ChangeOrigin::User,
        )
        .await;

    assert!(matches!(
        result,
        Err(SettingDeleteError::VersionConflict { current }) if current == second.setting.version
    ));
    assert!(repo.get(user, &input.key).await.unwrap().is_some());
}

#[tokio::test]
async fn delete_with_the_current_version_succeeds() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let input = write("ui.theme", json!("dark"));
    let stored = repo.put_write(user, &input).await;

    repo.delete(
        user,
        &input.key,
        Precondition::Version(stored.setting.version),
        domain::history::ChangeOrigin::User,
    )
    .await
    .unwrap();

    assert_eq!(repo.get(user, &input.key).await.unwrap(), None);
}

#[tokio::test]
async fn a_recreated_setting_gets_a_version_greater_than_any_before() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let mut seen: Vec<i64> = Vec::new();

    // Three lives of the same key, each begun by another kind of write, each with the same
    // value: only the version can tell them apart.
    for life in 0..3 {
        let input = write("ui.theme", json!("dark"));
        let created = match life {
            0 => {
                repo.upsert(user, &input, Precondition::Any, quota(MAX))
                    .await
            }
            1 => {
                repo.upsert(user, &input, Precondition::Absent, quota(MAX))
                    .await
            }
            _ => repo
                .upsert_many(user, std::slice::from_ref(&input), quota(MAX))
                .await
                .map(|mut outcomes| outcomes.remove(0)),
        }
        .unwrap();
        let changed = repo
            .upsert(
                user,
                &write("ui.theme", json!("light")),
                Precondition::Version(created.setting.version),
                quota(MAX),
            )
            .await
            .unwrap();

        assert!(created.created, "life {life}");
        assert!(!changed.created, "life {life}");
        for version in [created.setting.version, changed.setting.version] {
            assert!(
                seen.iter().all(|&before| version > before),
                "life {life}: version {version} after {seen:?}"
            );
            seen.push(version);
        }
        repo.delete(
            user,
            &input.key,
            Precondition::Version(changed.setting.version),
            domain::history::ChangeOrigin::User,
        )
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_version_from_before_a_delete_conflicts_with_the_recreated_setting() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let input = write("ui.theme", json!("dark"));
    let before = repo.put_write(user, &input).await.setting.version;
    repo.delete(
        user,
        &input.key,
        Precondition::Any,
        domain::history::ChangeOrigin::User,
    )
    .await
    .unwrap();
    let recreated = repo.put_write(user, &input).await;
    let current = recreated.setting.version;

    let changed = repo
        .upsert(
            user,
            &write("ui.theme", json!("light")),
            Precondition::Version(before),
            quota(MAX),
        )
        .await;
    // Even a write of what is stored is refused: the precondition names another row.
    let unchanged = repo
        .upsert(user, &input, Precondition::Version(before), quota(MAX))
        .await;
    let deleted = repo
        .delete(
            user,
            &input.key,
            Precondition::Version(before),
            domain::history::ChangeOrigin::User,
        )
        .await;

    assert!(recreated.created);
    assert!(current > before, "{current} after {before}");
    assert!(
        matches!(changed, Err(SettingWriteError::VersionConflict { current: Some(c) }) if c == current),
        "{changed:?}"
    );
    assert!(
        matches!(unchanged, Err(SettingWriteError::VersionConflict { current: Some(c) }) if c == current),
        "{unchanged:?}"
    );
    assert!(
        matches!(deleted, Err(SettingDeleteError::VersionConflict { current: c }) if c == current),
        "{deleted:?}"
    );
    assert_eq!(
        repo.get(user, &input.key).await.unwrap(),
        Some(recreated.setting)
    );
}

#[tokio::test]
async fn versions_are_never_shared_between_settings() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let (alice, bob) = (new_user(), new_user());
    let mut versions = Vec::new();
    for (user, raw) in [(alice, "ui.a"), (alice, "ui.b"), (bob, "ui.a")] {
        for value in [1, 2] {
            let outcome = repo.put(user, raw, json!(value)).await;
            versions.push(outcome.setting.version);
        }
    }

    let mut distinct = versions.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), versions.len(), "{versions:?}");
}

#[tokio::test]
async fn list_filters_by_category() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    for input in [
        write_in("ui.theme", json!("dark"), "ui"),
        write_in("ui.density", json!("compact"), "ui"),
        write_in("playback.autoplay", json!(true), "playback"),
        write("misc.flag", json!(1)),
    ] {
        repo.put_write(user, &input).await;
    }

    let ui = repo
        .list(user, Some(Category::from_stored("ui".into())), first_page())
        .await
        .unwrap();
    let all = repo.list(user, None, first_page()).await.unwrap();

    let ui_keys: Vec<&str> = ui.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(ui_keys, ["ui.density", "ui.theme"]);
    assert_eq!(all.len(), 4);
}

#[tokio::test]
async fn list_is_ordered_by_key_whatever_the_write_order() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    for raw in ["b.x", "a.z", "c", "a.a", "a-b", "a_b", "a.b.c"] {
        repo.put(user, raw, json!(raw)).await;
    }
    // An update must not move a row in the listing.
    repo.put(user, "a.z", json!("changed")).await;

    let keys: Vec<String> = repo
        .list(user, None, first_page())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.key.to_string())
        .collect();

    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(keys, expected);
    assert_eq!(keys.len(), 7);
}

#[tokio::test]
async fn list_only_shows_the_users_own_settings() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let (alice, bob) = (new_user(), new_user());
    repo.put(alice, "ui.theme", json!("dark")).await;

    assert!(repo.list(bob, None, first_page()).await.unwrap().is_empty());
    assert_eq!(repo.count(alice).await.unwrap(), 1);
    assert_eq!(repo.count(bob).await.unwrap(), 0);
}

#[tokio::test]
async fn concurrent_updates_with_the_same_version_let_exactly_one_win() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let first = repo
        .put(user, "ui.theme", json!("dark"))
        .await
        .setting
        .version;

    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let repo = repo.clone();
            tokio::spawn(async move {
                repo.upsert(
                    user,
                    &write("ui.theme", json!(format!("writer-{i}"))),
                    Precondition::Version(first),
                    quota(MAX),
                )
                .await
            })
        })
        .collect();
    let mut won = Vec::new();
    let mut conflicts = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(outcome) => won.push(outcome.setting.version),
            Err(SettingWriteError::VersionConflict {
                current: Some(current),
            }) => conflicts.push(current),
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }

    assert_eq!((won.len(), conflicts.len()), (1, 7));
    assert!(won[0] > first);
    // Every loser is told the winner's version.
    assert!(conflicts.iter().all(|&current| current == won[0]));
}

#[tokio::test]
async fn update_with_a_stale_version_is_a_conflict_that_names_the_current_one() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let mut versions = Vec::new();
    for value in ["a", "b", "c"] {
        let outcome = repo.put(user, "ui.theme", json!(value)).await;
        versions.push(outcome.setting.version);
    }

    let result = repo
        .upsert(
            user,
            &write("ui.theme", json!("d")),
            Precondition::Version(versions[1]),
            quota(MAX),
        )
        .await;

    assert!(matches!(
        result,
        Err(SettingWriteError::VersionConflict { current: Some(current) }) if current == versions[2]
    ));
    let stored = repo.get(user, &key("ui.theme")).await.unwrap().unwrap();
    assert_eq!(stored.value, json!("c"));
}

#[tokio::test]
async fn update_with_a_version_of_an_absent_setting_is_a_conflict_without_version() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);

    let result = repo
        .upsert(
            new_user(),
            &write("ui.theme", json!("d")),
            Precondition::Version(1),
            quota(MAX),
        )
        .await;

    assert!(matches!(
        result,
        Err(SettingWriteError::VersionConflict { current: None })
    ));
}

#[tokio::test]
async fn create_only_write_of_an_existing_setting_is_a_conflict() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let created = repo
        .upsert(
            user,
            &write("ui.theme", json!("dark")),
            Precondition::Absent,
            quota(MAX),
        )
        .await
        .unwrap();

    let result = repo
        .upsert(
            user,
            &write("ui.theme", json!("light")),
            Precondition::Absent,
            quota(MAX),
        )
        .await;

    assert!(created.created);
    assert!(matches!(
        result,
        Err(SettingWriteError::VersionConflict { current: Some(current) })
            if current == created.setting.version
    ));
}

#[tokio::test]
async fn insert_beyond_the_quota_is_refused_and_not_stored() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    for raw in ["a.one", "a.two"] {
        repo.put(user, raw, json!(1)).await;
    }

    let result = repo
        .upsert(
            user,
            &write("a.three", json!(1)),
            Precondition::Any,
            quota(2),
        )
        .await;

    assert!(matches!(
        result,
        Err(SettingWriteError::QuotaExceeded(QuotaExceeded::Settings {
            limit: 2
        }))
    ));
    assert_eq!(repo.count(user).await.unwrap(), 2);
    assert_eq!(repo.get(user, &key("a.three")).await.unwrap(), None);
}

#[tokio::test]
async fn update_at_the_quota_is_allowed() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let mut first = Vec::new();
    for raw in ["a.one", "a.two"] {
        let outcome = repo.put(user, raw, json!(1)).await;
        first.push(outcome.setting.version);
    }

    let outcome = repo.put(user, "a.one", json!(2)).await;

    assert!(!outcome.created);
    assert!(outcome.setting.version > first[0]);
}

#[tokio::test]
async fn concurrent_inserts_never_exceed_the_quota() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();

    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let repo = repo.clone();
            tokio::spawn(async move {
                repo.upsert(
                    user,
                    &write(&format!("k.{i}"), json!(i)),
                    Precondition::Any,
                    quota(5),
                )
                .await
            })
        })
        .collect();
    let mut stored = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => stored += 1,
            Err(SettingWriteError::QuotaExceeded(QuotaExceeded::Settings { limit: 5 })) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }

    assert_eq!(stored, 5);
    assert_eq!(repo.count(user).await.unwrap(), 5);
}

#[tokio::test]
async fn bulk_upsert_stores_every_item_in_order() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let existing = repo.put(user, "b.existing", json!(1)).await;
    let secret = SettingWrite {
        category: Some(Category::from_stored("integrations".to_owned())),
        ..sealed("c.secret", envelope())
    };
    let writes = [
        write("b.existing", json!(2)),
        write("a.new", json!("x")),
        secret,
    ];

    let outcomes = repo.upsert_many(user, &writes, quota(MAX)).await.unwrap();

    let summary: Vec<(&str, bool)> = outcomes
        .iter()
        .map(|o| (o.setting.key.as_str(), o.created))
        .collect();
    assert_eq!(
        summary,
        [("b.existing", false), ("a.new", true), ("c.secret", true)]
    );
    // Every write took a fresh version, above the one the existing row had.
    let versions: Vec<i64> = outcomes.iter().map(|o| o.setting.version).collect();
    assert!(
        versions.iter().all(|&v| v > existing.setting.version),
        "{versions:?}"
    );
    let mut distinct = versions.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), versions.len(), "{versions:?}");
    assert_eq!(repo.count(user).await.unwrap(), 3);
}

#[tokio::test]
async fn bulk_with_one_invalid_item_writes_nothing() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    repo.put(user, "a.kept", json!("before")).await;
    // The domain never builds this (a secret is `StoredValue::Sealed`): a plaintext value
    // declared encrypted. The database's CHECK stops it all the same.
    let mut not_an_envelope = write("a.secret", json!({"token": "plaintext"}));
    not_an_envelope.data_type = DataType::Encrypted;
    let writes = [
        write("a.kept", json!("after")),
        write("a.added", json!(1)),
        not_an_envelope,
    ];

    let result = repo.upsert_many(user, &writes, quota(MAX)).await;

    let Err(SettingWriteError::Repository(error)) = result else {
        panic!("expected a repository error, got {result:?}");
    };
    // The constraint is named for the logs; the rejected value is not repeated.
    let message = format!("{error:?} {error}");
    assert!(
        message.contains("user_settings_encrypted_envelope"),
        "{message}"
    );
    assert!(!message.contains("plaintext"), "{message}");
    let stored: Vec<(String, serde_json::Value)> = repo
        .list(user, None, first_page())
        .await
        .unwrap()
        .into_iter()
        .map(|s| (s.key.to_string(), s.value.to_json()))
        .collect();
    assert_eq!(stored, [("a.kept".to_owned(), json!("before"))]);
}

#[tokio::test]
async fn bulk_beyond_the_quota_writes_nothing() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    repo.put(user, "a.one", json!(1)).await;
    let writes = [
        write("a.one", json!(2)),
        write("a.two", json!(1)),
        write("a.three", json!(1)),
        write("a.four", json!(1)),
    ];

    let result = repo.upsert_many(user, &writes, quota(3)).await;

    assert!(matches!(
        result,
        Err(SettingWriteError::QuotaExceeded(QuotaExceeded::Settings {
            limit: 3
        }))
    ));
    let stored = repo.list(user, None, first_page()).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].value, json!(1));
}

#[tokio::test]
async fn auto_provisioning_creates_the_user_row() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();

    repo.put(user, "ui.theme", json!("dark")).await;

    let client = db.pool().get().await.unwrap();
    let users: i64 = client
        .query_one(
            "SELECT count(*) FROM shared.users WHERE id = $1",
            &[&user.as_uuid()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 1);
}

#[tokio::test]
async fn external_provisioning_refuses_writes_for_unknown_users() {
    let db = TestDatabase::create().await;
    let repo = PgSettingsRepository::new(db.pool().clone(), Provisioning::External);
    let user = new_user();

    let single = repo
        .upsert(
            user,
            &write("ui.theme", json!("dark")),
            Precondition::Any,
            quota(MAX),
        )
        .await;
    let create_only = repo
        .upsert(
            user,
            &write("ui.theme", json!("dark")),
            Precondition::Absent,
            quota(MAX),
        )
        .await;
    let bulk = repo
        .upsert_many(user, &[write("ui.theme", json!("dark"))], quota(MAX))
        .await;

    assert!(matches!(single, Err(SettingWriteError::UserNotFound)));
    assert!(matches!(create_only, Err(SettingWriteError::UserNotFound)));
    assert!(matches!(bulk, Err(SettingWriteError::UserNotFound)));
}

#[tokio::test]
async fn external_provisioning_accepts_writes_for_known_users() {
    let db = TestDatabase::create().await;
    let repo = PgSettingsRepository::new(db.pool().clone(), Provisioning::External);
    let user = new_user();
    insert_user(&db, user).await;

    let outcome = repo.put(user, "ui.theme", json!("dark")).await;

    assert!(outcome.created);
}

#[tokio::test]
async fn encrypted_envelopes_are_stored_as_written() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let secret = SettingWrite {
        category: Some(Category::from_stored("integrations".to_owned())),
        ..sealed("scrobbling.trakt.oauth_tokens", envelope())
    };

    repo.put_write(user, &secret).await;

    let stored = repo.get(user, &secret.key).await.unwrap().unwrap();
    assert_eq!(stored.data_type, DataType::Encrypted);
    assert_eq!(stored.value.to_json(), envelope());
}
