//! `PgEnvelopeStore`: what key rotation reads and writes.

use adapter_postgres::{PgEnvelopeStore, testing::TestDatabase};
use domain::{
    UserId,
    ports::{EnvelopeStore, SettingsRepository},
    secrets::Envelope,
    settings::Precondition,
};
use serde_json::{Value, json};

use crate::support::{PutSetting, envelope, key, new_user, sealed, settings_repo};

fn sealed_with(kid: Value) -> Value {
    let mut value = envelope();
    value["kid"] = kid;
    value
}

async fn store_secret(db: &TestDatabase, user: UserId, raw_key: &str, kid: Value) {
    settings_repo(db)
        .put_write(user, &sealed(raw_key, sealed_with(kid)))
        .await;
}

#[tokio::test]
async fn count_by_kid_counts_encrypted_rows_per_key_id() {
    let db = TestDatabase::create().await;
    let user = new_user();
    store_secret(&db, user, "s.a", json!("k1")).await;
    store_secret(&db, user, "s.b", json!("k1")).await;
    store_secret(&db, user, "s.c", json!("k2")).await;
    // An envelope whose kid is not text: no domain type can hold it, so it goes in by SQL.
    db.pool()
        .get()
        .await
        .unwrap()
        .execute(
            "INSERT INTO shared.user_settings (user_id, key, value, data_type) \
             VALUES ($1, 's.d', $2, 'encrypted')",
            &[&user.as_uuid(), &sealed_with(Value::Null)],
        )
        .await
        .unwrap();
    settings_repo(&db).put(user, "plain.e", json!("k1")).await;

    let counts = PgEnvelopeStore::new(db.pool().clone())
        .count_by_kid()
        .await
        .unwrap();

    assert_eq!(
        counts,
        [
            (None, 1),
            (Some("k1".to_owned()), 2),
            (Some("k2".to_owned()), 1)
        ]
    );
}

#[tokio::test]
async fn not_sealed_with_pages_through_other_kids_in_key_order() {
    let db = TestDatabase::create().await;
    let (first, second) = {
        let (a, b) = (new_user(), new_user());
        if a < b { (a, b) } else { (b, a) }
    };
    for (user, raw_key, kid) in [
        (second, "s.a", "old"),
        (first, "s.c", "old"),
        (first, "s.a", "old"),
        (first, "s.b", "current"),
        (second, "s.b", "older"),
    ] {
        store_secret(&db, user, raw_key, json!(kid)).await;
    }
    let store = PgEnvelopeStore::new(db.pool().clone());

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let batch = store.not_sealed_with("current", after, 2).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = Some((last.user_id, last.key.clone()));
        seen.extend(batch.into_iter().map(|c| (c.user_id, c.key.to_string())));
    }

    assert_eq!(
        seen,
        [
            (first, "s.a".to_owned()),
            (first, "s.c".to_owned()),
            (second, "s.a".to_owned()),
            (second, "s.b".to_owned()),
        ]
    );
}

#[tokio::test]
async fn replace_envelopes_keeps_versions_and_skips_a_changed_row() {
    let db = TestDatabase::create().await;
    let user = new_user();
    store_secret(&db, user, "s.a", json!("old")).await;
    store_secret(&db, user, "s.b", json!("old")).await;
    store_secret(&db, user, "s.c", json!("old")).await;
    let store = PgEnvelopeStore::new(db.pool().clone());
    let cells = store.not_sealed_with("new", None, 10).await.unwrap();
    let fresh = Envelope::from_value(&sealed_with(json!("new"))).unwrap();
    // A user writes s.b after the batch was read.
    store_secret(&db, user, "s.b", json!("old2")).await;

    let batch: Vec<_> = cells.iter().map(|c| (c.clone(), fresh.clone())).collect();
    let replaced = store.replace_envelopes(&batch).await.unwrap();

    assert_eq!(replaced, 2, "s.a and s.c");
    let repo = settings_repo(&db);
    for (cell, name) in [(&cells[0], "s.a"), (&cells[2], "s.c")] {
        let stored = repo.get(user, &key(name)).await.unwrap().unwrap();
        assert_eq!(
            (stored.version, stored.value),
            (cell.version, fresh.clone().into())
        );
    }
    let b = repo.get(user, &key("s.b")).await.unwrap().unwrap();
    assert_eq!(b.value.sealed().map(|e| e.kid.as_str()), Some("old2"));
}

#[tokio::test]
async fn replace_envelopes_skips_a_row_deleted_and_created_again() {
    let db = TestDatabase::create().await;
    let user = new_user();
    store_secret(&db, user, "s.a", json!("old")).await;
    let store = PgEnvelopeStore::new(db.pool().clone());
    let cells = store.not_sealed_with("new", None, 10).await.unwrap();
    let fresh = Envelope::from_value(&sealed_with(json!("new"))).unwrap();
    // The user deletes the secret and stores another one under the same key after the batch
    // was read: the rewrap of the old secret must not replace the new one.
    let repo = settings_repo(&db);
    repo.delete(
        user,
        &key("s.a"),
        Precondition::Any,
        domain::history::ChangeOrigin::User,
    )
    .await
    .unwrap();
    store_secret(&db, user, "s.a", json!("old2")).await;

    let replaced = store
        .replace_envelopes(&[(cells[0].clone(), fresh)])
        .await
        .unwrap();

    assert_eq!(replaced, 0);
    let a = repo.get(user, &key("s.a")).await.unwrap().unwrap();
    assert_ne!(a.version, cells[0].version);
    assert_eq!(a.value.to_json(), sealed_with(json!("old2")));
}
