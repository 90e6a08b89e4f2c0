//! The per-user byte quota: values measured as `octet_length(value::text)`, checked with the
//! count quota under the user's lock, for every kind of write.

use adapter_postgres::testing::TestDatabase;
use domain::{
    UserId,
    ports::{SettingWriteError, SettingsRepository},
    settings::{Precondition, QuotaExceeded, UserQuota},
};
use serde_json::json;

use crate::support::{key, new_user, settings_repo, write};

/// 1000 settings, `max_bytes` bytes.
fn bytes(max_bytes: u64) -> UserQuota {
    UserQuota {
        max_settings: 1000,
        max_bytes,
        max_devices: 20,
    }
}

/// A string value of `size` bytes as the store measures it (two quotes included).
fn sized(size: usize) -> serde_json::Value {
    json!("x".repeat(size - 2))
}

fn over_bytes(result: Result<impl std::fmt::Debug, SettingWriteError>, limit: u64) -> bool {
    matches!(
        result,
        Err(SettingWriteError::QuotaExceeded(QuotaExceeded::Bytes { limit: l })) if l == limit
    )
}

async fn stored_bytes(db: &TestDatabase, user: UserId) -> i64 {
    let client = db.pool().get().await.unwrap();
    client
        .query_one(
            "SELECT coalesce(sum(octet_length(value::text)), 0)::bigint \
             FROM shared.user_settings WHERE user_id = $1",
            &[&user.as_uuid()],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn the_stored_size_is_the_length_of_the_values_text() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    repo.upsert(
        user,
        &write("a.obj", json!({"k": [1, 2]})),
        Precondition::Any,
        bytes(1000),
    )
    .await
    .unwrap();
    let client = db.pool().get().await.unwrap();
    let size: i32 = client
        .query_one(
            "SELECT value_bytes FROM shared.user_settings WHERE user_id = $1",
            &[&user.as_uuid()],
        )
        .await
        .unwrap()
        .get(0);
    // jsonb renders `{"k": [1, 2]}`.
    assert_eq!(size, 13);
}

#[tokio::test]
async fn an_insert_over_the_byte_quota_is_refused_and_not_stored() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    repo.upsert(
        user,
        &write("a.one", sized(60)),
        Precondition::Any,
        bytes(100),
    )
    .await
    .unwrap();

    let at_limit = repo
        .upsert(
            user,
            &write("a.two", sized(40)),
            Precondition::Any,
            bytes(100),
        )
        .await;
    let over = repo
        .upsert(
            user,
            &write("a.three", sized(2)),
            Precondition::Absent,
            bytes(100),
        )
        .await;

    assert!(at_limit.is_ok());
    assert!(over_bytes(over, 100));
    assert_eq!(stored_bytes(&db, user).await, 100);
    assert_eq!(repo.get(user, &key("a.three")).await.unwrap(), None);
}

#[tokio::test]
async fn a_version_checked_update_that_grows_over_the_byte_quota_is_refused() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let first = repo
        .upsert(
            user,
            &write("a.one", sized(10)),
            Precondition::Any,
            bytes(100),
        )
        .await
        .unwrap();

    let result = repo
        .upsert(
            user,
            &write("a.one", sized(101)),
            Precondition::Version(first.setting.version),
            bytes(100),
        )
        .await;

    assert!(over_bytes(result, 100));
    assert_eq!(stored_bytes(&db, user).await, 10);
}

#[tokio::test]
async fn a_user_over_a_lowered_byte_quota_may_still_shrink_but_not_grow() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    repo.upsert(
        user,
        &write("a.one", sized(80)),
        Precondition::Any,
        bytes(1000),
    )
    .await
    .unwrap();

    let shrink = repo
        .upsert(
            user,
            &write("a.one", sized(70)),
            Precondition::Any,
            bytes(50),
        )
        .await;
    let grow = repo
        .upsert(
            user,
            &write("a.one", sized(75)),
            Precondition::Any,
            bytes(50),
        )
        .await;

    assert!(shrink.is_ok());
    assert!(over_bytes(grow, 50));
    assert_eq!(stored_bytes(&db, user).await, 70);
}

#[tokio::test]
async fn a_bulk_over_the_byte_quota_writes_nothing() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();
    let writes = [write("a.one", sized(60)), write("a.two", sized(60))];

    let result = repo.upsert_many(user, &writes, bytes(100)).await;

    assert!(over_bytes(result, 100));
    assert_eq!(repo.count(user).await.unwrap(), 0);
}

#[tokio::test]
async fn concurrent_writes_never_exceed_the_byte_quota() {
    let db = TestDatabase::create().await;
    let repo = settings_repo(&db);
    let user = new_user();

    let tasks: Vec<_> = (0..12)
        .map(|i| {
            let repo = repo.clone();
            tokio::spawn(async move {
                repo.upsert(
                    user,
                    &write(&format!("k.{i}"), sized(20)),
                    Precondition::Any,
                    bytes(100),
                )
                .await
            })
        })
        .collect();
    let mut stored = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => stored += 1,
            Err(SettingWriteError::QuotaExceeded(QuotaExceeded::Bytes { limit: 100 })) => {}
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }

    assert_eq!(stored, 5);
    assert_eq!(stored_bytes(&db, user).await, 100);
}
