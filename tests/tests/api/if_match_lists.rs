//! `If-Match` with several entity tags: the write proceeds when any of them is current
//! (and is then conditioned on that one), and fails with 412 when none is.

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::json;

const SETTING: &str = "/api/v1/users/me/settings/ui.theme";

/// The response's `ETag`, as sent.
fn etag(response: &reqwest::Response) -> String {
    response.headers()["etag"].to_str().unwrap().to_owned()
}

/// A setting written twice; its stale and its current ETag.
async fn written_twice(app: &TestApp, token: &str) -> (String, String) {
    let first = app.put(SETTING, token, &json!({"value": "dark"})).await;
    let stale = etag(&first);
    json_with_status(first, 201).await;
    let second = app.put(SETTING, token, &json!({"value": "light"})).await;
    let current = etag(&second);
    json_with_status(second, 200).await;
    (stale, current)
}

#[tokio::test]
async fn a_write_listing_a_stale_and_the_current_tag_succeeds() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let (stale, current) = written_twice(&app, &token).await;
    let response = app
        .request(Method::PUT, SETTING, Some(&token))
        .header("If-Match", format!("{stale}, {current}"))
        .json(&json!({"value": "sepia"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json_with_status(response, 200).await["value"], "sepia");
}

#[tokio::test]
async fn a_write_listing_no_current_tag_is_412_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let (stale, _) = written_twice(&app, &token).await;
    for list in [r#""a", "b""#.to_owned(), format!(r#"{stale}, "999999999""#)] {
        let response = app
            .request(Method::PUT, SETTING, Some(&token))
            .header("If-Match", &list)
            .json(&json!({"value": "sepia"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 412, "If-Match: {list}");
    }
    let read = app.get(SETTING, &token).await;
    assert_eq!(json_with_status(read, 200).await["value"], "light");
}

#[tokio::test]
async fn a_delete_listing_a_stale_and_the_current_tag_succeeds() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let (stale, current) = written_twice(&app, &token).await;
    let response = app
        .request(Method::DELETE, SETTING, Some(&token))
        .header("If-Match", format!("{current}, {stale}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
}

#[tokio::test]
async fn a_preferences_write_listing_the_current_tag_second_succeeds() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let path = "/api/v1/users/me/preferences";
    json_with_status(app.put(path, &token, &json!({"theme": "dark"})).await, 200).await;
    for method in [Method::PUT, Method::PATCH] {
        let current = etag(&app.get(path, &token).await);
        let response = app
            .request(method.clone(), path, Some(&token))
            .header("If-Match", format!(r#""999999999", {current}"#))
            .json(&json!({"theme": "light"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{method}");
    }
}
