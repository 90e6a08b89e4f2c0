//! `If-Match: *`: the write or delete happens only if the setting exists (RFC 9110 13.1.1),
//! decided by the store in the same statement as the write.

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::json;

const SETTING: &str = "/api/v1/users/me/settings/ui.theme";

async fn put_if_exists(app: &TestApp, token: &str, value: &str) -> reqwest::Response {
    app.request(Method::PUT, SETTING, Some(token))
        .header("If-Match", "*")
        .json(&json!({ "value": value }))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_put_with_if_match_star_on_an_absent_setting_is_412_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);

    let response = put_if_exists(&app, &token, "dark").await;

    assert_eq!(response.status(), 412);
    assert_eq!(app.get(SETTING, &token).await.status(), 404);
}

#[tokio::test]
async fn a_put_with_if_match_star_on_a_present_setting_writes() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    json_with_status(
        app.put(SETTING, &token, &json!({"value": "dark"})).await,
        201,
    )
    .await;

    let response = put_if_exists(&app, &token, "light").await;

    assert_eq!(json_with_status(response, 200).await["value"], "light");
}

#[tokio::test]
async fn a_post_with_if_match_star_on_an_absent_setting_is_412() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);

    let response = app
        .request(Method::POST, "/api/v1/users/me/settings", Some(&token))
        .header("If-Match", "*")
        .json(&json!({"key": "ui.theme", "value": "dark"}))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 412);
}

#[tokio::test]
async fn a_delete_with_if_match_star_on_an_absent_setting_is_412() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);

    let response = app
        .request(Method::DELETE, SETTING, Some(&token))
        .header("If-Match", "*")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 412);
}

#[tokio::test]
async fn a_delete_with_if_match_star_on_a_present_setting_deletes() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    json_with_status(
        app.put(SETTING, &token, &json!({"value": "dark"})).await,
        201,
    )
    .await;

    let response = app
        .request(Method::DELETE, SETTING, Some(&token))
        .header("If-Match", "*")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 204);
    assert_eq!(app.get(SETTING, &token).await.status(), 404);
}

#[tokio::test]
async fn a_preferences_patch_with_if_match_star_holds_for_the_defaults() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);

    let response = app
        .request(Method::PATCH, "/api/v1/users/me/preferences", Some(&token))
        .header("If-Match", "*")
        .header("Content-Type", "application/merge-patch+json")
        .body(r#"{"theme":"dark"}"#)
        .send()
        .await
        .unwrap();

    assert_eq!(json_with_status(response, 200).await["theme"], "dark");
}
