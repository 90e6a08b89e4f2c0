//! `PgDefaultsRepository`: the deployment layer, each write audited in its transaction.

use adapter_postgres::{PgDefaultsRepository, testing::TestDatabase};
use domain::{
    audit::{Actor, Role},
    ports::DefaultsRepository,
};
use serde_json::{Value, json};

use crate::support::{key, new_user, write};

fn operator() -> Actor {
    Actor {
        id: new_user(),
        role: Role::Operator,
        request_id: Some("req-1".to_owned()),
        client_request_id: None,
    }
}

#[tokio::test]
async fn a_default_is_stored_replaced_with_a_new_version_and_removed() {
    let db = TestDatabase::create().await;
    let repo = PgDefaultsRepository::new(db.pool().clone());
    let actor = operator();

    let (first, created) = repo
        .put_setting(&write("ui.a.b", json!("x")), false, &actor)
        .await
        .unwrap();
    assert!(created);
    let (second, created) = repo
        .put_setting(&write("ui.a.b", json!("y")), true, &actor)
        .await
        .unwrap();
    assert!(!created);
    assert!(second.version > first.version);

    let layer = repo.load().await.unwrap();
    let stored = layer.setting("ui.a.b").unwrap();
    assert_eq!((&stored.value, stored.enforced), (&json!("y"), true));
    assert!(layer.enforces("ui.a.b"));

    assert!(repo.delete_setting(&key("ui.a.b"), &actor).await.unwrap());
    assert!(!repo.delete_setting(&key("ui.a.b"), &actor).await.unwrap());
    assert!(repo.load().await.unwrap().settings.is_empty());
}

#[tokio::test]
async fn every_change_and_only_a_change_is_audited_without_a_subject() {
    let db = TestDatabase::create().await;
    let repo = PgDefaultsRepository::new(db.pool().clone());
    let actor = operator();
    repo.put_setting(&write("ui.a.b", json!(1)), false, &actor)
        .await
        .unwrap();
    repo.delete_setting(&key("ui.a.b"), &actor).await.unwrap();
    // Nothing to remove: nothing happened, nothing is recorded.
    repo.delete_setting(&key("ui.a.b"), &actor).await.unwrap();

    let client = db.pool().get().await.unwrap();
    let rows = client
        .query(
            "SELECT to_jsonb(action), to_jsonb(actor_role), coalesce(to_jsonb(subject_user_id), 'null'), \
             to_jsonb(request_id) FROM shared.user_settings_audit \
             WHERE actor_id = $1 ORDER BY id",
            &[&actor.id.as_uuid()],
        )
        .await
        .unwrap();
    let rows: Vec<[Value; 4]> = rows
        .iter()
        .map(|r| [r.get(0), r.get(1), r.get(2), r.get(3)])
        .collect();
    let expected = [
        json!("defaults_write"),
        json!("operator"),
        Value::Null,
        json!("req-1"),
    ];
    assert_eq!(rows, [expected.clone(), expected]);
}
