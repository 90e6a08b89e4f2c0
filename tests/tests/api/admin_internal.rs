//! Admin (read-only, audited) and internal (plaintext secrets, audited) routes.

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn admin_reads_any_user_and_each_read_is_audited() {
    let app = TestApp::spawn().await;
    let user = new_user();
    let token = app.token(user, &[]);
    json_with_status(
        app.put(
            "/api/v1/users/me/settings/ui.x",
            &token,
            &json!({"value": 7}),
        )
        .await,
        201,
    )
    .await;
    let admin_id = new_user();
    let admin = app.token(admin_id, &["admin"]);

    let settings = app
        .request(
            Method::GET,
            &format!("/api/v1/admin/users/{user}/settings"),
            Some(&admin),
        )
        .header("X-Request-Id", "support-ticket-42")
        .send()
        .await
        .unwrap();
    let server_id = settings.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        settings.headers()["x-client-request-id"],
        "support-ticket-42"
    );
    let settings = json_with_status(settings, 200).await;
    assert_eq!(settings["settings"][0]["value"], 7);
    let prefs = json_with_status(
        app.get(&format!("/api/v1/admin/users/{user}/preferences"), &admin)
            .await,
        200,
    )
    .await;
    assert_eq!(prefs["theme"], "system");

    let audit = app
        .query_json(
            "SELECT json_build_object('actor', actor_id, 'role', actor_role, 'subject', subject_user_id, \
             'action', action, 'request_id', request_id, 'client_request_id', client_request_id) \
             FROM shared.user_settings_audit ORDER BY id",
        )
        .await;
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[0]["actor"], admin_id.to_string());
    assert_eq!(audit[0]["role"], "admin");
    assert_eq!(audit[0]["subject"], user.to_string());
    assert_eq!(audit[0]["action"], "admin_read");
    // The record names the server's id of the request; the client's is kept beside it.
    assert_ne!(server_id, "support-ticket-42");
    assert_eq!(audit[0]["request_id"], server_id);
    assert_eq!(audit[0]["client_request_id"], "support-ticket-42");
}

#[tokio::test]
async fn admin_cannot_modify() {
    let app = TestApp::spawn().await;
    let admin = app.token(new_user(), &["admin"]);
    let path = format!("/api/v1/admin/users/{}/settings", new_user());
    for method in [Method::PUT, Method::DELETE, Method::POST, Method::PATCH] {
        let response = app
            .request(method.clone(), &path, Some(&admin))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method}");
    }
}

#[tokio::test]
async fn service_reads_plaintext_secret_and_the_read_is_audited() {
    let app = TestApp::spawn().await;
    let user = new_user();
    let token = app.token(user, &[]);
    let put = app
        .put(
            "/api/v1/users/me/settings/integrations.plex.token",
            &token,
            &json!({"value": "plex-abc", "data_type": "encrypted"}),
        )
        .await;
    json_with_status(put, 201).await;
    let service = app.token(new_user(), &["service"]);
    let response = app
        .get(
            &format!("/internal/v1/users/{user}/secrets/integrations.plex.token"),
            &service,
        )
        .await;
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = json_with_status(response, 200).await;
    assert_eq!(body["value"], "plex-abc");
    let actions = app
        .query_json("SELECT to_json(action) FROM shared.user_settings_audit")
        .await;
    assert_eq!(actions, vec![json!("secret_read")]);
}

#[tokio::test]
async fn internal_read_of_a_plain_setting_is_refused() {
    let app = TestApp::spawn().await;
    let user = new_user();
    json_with_status(
        app.put(
            "/api/v1/users/me/settings/ui.x",
            &app.token(user, &[]),
            &json!({"value": 1}),
        )
        .await,
        201,
    )
    .await;
    let service = app.token(new_user(), &["service"]);
    let response = app
        .get(&format!("/internal/v1/users/{user}/secrets/ui.x"), &service)
        .await;
    assert_eq!(
        json_with_status(response, 404).await["code"],
        "not_a_secret"
    );
}
