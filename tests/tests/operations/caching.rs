//! Caches across instances: a write through one instance is read through another at once,
//! and a change-feed reconnect flushes the cache.

use std::time::Duration;

use e2e::{Peer, TestApp, json_with_status, new_user, read_until};
use serde_json::json;
use uuid::Uuid;

use crate::setting;

#[tokio::test]
async fn a_write_through_one_instance_is_read_through_another_at_once() {
    let a = TestApp::spawn().await;
    let b = a.spawn_peer(|_| {}).await;
    a.wait_for_change_feeds(2).await;
    let alice = a.token(new_user(), &[]);
    let key = setting("ui.layout.density");

    json_with_status(a.put(&key, &alice, &json!({"value": "compact"})).await, 201).await;
    // B caches the first value (the TTL is 5 minutes).
    for _ in 0..2 {
        assert_eq!(
            json_with_status(b.get(&key, &alice).await, 200).await["value"],
            "compact"
        );
    }

    json_with_status(a.put(&key, &alice, &json!({"value": "roomy"})).await, 200).await;
    read_until(&b, &key, &alice, Duration::from_secs(2), |status, body| {
        status == 200 && body["value"] == "roomy"
    })
    .await;
    read_until(
        &b,
        "/api/v1/users/me/settings",
        &alice,
        Duration::from_secs(2),
        |_, body| body["settings"][0]["value"] == "roomy",
    )
    .await;

    json_with_status(a.delete(&key, &alice).await, 204).await;
    read_until(&b, &key, &alice, Duration::from_secs(2), |status, _| {
        status == 404
    })
    .await;
}

#[tokio::test]
async fn preferences_written_through_one_instance_are_read_through_another_at_once() {
    let a = TestApp::spawn().await;
    let b = a.spawn_peer(|_| {}).await;
    a.wait_for_change_feeds(2).await;
    let alice = a.token(new_user(), &[]);
    let path = "/api/v1/users/me/preferences";

    assert_eq!(
        json_with_status(b.get(path, &alice).await, 200).await["theme"],
        "system"
    );
    json_with_status(a.put(path, &alice, &json!({"theme": "dark"})).await, 200).await;
    read_until(&b, path, &alice, Duration::from_secs(2), |_, body| {
        body["theme"] == "dark"
    })
    .await;
}

/// Inserts or updates a setting with triggers off, so no change notification is sent.
async fn write_silently(app: &TestApp, user: Uuid, key: &str, value: &str) {
    app.execute(&format!(
        "BEGIN;
         SET LOCAL session_replication_role = replica;
         INSERT INTO shared.users (id) VALUES ('{user}') ON CONFLICT DO NOTHING;
         INSERT INTO shared.user_settings (user_id, key, value, data_type, category)
             VALUES ('{user}', '{key}', to_jsonb('{value}'::text), 'string', 'ui')
             ON CONFLICT (user_id, key)
             DO UPDATE SET value = EXCLUDED.value,
                 version = nextval('shared.user_settings_version_seq');
         COMMIT;"
    ))
    .await;
}

#[tokio::test]
async fn killing_the_change_feed_connection_flushes_the_cache() {
    let app = TestApp::spawn().await;
    app.wait_for_change_feeds(1).await;
    let user = new_user();
    let token = app.token(user, &[]);
    let key = "ui.feed.probe";

    write_silently(&app, user, key, "old").await;
    assert_eq!(
        json_with_status(app.get(&setting(key), &token).await, 200).await["value"],
        "old"
    );
    write_silently(&app, user, key, "new").await;
    assert_eq!(
        json_with_status(app.get(&setting(key), &token).await, 200).await["value"],
        "old",
        "the cached value is served: nothing announced the change"
    );

    let killed = app
        .query_json(
            "SELECT to_jsonb(count(pg_terminate_backend(pid))) FROM pg_stat_activity \
             WHERE datname = current_database() \
             AND application_name = 'user-settings-change-feed'",
        )
        .await;
    assert_eq!(killed[0], 1);

    // The feed reconnects within its backoff and flushes everything it may have missed.
    let peer = Peer {
        address: app.address.clone(),
        client: app.client.clone(),
    };
    read_until(
        &peer,
        &setting(key),
        &token,
        Duration::from_secs(5),
        |_, body| body["value"] == "new",
    )
    .await;
    assert!(
        app.metrics()
            .await
            .contains("user_settings_change_feed_reconnects_total 1")
    );
}

#[tokio::test]
async fn a_zero_ttl_disables_the_cache() {
    let app = TestApp::spawn_with(|c| c.cache.settings_ttl = Duration::ZERO).await;
    let user = new_user();
    let token = app.token(user, &[]);
    write_silently(&app, user, "ui.uncached.value", "old").await;
    json_with_status(app.get(&setting("ui.uncached.value"), &token).await, 200).await;
    write_silently(&app, user, "ui.uncached.value", "new").await;
    let read = json_with_status(app.get(&setting("ui.uncached.value"), &token).await, 200).await;
    assert_eq!(read["value"], "new");
}
