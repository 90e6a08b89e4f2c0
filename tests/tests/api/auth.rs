//! Authentication and authorization: 401 for bad tokens, 403 for missing roles.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use e2e::{JWT_SECRET, TestApp, json_with_status, new_user};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::json;

const ME: &str = "/api/v1/users/me/settings";

async fn status_with_token(
    app: &TestApp,
    token: Option<&str>,
) -> (u16, Option<String>, serde_json::Value) {
    let response = app.request(Method::GET, ME, token).send().await.unwrap();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    (status, challenge, response.json().await.unwrap())
}

#[tokio::test]
async fn missing_token_is_401_with_challenge() {
    let app = TestApp::spawn().await;
    let (status, challenge, body) = status_with_token(&app, None).await;
    assert_eq!(status, 401);
    assert_eq!(challenge.unwrap(), r#"Bearer realm="user-settings""#);
    assert_eq!(body["code"], "unauthorized");
}

#[tokio::test]
async fn expired_token_is_401() {
    let app = TestApp::spawn().await;
    let claims = json!({"sub": new_user().to_string(), "exp": 1_000_000_000u64});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let (status, challenge, _) = status_with_token(&app, Some(&token)).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("expired"));
}

#[tokio::test]
async fn wrongly_signed_token_is_401() {
    let app = TestApp::spawn().await;
    let token = adapter_http::auth::mint_hs256(
        &SecretString::from("another-secret"),
        new_user(),
        &[],
        3600,
        None,
        None,
    )
    .unwrap();
    let (status, challenge, _) = status_with_token(&app, Some(&token)).await;
    assert_eq!(status, 401);
    assert!(challenge.unwrap().contains("invalid_token"));
}

#[tokio::test]
async fn unsigned_alg_none_token_is_401() {
    let app = TestApp::spawn().await;
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(
        json!({"sub": new_user().to_string(), "exp": 4_000_000_000u64, "roles": ["admin"]})
            .to_string(),
    );
    let token = format!("{header}.{payload}.");
    let (status, _, _) = status_with_token(&app, Some(&token)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn token_whose_subject_is_not_a_uuid_is_401() {
    let app = TestApp::spawn().await;
    let claims = json!({"sub": "alice", "exp": 4_000_000_000u64});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let (status, _, _) = status_with_token(&app, Some(&token)).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn non_admin_on_admin_route_is_403() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &["service"]);
    let path = format!("/api/v1/admin/users/{}/settings", new_user());
    let body = json_with_status(app.get(&path, &token).await, 403).await;
    assert_eq!(body["code"], "forbidden");
}

#[tokio::test]
async fn non_service_on_internal_route_is_403() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &["admin"]);
    let path = format!("/internal/v1/users/{}/secrets/a.b", new_user());
    json_with_status(app.get(&path, &token).await, 403).await;
}
