//! `PgDeviceSettingsRepository`: a device's overrides with preconditions, apart from the
//! user's own settings and other devices; the user's quotas counted over both tables and the
//! device quota, exactly; forgetting a device; the change notification; the table's rules.

use adapter_postgres::{
    ChangeEvent, ChangeFeed, PgDeviceSettingsRepository, PgSettingsRepository, Provisioning,
    testing::TestDatabase,
};
use domain::{
    UserId,
    devices::DeviceId,
    ports::{DeviceSettingsRepository, SettingDeleteError, SettingWriteError, SettingsRepository},
    settings::{Precondition, QuotaExceeded, SettingWrite, UpsertOutcome, UserQuota},
};
use serde_json::{Value, json};

use crate::{
    change_feed::{expect_flush, next_change},
    support::{PutSetting, key, new_user, settings_repo, write},
};

fn devices_repo(db: &TestDatabase) -> PgDeviceSettingsRepository {
    settings_repo(db).devices()
}

fn device(raw: &str) -> DeviceId {
    DeviceId::parse(raw).expect("test device ids are valid")
}

/// A quota no test reaches but the one it names.
fn quota(max_settings: u32, max_bytes: u64, max_devices: u32) -> UserQuota {
    UserQuota {
        max_settings,
        max_bytes,
        max_devices,
    }
}

const ROOMY: UserQuota = UserQuota {
    max_settings: 10_000,
    max_bytes: u64::MAX,
    max_devices: 10_000,
};

async fn put(
    repo: &PgDeviceSettingsRepository,
    user: UserId,
    on: &str,
    raw_key: &str,
    value: Value,
) -> UpsertOutcome {
    repo.upsert(
        user,
        &device(on),
        &write(raw_key, value),
        Precondition::Any,
        ROOMY,
    )
    .await
    .expect("unconditional device write")
}

async fn write_under(
    repo: &PgDeviceSettingsRepository,
    user: UserId,
    on: &str,
    write: &SettingWrite,
    quota: UserQuota,
) -> Result<UpsertOutcome, SettingWriteError> {
    repo.upsert(user, &device(on), write, Precondition::Any, quota)
        .await
}

async fn device_rows(db: &TestDatabase, user: UserId) -> i64 {
    let client = db.pool().get().await.unwrap();
    client
        .query_one(
            "SELECT count(*) FROM shared.user_device_settings WHERE user_id = $1",
            &[&user.as_uuid()],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn an_override_is_created_read_updated_and_deleted_under_its_preconditions() {
    let db = TestDatabase::create().await;
    let repo = devices_repo(&db);
    let (user, phone) = (new_user(), device("phone"));
    let theme = key("ui.theme");

    let created = repo
        .upsert(
            user,
            &phone,
            &write("ui.theme", json!("dark")),
            Precondition::Absent,
            ROOMY,
        )
        .await
        .unwrap();
    let again = repo
        .upsert(
            user,
            &phone,
            &write("ui.theme", json!("light")),
            Precondition::Absent,
            ROOMY,
        )
        .await;
    let stale = repo
        .upsert(
            user,
            &phone,
            &write("ui.theme", json!("light")),
            Precondition::Version(created.setting.version + 1_000),
            ROOMY,
        )
        .await;
    let updated = repo
        .upsert(
            user,
            &phone,
            &write("ui.theme", json!("light")),
            Precondition::Version(created.setting.version),
            ROOMY,
        )
        .await
        .unwrap();

    assert!(created.created);
    assert!(matches!(
        again,
        Err(SettingWriteError::VersionConflict { current: Some(v) }) if v == created.setting.version
    ));
    assert!(matches!(
        stale,
        Err(SettingWriteError::VersionConflict { current: Some(v) }) if v == created.setting.version
    ));
    assert!(!updated.created);
    assert!(updated.setting.version > created.setting.version);
    assert_eq!(
        repo.get(user, &phone, &theme).await.unwrap(),
        Some(updated.setting.clone())
    );

    let stale_delete = repo
        .delete(
            user,
            &phone,
            &theme,
            Precondition::Version(created.setting.version),
        )
        .await;
    assert!(matches!(
        stale_delete,
        Err(SettingDeleteError::VersionConflict { current }) if current == updated.setting.version
    ));
    repo.delete(
        user,
        &phone,
        &theme,
        Precondition::Version(updated.setting.version),
    )
    .await
    .unwrap();
    assert_eq!(repo.get(user, &phone, &theme).await.unwrap(), None);
    assert!(matches!(
        repo.delete(user, &phone, &theme, Precondition::Any).await,
        Err(SettingDeleteError::NotFound)
    ));
}

#[tokio::test]
async fn an_override_leaves_the_users_setting_and_other_devices_alone() {
    let db = TestDatabase::create().await;
    let (settings, devices) = (settings_repo(&db), devices_repo(&db));
    let user = new_user();
    let own = settings.put(user, "ui.theme", json!("dark")).await;

    put(&devices, user, "phone", "ui.theme", json!("light")).await;

    assert_eq!(
        settings.get(user, &key("ui.theme")).await.unwrap(),
        Some(own.setting)
    );
    assert_eq!(
        devices
            .get(user, &device("tv"), &key("ui.theme"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        devices
            .get(new_user(), &device("phone"), &key("ui.theme"))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn versions_come_from_the_settings_sequence_and_never_repeat_after_a_delete() {
    let db = TestDatabase::create().await;
    let (settings, devices) = (settings_repo(&db), devices_repo(&db));
    let user = new_user();
    let own = settings.put(user, "ui.theme", json!("dark")).await;
    let first = put(&devices, user, "phone", "ui.theme", json!("light")).await;
    devices
        .delete(user, &device("phone"), &key("ui.theme"), Precondition::Any)
        .await
        .unwrap();

    let recreated = put(&devices, user, "phone", "ui.theme", json!("light")).await;
    let later_own = settings.put(user, "ui.other", json!(1)).await;

    assert!(first.setting.version > own.setting.version);
    assert!(recreated.created);
    assert!(recreated.setting.version > first.setting.version);
    assert!(later_own.setting.version > recreated.setting.version);
}

#[tokio::test]
async fn device_overrides_count_against_the_users_settings_quota_both_ways() {
    let db = TestDatabase::create().await;
    let (settings, devices) = (settings_repo(&db), devices_repo(&db));
    let user = new_user();
    settings.put(user, "a.own", json!(1)).await;
    put(&devices, user, "phone", "a.one", json!(1)).await;
    let two = quota(2, u64::MAX, 20);

    let device_write = write_under(&devices, user, "tv", &write("a.two", json!(1)), two).await;
    let user_write = settings
        .upsert(user, &write("a.two", json!(1)), Precondition::Any, two)
        .await;
    let update = write_under(&devices, user, "phone", &write("a.one", json!(2)), two).await;

    for refused in [device_write, user_write] {
        assert!(
            matches!(
                refused,
                Err(SettingWriteError::QuotaExceeded(QuotaExceeded::Settings {
                    limit: 2
                }))
            ),
            "{refused:?}"
        );
    }
    assert!(update.is_ok(), "an update adds no setting: {update:?}");
    assert_eq!(device_rows(&db, user).await, 1);
    assert_eq!(settings.count(user).await.unwrap(), 1);
}

#[tokio::test]
async fn device_overrides_count_against_the_users_byte_quota_both_ways() {
    let db = TestDatabase::create().await;
    let (settings, devices) = (settings_repo(&db), devices_repo(&db));
    let user = new_user();
    // 40 bytes each as the store measures them (the quotes included).
    let forty = || json!("x".repeat(38));
    settings.put(user, "a.own", forty()).await;
    put(&devices, user, "phone", "a.one", forty()).await;
    let hundred = quota(1000, 100, 20);

    let device_write = write_under(&devices, user, "tv", &write("a.two", forty()), hundred).await;
    let user_write = settings
        .upsert(user, &write("a.two", forty()), Precondition::Any, hundred)
        .await;
    let within = write_under(
        &devices,
        user,
        "tv",
        &write("a.two", json!("x".repeat(18))),
        hundred,
    )
    .await;

    for refused in [device_write, user_write] {
        assert!(
            matches!(
                refused,
                Err(SettingWriteError::QuotaExceeded(QuotaExceeded::Bytes {
                    limit: 100
                }))
            ),
            "{refused:?}"
        );
    }
    assert!(within.is_ok(), "100 bytes exactly: {within:?}");
    assert_eq!(device_rows(&db, user).await, 2);
}

#[tokio::test]
async fn the_twenty_first_device_is_refused_while_the_twentieth_still_writes() {
    let db = TestDatabase::create().await;
    let repo = devices_repo(&db);
    let user = new_user();
    let twenty = quota(1000, u64::MAX, 20);
    for i in 1..=20 {
        write_under(
            &repo,
            user,
            &format!("d{i}"),
            &write("a.x", json!(i)),
            twenty,
        )
        .await
        .unwrap();
    }

    let twenty_first = write_under(&repo, user, "d21", &write("a.x", json!(21)), twenty).await;
    let twentieth_again = write_under(&repo, user, "d20", &write("a.y", json!(1)), twenty).await;

    assert!(
        matches!(
            twenty_first,
            Err(SettingWriteError::QuotaExceeded(QuotaExceeded::Devices {
                limit: 20
            }))
        ),
        "{twenty_first:?}"
    );
    assert!(twentieth_again.is_ok(), "{twentieth_again:?}");
    assert_eq!(repo.devices(user).await.unwrap().len(), 20);
    assert_eq!(repo.list(user, &device("d21")).await.unwrap(), Vec::new());
}

#[tokio::test]
async fn concurrent_first_writes_of_new_devices_never_exceed_the_device_quota() {
    let db = TestDatabase::create().await;
    let repo = devices_repo(&db);
    let user = new_user();
    let three = quota(1000, u64::MAX, 3);
    write_under(&repo, user, "d0", &write("a.x", json!(0)), three)
        .await
        .unwrap();

    let tasks: Vec<_> = (1..=8)
        .map(|i| {
            let repo = repo.clone();
            tokio::spawn(async move {
                write_under(
                    &repo,
                    user,
                    &format!("d{i}"),
                    &write("a.x", json!(i)),
                    three,
                )
                .await
            })
        })
        .collect();
    let mut stored = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => stored += 1,
            Err(SettingWriteError::QuotaExceeded(QuotaExceeded::Devices { limit: 3 })) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }

    assert_eq!(stored, 2);
    assert_eq!(repo.devices(user).await.unwrap().len(), 3);
}

#[tokio::test]
async fn deleting_a_device_removes_only_its_overrides() {
    let db = TestDatabase::create().await;
    let (settings, devices) = (settings_repo(&db), devices_repo(&db));
    let (user, other) = (new_user(), new_user());
    settings.put(user, "ui.theme", json!("dark")).await;
    put(&devices, user, "phone", "ui.theme", json!("light")).await;
    put(&devices, user, "phone", "ui.size", json!(3)).await;
    let tv = put(&devices, user, "tv", "ui.theme", json!("light")).await;
    let others = put(&devices, other, "phone", "ui.theme", json!("light")).await;

    let deleted = devices.delete_device(user, &device("phone")).await.unwrap();
    let again = devices.delete_device(user, &device("phone")).await.unwrap();

    assert!(deleted);
    assert!(!again);
    assert_eq!(
        devices.list(user, &device("phone")).await.unwrap(),
        Vec::new()
    );
    assert_eq!(
        devices.list(user, &device("tv")).await.unwrap(),
        vec![tv.setting]
    );
    assert_eq!(
        devices.list(other, &device("phone")).await.unwrap(),
        vec![others.setting]
    );
    assert_eq!(settings.count(user).await.unwrap(), 1);
}

#[tokio::test]
async fn devices_are_listed_by_id_with_their_count_and_last_change() {
    let db = TestDatabase::create().await;
    let repo = devices_repo(&db);
    let user = new_user();
    put(&repo, user, "tv", "ui.theme", json!("dark")).await;
    put(&repo, user, "Phone", "ui.a", json!(1)).await;
    let last = put(&repo, user, "Phone", "ui.b", json!(2)).await;
    put(&repo, new_user(), "zz", "ui.a", json!(1)).await;

    let listed = repo.devices(user).await.unwrap();

    let summary: Vec<(&str, u64)> = listed
        .iter()
        .map(|d| (d.device_id.as_str(), d.settings))
        .collect();
    assert_eq!(summary, [("Phone", 2), ("tv", 1)]);
    assert_eq!(listed[0].updated_at, last.setting.updated_at);
    assert!(repo.devices(new_user()).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_devices_overrides_are_listed_by_key() {
    let db = TestDatabase::create().await;
    let repo = devices_repo(&db);
    let user = new_user();
    for raw in ["ui.c", "ui.a", "ui.b"] {
        put(&repo, user, "phone", raw, json!(1)).await;
    }
    put(&repo, user, "tv", "ui.0", json!(1)).await;

    let keys: Vec<String> = repo
        .list(user, &device("phone"))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.key.as_str().to_owned())
        .collect();

    assert_eq!(keys, ["ui.a", "ui.b", "ui.c"]);
}

#[tokio::test]
async fn a_change_of_an_override_notifies_a_payload_the_feed_parses() {
    let db = TestDatabase::create().await;
    let repo = devices_repo(&db);
    let (_feed, mut events) = ChangeFeed::spawn(&db.config()).unwrap();
    expect_flush(&mut events).await; // listening from here on
    let user = new_user();
    let expected = ChangeEvent::DeviceSettings {
        user_id: user,
        device_id: device("tv.Living-1"),
        key: key("ui.theme"),
    };

    put(&repo, user, "tv.Living-1", "ui.theme", json!("dark")).await;
    let inserted = next_change(&mut events).await;
    repo.delete_device(user, &device("tv.Living-1"))
        .await
        .unwrap();
    let deleted = next_change(&mut events).await;

    assert_eq!(inserted, expected);
    assert_eq!(deleted, expected);
}

#[tokio::test]
async fn the_table_refuses_secrets_and_malformed_device_ids_from_any_writer() {
    let db = TestDatabase::create().await;
    let user = new_user();
    put(&devices_repo(&db), user, "phone", "ui.theme", json!("dark")).await;
    let client = db.pool().get().await.unwrap();
    for (device_id, data_type, value, constraint) in [
        (
            "phone",
            "encrypted",
            crate::support::envelope(),
            "user_device_settings_not_encrypted",
        ),
        (
            "my phone",
            "string",
            json!("x"),
            "user_device_settings_device_id_format",
        ),
        (
            &"x".repeat(65),
            "string",
            json!("x"),
            "user_device_settings_device_id_format",
        ),
    ] {
        let error = client
            .execute(
                "INSERT INTO shared.user_device_settings (user_id, device_id, key, value, data_type) \
                 VALUES ($1, $2, 'ui.secret', $3, $4)",
                &[&user.as_uuid(), &device_id, &value, &data_type],
            )
            .await
            .unwrap_err();
        let constraint_hit = error
            .as_db_error()
            .and_then(|e| e.constraint())
            .map(str::to_owned);
        // A value longer than the column fails on its type before any CHECK.
        if device_id.len() <= 64 {
            assert_eq!(constraint_hit.as_deref(), Some(constraint), "{device_id}");
        }
    }
}

#[tokio::test]
async fn erasing_the_user_erases_their_devices() {
    let db = TestDatabase::create().await;
    let repo = devices_repo(&db);
    let (gone, kept) = (new_user(), new_user());
    for user in [gone, kept] {
        put(&repo, user, "phone", "ui.theme", json!("dark")).await;
    }

    let client = db.pool().get().await.unwrap();
    client
        .execute("DELETE FROM shared.users WHERE id = $1", &[&gone.as_uuid()])
        .await
        .unwrap();

    assert_eq!(device_rows(&db, gone).await, 0);
    assert_eq!(device_rows(&db, kept).await, 1);
}

#[tokio::test]
async fn external_provisioning_refuses_device_writes_for_unknown_users() {
    let db = TestDatabase::create().await;
    let repo = PgSettingsRepository::new(db.pool().clone(), Provisioning::External).devices();

    let result = write_under(
        &repo,
        new_user(),
        "phone",
        &write("ui.theme", json!("dark")),
        ROOMY,
    )
    .await;

    assert!(matches!(result, Err(SettingWriteError::UserNotFound)));
}
