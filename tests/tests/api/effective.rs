//! The effective view: every preference and setting in effect with its source, secrets
//! redacted, conditional on its ETag; and support's audited read of it.

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::json;

const VIEW: &str = "/api/v1/users/me/effective";

#[tokio::test]
async fn the_view_holds_every_layer_with_sources_and_secrets_redacted() {
    let app = TestApp::spawn().await;
    let operator = app.token(new_user(), &["operator"]);
    let alice = app.token(new_user(), &[]);
    let put = |key: &str| format!("/api/v1/users/me/settings/{key}");
    json_with_status(
        app.put(
            &put("ui.layout.density"),
            &alice,
            &json!({"value": "roomy"}),
        )
        .await,
        201,
    )
    .await;
    json_with_status(
        app.put(
            &put("sync.plex.api_key"),
            &alice,
            &json!({"value": "plex-s3cret"}),
        )
        .await,
        201,
    )
    .await;
    json_with_status(
        app.put(
            "/api/v1/defaults/settings/ui.player.speed",
            &operator,
            &json!({"value": 1.5}),
        )
        .await,
        201,
    )
    .await;

    let response = app.get(VIEW, &alice).await;
    let text = response.text().await.unwrap();
    assert!(
        !text.contains("plex-s3cret"),
        "the plaintext never leaves the service"
    );
    let view: serde_json::Value = serde_json::from_str(&text).unwrap();
    let settings = &view["settings"];
    assert_eq!(
        (
            &settings["ui.layout.density"]["value"],
            &settings["ui.layout.density"]["source"]
        ),
        (&json!("roomy"), &json!("user"))
    );
    assert_eq!(settings["ui.player.speed"]["source"], "deployment");
    assert_eq!(
        (
            &settings["sync.plex.api_key"]["value"],
            &settings["sync.plex.api_key"]["redacted"]
        ),
        (&json!(null), &json!(true))
    );
    assert_eq!(
        settings["playback.quality.preferences"]["source"],
        "builtin"
    );
    assert_eq!(view["preferences"]["theme"], "system");
    assert_eq!(view["preference_sources"].as_object().unwrap().len(), 12);
}

#[tokio::test]
async fn the_view_is_not_modified_until_a_layer_changes() {
    let app = TestApp::spawn().await;
    let operator = app.token(new_user(), &["operator"]);
    let alice = app.token(new_user(), &[]);
    let first = app.get(VIEW, &alice).await;
    assert_eq!(first.status(), 200);
    let tag = first.headers()["etag"].to_str().unwrap().to_owned();
    let conditional = |tag: String| {
        app.request(Method::GET, VIEW, Some(&alice))
            .header("if-none-match", tag)
            .send()
    };
    assert_eq!(conditional(tag.clone()).await.unwrap().status(), 304);

    json_with_status(
        app.put(
            "/api/v1/defaults/settings/ui.player.speed",
            &operator,
            &json!({"value": 2}),
        )
        .await,
        201,
    )
    .await;
    let changed = conditional(tag.clone()).await.unwrap();
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), tag);
}

#[tokio::test]
async fn support_reads_a_users_view_with_sources_and_the_read_is_audited() {
    let app = TestApp::spawn().await;
    let (alice_id, admin_id) = (new_user(), new_user());
    let alice = app.token(alice_id, &[]);
    json_with_status(
        app.put(
            "/api/v1/users/me/settings/sync.plex.api_key",
            &alice,
            &json!({"value": "p"}),
        )
        .await,
        201,
    )
    .await;
    let path = format!("/api/v1/admin/users/{alice_id}/effective");
    json_with_status(app.get(&path, &alice).await, 403).await;

    let view = json_with_status(app.get(&path, &app.token(admin_id, &["admin"])).await, 200).await;
    assert_eq!(view["settings"]["sync.plex.api_key"]["redacted"], true);
    assert_eq!(view["preference_sources"]["theme"], "builtin");
    let audited = app
        .query_json(&format!(
            "SELECT to_jsonb(count(*)) FROM shared.user_settings_audit \
             WHERE actor_id = '{admin_id}' AND subject_user_id = '{alice_id}' \
             AND action = 'admin_read'"
        ))
        .await;
    assert_eq!(audited[0], 1);
}

#[tokio::test]
async fn a_write_is_in_the_next_view_on_this_instance_and_on_another_within_a_second() {
    let a = TestApp::spawn().await;
    let b = a.spawn_peer(|_| {}).await;
    a.wait_for_change_feeds(2).await;
    let alice = a.token(new_user(), &[]);
    let key = "/api/v1/users/me/settings/ui.layout.density";
    // Both instances hold a rendered view.
    json_with_status(a.get(VIEW, &alice).await, 200).await;
    json_with_status(b.get(VIEW, &alice).await, 200).await;

    json_with_status(a.put(key, &alice, &json!({"value": "roomy"})).await, 201).await;
    let here = json_with_status(a.get(VIEW, &alice).await, 200).await;
    assert_eq!(here["settings"]["ui.layout.density"]["value"], "roomy");
    e2e::read_until(
        &b,
        VIEW,
        &alice,
        std::time::Duration::from_secs(1),
        |status, view| status == 200 && view["settings"]["ui.layout.density"]["value"] == "roomy",
    )
    .await;

    let patch = a
        .request(Method::PATCH, "/api/v1/users/me/preferences", Some(&alice))
        .json(&json!({"theme": "dark"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    let here = json_with_status(a.get(VIEW, &alice).await, 200).await;
    assert_eq!(here["preferences"]["theme"], "dark");
}

#[tokio::test]
async fn a_device_override_shadows_the_users_value_on_that_device_only() {
    let app = TestApp::spawn().await;
    let alice_id = new_user();
    let alice = app.token(alice_id, &[]);
    let density = "ui.layout.density";
    json_with_status(
        app.put(
            &format!("/api/v1/users/me/settings/{density}"),
            &alice,
            &json!({"value": "roomy"}),
        )
        .await,
        201,
    )
    .await;
    // The TV's view is rendered (and cached) before its override exists.
    let before = json_with_status(app.get(&format!("{VIEW}?device=tv"), &alice).await, 200).await;
    assert_eq!(before["settings"][density]["source"], "user");

    json_with_status(
        app.put(
            &format!("/api/v1/users/me/devices/tv/settings/{density}"),
            &alice,
            &json!({"value": "compact"}),
        )
        .await,
        201,
    )
    .await;

    let on_tv = json_with_status(app.get(&format!("{VIEW}?device=tv"), &alice).await, 200).await;
    assert_eq!(
        (
            &on_tv["settings"][density]["value"],
            &on_tv["settings"][density]["source"]
        ),
        (&json!("compact"), &json!("device"))
    );
    for elsewhere in [VIEW.to_owned(), format!("{VIEW}?device=phone")] {
        let view = json_with_status(app.get(&elsewhere, &alice).await, 200).await;
        assert_eq!(
            (
                &view["settings"][density]["value"],
                &view["settings"][density]["source"]
            ),
            (&json!("roomy"), &json!("user")),
            "{elsewhere}"
        );
    }
    let one = app
        .get(
            &format!("/api/v1/users/me/effective/settings/{density}?device=tv"),
            &alice,
        )
        .await;
    assert_eq!(json_with_status(one, 200).await["source"], "device");
    let support = app
        .get(
            &format!("/api/v1/admin/users/{alice_id}/effective?device=tv"),
            &app.token(new_user(), &["admin"]),
        )
        .await;
    assert_eq!(
        json_with_status(support, 200).await["settings"][density]["source"],
        "device"
    );
    let bad = app
        .get(&format!("{VIEW}?device=not%20a%20device"), &alice)
        .await;
    assert_eq!(
        json_with_status(bad, 422).await["errors"][0]["code"],
        "invalid_device_id"
    );
}
