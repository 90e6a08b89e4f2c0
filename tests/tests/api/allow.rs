//! 405 answers name the methods the resource serves in `Allow` (RFC 9110 15.5.6).

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;

async fn refused(app: &TestApp, method: Method, path: &str) -> (String, serde_json::Value) {
    let token = app.token(new_user(), &["admin"]);
    let response = app
        .request(method, path, Some(&token))
        .send()
        .await
        .unwrap();
    let allow = response.headers()["allow"].to_str().unwrap().to_owned();
    (allow, json_with_status(response, 405).await)
}

#[tokio::test]
async fn a_405_on_a_setting_lists_get_put_and_delete() {
    let app = TestApp::spawn().await;
    let (allow, problem) = refused(&app, Method::PATCH, "/api/v1/users/me/settings/ui.theme").await;
    assert_eq!(allow, "DELETE, GET, PUT");
    assert_eq!(problem["code"], "method_not_allowed");
}

#[tokio::test]
async fn a_405_on_the_settings_collection_lists_the_bulk_put_too() {
    let app = TestApp::spawn().await;
    let (allow, _) = refused(&app, Method::DELETE, "/api/v1/users/me/settings").await;
    assert_eq!(allow, "GET, POST, PUT");
}

#[tokio::test]
async fn a_405_on_a_read_only_admin_route_allows_only_get() {
    let app = TestApp::spawn().await;
    let path = format!("/api/v1/admin/users/{}/preferences", new_user());
    let (allow, _) = refused(&app, Method::PUT, &path).await;
    assert_eq!(allow, "GET");
}

#[tokio::test]
async fn a_405_on_an_operational_route_allows_only_get() {
    let app = TestApp::spawn().await;
    let (allow, _) = refused(&app, Method::POST, "/health/live").await;
    assert_eq!(allow, "GET");
}
