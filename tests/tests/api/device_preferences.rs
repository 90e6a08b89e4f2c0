//! The device layer of the preferences: a device's overrides shadow the user's values on that
//! device only, `null` removes one, enforcement wins, and a device counts once towards the
//! user's devices whatever it overrides.

use std::num::NonZeroU32;

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::{Value, json};

fn prefs_of(device: &str) -> String {
    format!("/api/v1/users/me/devices/{device}/preferences")
}

async fn patch(app: &TestApp, path: &str, token: &str, body: &Value) -> reqwest::Response {
    app.request(Method::PATCH, path, Some(token))
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_device_override_applies_on_that_device_only_and_null_removes_it() {
    let app = TestApp::spawn().await;
    let alice = app.token(new_user(), &[]);
    json_with_status(
        patch(
            &app,
            "/api/v1/users/me/preferences",
            &alice,
            &json!({"theme": "light"}),
        )
        .await,
        200,
    )
    .await;
    let none = json_with_status(app.get(&prefs_of("tv"), &alice).await, 200).await;
    assert_eq!(none, json!({}));

    let set = patch(
        &app,
        &prefs_of("tv"),
        &alice,
        &json!({"theme": "dark", "auto_play_videos": false}),
    )
    .await;
    assert_eq!(
        json_with_status(set, 200).await,
        json!({"theme": "dark", "auto_play_videos": false})
    );
    let on_tv = json_with_status(
        app.get("/api/v1/users/me/effective?device=tv", &alice)
            .await,
        200,
    )
    .await;
    assert_eq!(
        (
            &on_tv["preferences"]["theme"],
            &on_tv["preference_sources"]["theme"]
        ),
        (&json!("dark"), &json!("device"))
    );
    let own = json_with_status(app.get("/api/v1/users/me/preferences", &alice).await, 200).await;
    assert_eq!(
        (&own["theme"], &own["sources"]["theme"]),
        (&json!("light"), &json!("user"))
    );
    let phone = json_with_status(
        app.get("/api/v1/users/me/effective?device=phone", &alice)
            .await,
        200,
    )
    .await;
    assert_eq!(phone["preferences"]["theme"], "light");

    let removed = patch(&app, &prefs_of("tv"), &alice, &json!({"theme": null})).await;
    assert_eq!(
        json_with_status(removed, 200).await,
        json!({"auto_play_videos": false})
    );
    let on_tv = json_with_status(
        app.get("/api/v1/users/me/effective?device=tv", &alice)
            .await,
        200,
    )
    .await;
    assert_eq!(on_tv["preference_sources"]["theme"], "user");
}

#[tokio::test]
async fn the_listing_names_what_each_device_overrides_and_forgetting_one_removes_it_all() {
    let app = TestApp::spawn().await;
    let alice = app.token(new_user(), &[]);
    json_with_status(
        patch(
            &app,
            &prefs_of("tv"),
            &alice,
            &json!({"show_spoilers": true}),
        )
        .await,
        200,
    )
    .await;
    json_with_status(
        app.put(
            "/api/v1/users/me/devices/tv/settings/ui.layout.density",
            &alice,
            &json!({"value": "x"}),
        )
        .await,
        201,
    )
    .await;
    json_with_status(
        patch(&app, &prefs_of("phone"), &alice, &json!({"theme": "dark"})).await,
        200,
    )
    .await;

    let list = json_with_status(app.get("/api/v1/users/me/devices", &alice).await, 200).await;
    let devices = list["devices"].as_array().unwrap();
    let summary: Vec<(Value, Value, Value)> = devices
        .iter()
        .map(|d| {
            (
                d["device_id"].clone(),
                d["settings"].clone(),
                d["preferences"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (json!("phone"), json!(0), json!(["theme"])),
            (json!("tv"), json!(1), json!(["show_spoilers"])),
        ]
    );

    assert_eq!(
        app.delete("/api/v1/users/me/devices/tv", &alice)
            .await
            .status(),
        204
    );
    assert_eq!(
        json_with_status(app.get(&prefs_of("tv"), &alice).await, 200).await,
        json!({})
    );
    assert_eq!(
        app.request(Method::DELETE, &prefs_of("phone"), Some(&alice))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let list = json_with_status(app.get("/api/v1/users/me/devices", &alice).await, 200).await;
    assert_eq!(list["devices"], json!([]));
}

#[tokio::test]
async fn an_enforced_field_cannot_be_overridden_on_a_device() {
    let app = TestApp::spawn().await;
    let operator = app.token(new_user(), &["operator"]);
    let alice = app.token(new_user(), &[]);
    let enforce = json!({"values": {"auto_play_videos": false}, "enforced": ["auto_play_videos"]});
    json_with_status(
        patch(&app, "/api/v1/defaults/preferences", &operator, &enforce).await,
        200,
    )
    .await;

    let refused = patch(
        &app,
        &prefs_of("tv"),
        &alice,
        &json!({"auto_play_videos": true}),
    )
    .await;
    assert_eq!(
        json_with_status(refused, 409).await["code"],
        "enforced_by_deployment"
    );
    // Echoing the enforced value is no change.
    json_with_status(
        patch(
            &app,
            &prefs_of("tv"),
            &alice,
            &json!({"auto_play_videos": false}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        json_with_status(app.get(&prefs_of("tv"), &alice).await, 200).await,
        json!({})
    );
}

#[tokio::test]
async fn a_device_counts_once_towards_the_devices_whatever_it_overrides() {
    let app = TestApp::spawn_with(|c| {
        c.validation.max_devices_per_user = NonZeroU32::new(2).unwrap();
    })
    .await;
    let alice = app.token(new_user(), &[]);
    json_with_status(
        app.put(
            "/api/v1/users/me/devices/tv/settings/ui.a",
            &alice,
            &json!({"value": 1}),
        )
        .await,
        201,
    )
    .await;
    // The TV's preferences do not make it a second device.
    json_with_status(
        patch(&app, &prefs_of("tv"), &alice, &json!({"theme": "dark"})).await,
        200,
    )
    .await;
    json_with_status(
        patch(&app, &prefs_of("phone"), &alice, &json!({"theme": "dark"})).await,
        200,
    )
    .await;

    let third = patch(&app, &prefs_of("watch"), &alice, &json!({"theme": "dark"})).await;
    let problem = json_with_status(third, 422).await;
    assert_eq!(
        (
            &problem["errors"][0]["field"],
            &problem["errors"][0]["code"]
        ),
        (&json!("device_id"), &json!("too_many_devices"))
    );
    let bad = patch(
        &app,
        &prefs_of("not a device"),
        &alice,
        &json!({"theme": "dark"}),
    )
    .await;
    assert_eq!(
        json_with_status(bad, 422).await["errors"][0]["code"],
        "invalid_device_id"
    );
}
