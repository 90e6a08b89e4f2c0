//! The optional internal listener: with `server.internal_bind` the operational routes are
//! served there only, and the public listener answers 404 for them.

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::json;

use crate::setting;

const OPERATIONAL: [&str; 5] = [
    "/health/live",
    "/health/ready",
    "/metrics",
    "/internal/v1/users/00000000-0000-0000-0000-000000000000/secrets/ui.x",
    "/internal/v1/users/00000000-0000-0000-0000-000000000000/integrations/trakt/token",
];

async fn get(address: &str, path: &str, token: Option<&str>) -> reqwest::Response {
    let request = reqwest::Client::new().request(Method::GET, format!("{address}{path}"));
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
    .send()
    .await
    .unwrap()
}

#[tokio::test]
async fn operational_routes_are_not_served_on_the_public_listener() {
    let (app, _internal) = TestApp::spawn_with_internal_listener(|_| {}).await;
    let service = app.token(new_user(), &["service"]);
    for path in OPERATIONAL {
        let response = get(&app.address, path, Some(&service)).await;
        let problem = json_with_status(response, 404).await;
        assert_eq!(problem["code"], "route_not_found", "{path}");
    }
}

#[tokio::test]
async fn operational_routes_are_served_on_the_internal_listener() {
    let (app, internal) = TestApp::spawn_with_internal_listener(|_| {}).await;
    let live = get(&internal, "/health/live", None).await;
    assert_eq!(json_with_status(live, 200).await["status"], "ok");
    let ready = get(&internal, "/health/ready", None).await;
    assert_eq!(json_with_status(ready, 200).await["status"], "ready");
    assert_eq!(get(&internal, "/metrics", None).await.status(), 200);
    // The internal route is reached: the secret is missing, not the route.
    let service = app.token(new_user(), &["service"]);
    let secret = get(&internal, OPERATIONAL[3], Some(&service)).await;
    let problem = json_with_status(secret, 404).await;
    assert_ne!(problem["code"], "route_not_found");
}

#[tokio::test]
async fn the_api_is_served_on_the_public_listener_only() {
    let (app, internal) = TestApp::spawn_with_internal_listener(|_| {}).await;
    let alice = app.token(new_user(), &[]);
    let written = app
        .put(&setting("ui.theme"), &alice, &json!({"value": "dark"}))
        .await;
    json_with_status(written, 201).await;
    let inside = get(&internal, &setting("ui.theme"), Some(&alice)).await;
    let problem = json_with_status(inside, 404).await;
    assert_eq!(problem["code"], "route_not_found");
}
