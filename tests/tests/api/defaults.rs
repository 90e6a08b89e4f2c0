//! The deployment layer of settings: an operator's value reaches every user who never chose,
//! enforcement wins and lifts, secrets are refused, every write is audited.

use std::time::Duration;

use e2e::{TestApp, json_with_status, new_user, read_until};
use serde_json::json;

const KEY: &str = "ui.layout.density";

fn default_of(key: &str) -> String {
    format!("/api/v1/defaults/settings/{key}")
}

fn own(key: &str) -> String {
    format!("/api/v1/users/me/settings/{key}")
}

fn effective(key: &str) -> String {
    format!("/api/v1/users/me/effective/settings/{key}")
}

#[tokio::test]
async fn a_deployment_default_reaches_a_user_who_never_chose_and_not_one_who_did() {
    let app = TestApp::spawn().await;
    let operator = app.token(new_user(), &["operator"]);
    let (newcomer, chooser) = (app.token(new_user(), &[]), app.token(new_user(), &[]));
    json_with_status(
        app.put(&own(KEY), &chooser, &json!({"value": "roomy"}))
            .await,
        201,
    )
    .await;

    let set = app
        .put(&default_of(KEY), &operator, &json!({"value": "compact"}))
        .await;
    let created = json_with_status(set, 201).await;
    assert_eq!(
        (&created["value"], &created["enforced"]),
        (&json!("compact"), &json!(false))
    );

    let inherited = json_with_status(app.get(&effective(KEY), &newcomer).await, 200).await;
    assert_eq!(
        (&inherited["value"], &inherited["source"]),
        (&json!("compact"), &json!("deployment"))
    );
    // The user layer of the newcomer stays empty: nothing was copied into it.
    json_with_status(app.get(&own(KEY), &newcomer).await, 404).await;
    let chosen = json_with_status(app.get(&effective(KEY), &chooser).await, 200).await;
    assert_eq!(
        (&chosen["value"], &chosen["source"]),
        (&json!("roomy"), &json!("user"))
    );
    let layer = json_with_status(app.get("/api/v1/defaults", &newcomer).await, 200).await;
    assert_eq!(layer["settings"][KEY]["value"], "compact");
}

#[tokio::test]
async fn an_enforced_default_refuses_user_writes_and_the_stored_value_returns_when_lifted() {
    let app = TestApp::spawn().await;
    let operator = app.token(new_user(), &["operator"]);
    let alice = app.token(new_user(), &[]);
    json_with_status(
        app.put(&own(KEY), &alice, &json!({"value": "roomy"})).await,
        201,
    )
    .await;
    let enforce = json!({"value": "compact", "enforced": true});
    json_with_status(app.put(&default_of(KEY), &operator, &enforce).await, 201).await;

    let refused = app.put(&own(KEY), &alice, &json!({"value": "cozy"})).await;
    assert_eq!(
        json_with_status(refused, 409).await["code"],
        "enforced_by_deployment"
    );
    let refused = app.delete(&own(KEY), &alice).await;
    assert_eq!(
        json_with_status(refused, 409).await["code"],
        "enforced_by_deployment"
    );
    let bulk = json!({"settings": [{"key": KEY, "value": "cozy"}]});
    let refused = app.put("/api/v1/users/me/settings", &alice, &bulk).await;
    assert_eq!(
        json_with_status(refused, 409).await["code"],
        "enforced_by_deployment"
    );
    let enforced = json_with_status(app.get(&effective(KEY), &alice).await, 200).await;
    assert_eq!(
        (
            &enforced["value"],
            &enforced["source"],
            &enforced["enforced"]
        ),
        (&json!("compact"), &json!("deployment"), &json!(true))
    );
    // The user's own value is still stored.
    assert_eq!(
        json_with_status(app.get(&own(KEY), &alice).await, 200).await["value"],
        "roomy"
    );

    let lift = json!({"value": "compact", "enforced": false});
    json_with_status(app.put(&default_of(KEY), &operator, &lift).await, 200).await;
    let back = json_with_status(app.get(&effective(KEY), &alice).await, 200).await;
    assert_eq!(
        (&back["value"], &back["source"], &back["enforced"]),
        (&json!("roomy"), &json!("user"), &json!(false))
    );
}

#[tokio::test]
async fn a_secret_cannot_be_a_deployment_default() {
    let app = TestApp::spawn().await;
    let operator = app.token(new_user(), &["operator"]);
    let refused = app
        .put(
            &default_of("sync.plex.api_key"),
            &operator,
            &json!({"value": "s3cret"}),
        )
        .await;
    let problem = json_with_status(refused, 422).await;
    assert_eq!(problem["code"], "not_layerable");
    assert!(!problem.to_string().contains("s3cret"));
    // An integration's credentials belong to its routes.
    let refused = app
        .put(
            &default_of("scrobbling.trakt.oauth_tokens"),
            &operator,
            &json!({"value": {"access_token": "a"}}),
        )
        .await;
    assert_eq!(
        json_with_status(refused, 409).await["code"],
        "managed_by_integration"
    );
    let layer = json_with_status(app.get("/api/v1/defaults", &operator).await, 200).await;
    assert_eq!(layer["settings"], json!({}));
}

#[tokio::test]
async fn only_an_operator_writes_defaults_and_each_write_is_audited() {
    let app = TestApp::spawn().await;
    let (operator_id, admin) = (new_user(), app.token(new_user(), &["admin"]));
    let operator = app.token(operator_id, &["operator"]);
    let refused = app
        .put(&default_of(KEY), &admin, &json!({"value": "compact"}))
        .await;
    assert_eq!(json_with_status(refused, 403).await["code"], "forbidden");
    let invalid = app
        .put(&default_of(KEY), &operator, &json!({"value": null}))
        .await;
    json_with_status(invalid, 422).await;

    json_with_status(
        app.put(&default_of(KEY), &operator, &json!({"value": "compact"}))
            .await,
        201,
    )
    .await;
    assert_eq!(app.delete(&default_of(KEY), &operator).await.status(), 204);
    assert_eq!(
        json_with_status(app.delete(&default_of(KEY), &operator).await, 404).await["code"],
        "default_not_found"
    );

    let audited = app
        .query_json(&format!(
            "SELECT to_jsonb(array_agg(action || ' ' || key ORDER BY id)) \
             FROM shared.user_settings_audit \
             WHERE actor_id = '{operator_id}' AND actor_role = 'operator' \
             AND subject_user_id IS NULL"
        ))
        .await;
    assert_eq!(
        audited[0],
        json!([
            format!("defaults_write {KEY}"),
            format!("defaults_write {KEY}")
        ])
    );
}

#[tokio::test]
async fn a_registry_default_is_the_builtin_layer_and_a_key_no_layer_has_is_404() {
    let app = TestApp::spawn().await;
    let alice = app.token(new_user(), &[]);
    let builtin = json_with_status(
        app.get(&effective("playback.quality.preferences"), &alice)
            .await,
        200,
    )
    .await;
    assert_eq!(
        (&builtin["source"], &builtin["version"]),
        (&json!("builtin"), &json!(0))
    );
    let nothing = app.get(&effective("ui.nobody.sets"), &alice).await;
    json_with_status(nothing, 404).await;
}

#[tokio::test]
async fn two_instances_agree_on_a_deployment_change_within_a_second() {
    let a = TestApp::spawn().await;
    let b = a.spawn_peer(|_| {}).await;
    a.wait_for_change_feeds(2).await;
    let operator = a.token(new_user(), &["operator"]);
    let alice = a.token(new_user(), &[]);
    json_with_status(
        a.put(&default_of(KEY), &operator, &json!({"value": "compact"}))
            .await,
        201,
    )
    .await;
    // B now holds the layer in its cache.
    let read = json_with_status(b.get(&effective(KEY), &alice).await, 200).await;
    assert_eq!(read["value"], "compact");

    json_with_status(
        a.put(&default_of(KEY), &operator, &json!({"value": "roomy"}))
            .await,
        200,
    )
    .await;
    read_until(
        &b,
        &effective(KEY),
        &alice,
        Duration::from_secs(1),
        |status, body| status == 200 && body["value"] == "roomy",
    )
    .await;
}

#[tokio::test]
async fn deleting_the_users_own_value_resets_it_to_the_default_in_effect() {
    let app = TestApp::spawn().await;
    let operator = app.token(new_user(), &["operator"]);
    let alice = app.token(new_user(), &[]);
    json_with_status(
        app.put(&default_of(KEY), &operator, &json!({"value": "compact"}))
            .await,
        201,
    )
    .await;
    json_with_status(
        app.put(&own(KEY), &alice, &json!({"value": "roomy"})).await,
        201,
    )
    .await;
    assert_eq!(
        json_with_status(app.get(&effective(KEY), &alice).await, 200).await["source"],
        "user"
    );

    assert_eq!(app.delete(&own(KEY), &alice).await.status(), 204);
    let reset = json_with_status(app.get(&effective(KEY), &alice).await, 200).await;
    assert_eq!(
        (&reset["value"], &reset["source"]),
        (&json!("compact"), &json!("deployment"))
    );
}
