//! The device layer: a device's own override of a setting (bodies, ETags and preconditions of
//! the user's own), apart from the user's value and other devices; secrets, managed and
//! enforced keys refused; the devices listing, forgetting a device; the user's quotas.

use std::num::NonZeroU32;

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::{Value, json};

fn on(device: &str, key: &str) -> String {
    format!("/api/v1/users/me/devices/{device}/settings/{key}")
}

fn own(key: &str) -> String {
    format!("/api/v1/users/me/settings/{key}")
}

const DEVICES: &str = "/api/v1/users/me/devices";

fn etag(response: &reqwest::Response) -> String {
    response.headers()["etag"].to_str().unwrap().to_owned()
}

/// The `(field, code)` of every problem of a 422.
fn problems(body: &Value) -> Vec<(String, String)> {
    body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_device_setting_is_put_read_and_deleted_with_etags_and_preconditions() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let path = on("phone", "ui.theme.mode");

    let created = app.put(&path, &token, &json!({"value": "dark"})).await;
    assert_eq!(created.headers()["location"], path.as_str());
    let first = etag(&created);
    let body = json_with_status(created, 201).await;
    assert_eq!(
        (
            &body["key"],
            &body["value"],
            &body["redacted"],
            &body["data_type"]
        ),
        (
            &json!("ui.theme.mode"),
            &json!("dark"),
            &json!(false),
            &json!("string")
        )
    );
    assert_eq!(first, format!("\"{}\"", body["version"]));

    let read = app.get(&path, &token).await;
    assert_eq!(etag(&read), first);
    assert_eq!(json_with_status(read, 200).await["value"], "dark");
    let unchanged = app
        .request(Method::GET, &path, Some(&token))
        .header("If-None-Match", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(unchanged.status(), 304);

    let create_only = app
        .request(Method::PUT, &path, Some(&token))
        .header("If-None-Match", "*")
        .json(&json!({"value": "light"}))
        .send()
        .await
        .unwrap();
    json_with_status(create_only, 412).await;
    let stale = app
        .request(Method::PUT, &path, Some(&token))
        .header("If-Match", "\"0\"")
        .json(&json!({"value": "light"}))
        .send()
        .await
        .unwrap();
    json_with_status(stale, 412).await;
    let updated = app
        .request(Method::PUT, &path, Some(&token))
        .header("If-Match", &first)
        .json(&json!({"value": "light"}))
        .send()
        .await
        .unwrap();
    let second = etag(&updated);
    assert_ne!(second, first);
    assert_eq!(json_with_status(updated, 200).await["value"], "light");

    let stale_delete = app
        .request(Method::DELETE, &path, Some(&token))
        .header("If-Match", &first)
        .send()
        .await
        .unwrap();
    json_with_status(stale_delete, 412).await;
    let deleted = app
        .request(Method::DELETE, &path, Some(&token))
        .header("If-Match", &second)
        .send()
        .await
        .unwrap();
    json_with_status(deleted, 204).await;
    let gone = json_with_status(app.get(&path, &token).await, 404).await;
    assert_eq!(gone["code"], "setting_not_found");
    json_with_status(app.delete(&path, &token).await, 404).await;
}

#[tokio::test]
async fn writes_without_a_precondition_answer_428_when_the_deployment_requires_one() {
    let app = TestApp::spawn_with(|c| c.server.require_if_match = true).await;
    let token = app.token(new_user(), &[]);
    let refused = app
        .put(&on("phone", "ui.x"), &token, &json!({"value": 1}))
        .await;
    assert_eq!(
        json_with_status(refused, 428).await["code"],
        "precondition_required"
    );
}

#[tokio::test]
async fn a_device_override_changes_neither_the_users_value_nor_another_devices() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let mine = app
        .put(&own("ui.theme.mode"), &token, &json!({"value": "light"}))
        .await;
    let mine_etag = etag(&mine);
    json_with_status(mine, 201).await;

    json_with_status(
        app.put(
            &on("phone", "ui.theme.mode"),
            &token,
            &json!({"value": "dark"}),
        )
        .await,
        201,
    )
    .await;

    let read = app.get(&own("ui.theme.mode"), &token).await;
    assert_eq!(etag(&read), mine_etag);
    assert_eq!(json_with_status(read, 200).await["value"], "light");
    json_with_status(app.get(&on("tv", "ui.theme.mode"), &token).await, 404).await;
    let someone_else = app.token(new_user(), &[]);
    json_with_status(
        app.get(&on("phone", "ui.theme.mode"), &someone_else).await,
        404,
    )
    .await;
}

#[tokio::test]
async fn a_secret_on_a_device_is_not_layerable_and_never_echoed() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let secret = "plex-token-that-must-not-leak";

    for (key, body) in [
        ("sync.plex.api_key", json!({"value": secret})),
        (
            "ui.private.note",
            json!({"value": secret, "data_type": "encrypted"}),
        ),
    ] {
        let refused = app.put(&on("phone", key), &token, &body).await;
        let status = refused.status().as_u16();
        let text = refused.text().await.unwrap();
        assert_eq!(status, 422, "{text}");
        assert!(text.contains("\"not_layerable\""), "{text}");
        assert!(!text.contains(secret), "{text}");
        json_with_status(app.get(&on("phone", key), &token).await, 404).await;
    }
    let listed = json_with_status(app.get(DEVICES, &token).await, 200).await;
    assert_eq!(listed, json!({"devices": []}));
}

#[tokio::test]
async fn a_key_an_integration_manages_is_refused_on_a_device() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let refused = app
        .put(
            &on("phone", "scrobbling.trakt.oauth_tokens"),
            &token,
            &json!({"value": {"access_token": "forged"}}),
        )
        .await;
    assert_eq!(
        json_with_status(refused, 409).await["code"],
        "managed_by_integration"
    );
}

#[tokio::test]
async fn an_enforced_key_refuses_device_writes_and_deletes_and_keeps_the_stored_override() {
    let app = TestApp::spawn().await;
    let operator = app.token(new_user(), &["operator"]);
    let token = app.token(new_user(), &[]);
    let key = "ui.layout.density";
    json_with_status(
        app.put(&on("tv", key), &token, &json!({"value": "roomy"}))
            .await,
        201,
    )
    .await;
    json_with_status(
        app.put(
            &format!("/api/v1/defaults/settings/{key}"),
            &operator,
            &json!({"value": "compact", "enforced": true}),
        )
        .await,
        201,
    )
    .await;

    let put = app
        .put(&on("tv", key), &token, &json!({"value": "cozy"}))
        .await;
    assert_eq!(
        json_with_status(put, 409).await["code"],
        "enforced_by_deployment"
    );
    let created = app
        .put(&on("phone", key), &token, &json!({"value": "cozy"}))
        .await;
    assert_eq!(
        json_with_status(created, 409).await["code"],
        "enforced_by_deployment"
    );
    let delete = app.delete(&on("tv", key), &token).await;
    assert_eq!(
        json_with_status(delete, 409).await["code"],
        "enforced_by_deployment"
    );
    let kept = json_with_status(app.get(&on("tv", key), &token).await, 200).await;
    assert_eq!(kept["value"], "roomy");
}

#[tokio::test]
async fn devices_are_listed_by_id_and_forgetting_one_removes_only_its_overrides() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    for (device, key) in [("tv", "ui.a"), ("phone", "ui.a"), ("phone", "ui.b")] {
        json_with_status(
            app.put(&on(device, key), &token, &json!({"value": 1}))
                .await,
            201,
        )
        .await;
    }

    let listed = json_with_status(app.get(DEVICES, &token).await, 200).await;
    let summary: Vec<(&str, i64)> = listed["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert!(d["updated_at"].is_string(), "{d}");
            (
                d["device_id"].as_str().unwrap(),
                d["settings"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(summary, [("phone", 2), ("tv", 1)]);

    json_with_status(app.delete(&format!("{DEVICES}/phone"), &token).await, 204).await;
    let listed = json_with_status(app.get(DEVICES, &token).await, 200).await;
    assert_eq!(listed["devices"].as_array().unwrap().len(), 1);
    assert_eq!(listed["devices"][0]["device_id"], "tv");
    json_with_status(app.get(&on("phone", "ui.a"), &token).await, 404).await;
    json_with_status(app.get(&on("tv", "ui.a"), &token).await, 200).await;
    let again = json_with_status(app.delete(&format!("{DEVICES}/phone"), &token).await, 404).await;
    assert_eq!(again["code"], "device_not_found");
}

#[tokio::test]
async fn a_malformed_device_id_answers_422_on_the_device_id_field() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let long = "x".repeat(65);
    for device in ["my%20phone", "t%C3%A9l", long.as_str()] {
        let put = app
            .put(&on(device, "ui.x"), &token, &json!({"value": 1}))
            .await;
        let body = json_with_status(put, 422).await;
        assert_eq!(
            problems(&body),
            [("device_id".to_owned(), "invalid_device_id".to_owned())],
            "{device}"
        );
        for response in [
            app.get(&on(device, "ui.x"), &token).await,
            app.delete(&format!("{DEVICES}/{device}"), &token).await,
        ] {
            let body = json_with_status(response, 422).await;
            assert_eq!(problems(&body)[0].0, "device_id", "{device}");
        }
    }
}

#[tokio::test]
async fn device_overrides_count_against_the_users_settings_quota() {
    let app = TestApp::spawn_with(|c| c.validation.max_settings_per_user = 2).await;
    let token = app.token(new_user(), &[]);
    json_with_status(
        app.put(&own("ui.a"), &token, &json!({"value": 1})).await,
        201,
    )
    .await;
    json_with_status(
        app.put(&on("phone", "ui.a"), &token, &json!({"value": 2}))
            .await,
        201,
    )
    .await;

    for path in [on("tv", "ui.a"), own("ui.b")] {
        let refused =
            json_with_status(app.put(&path, &token, &json!({"value": 3})).await, 422).await;
        assert_eq!(
            problems(&refused),
            [("key".to_owned(), "quota_exceeded".to_owned())],
            "{path}"
        );
    }
    // An update adds no setting.
    json_with_status(
        app.put(&on("phone", "ui.a"), &token, &json!({"value": 4}))
            .await,
        200,
    )
    .await;
}

#[tokio::test]
async fn a_device_beyond_the_device_quota_is_refused_on_the_device_id_field() {
    let app = TestApp::spawn_with(|c| {
        c.validation.max_devices_per_user = NonZeroU32::new(2).unwrap();
    })
    .await;
    let token = app.token(new_user(), &[]);
    for device in ["phone", "tv"] {
        json_with_status(
            app.put(&on(device, "ui.a"), &token, &json!({"value": 1}))
                .await,
            201,
        )
        .await;
    }

    let third = json_with_status(
        app.put(&on("watch", "ui.a"), &token, &json!({"value": 1}))
            .await,
        422,
    )
    .await;
    assert_eq!(
        problems(&third),
        [("device_id".to_owned(), "too_many_devices".to_owned())]
    );
    json_with_status(
        app.put(&on("tv", "ui.b"), &token, &json!({"value": 1}))
            .await,
        201,
    )
    .await;
    json_with_status(app.get(&on("watch", "ui.a"), &token).await, 404).await;
}
