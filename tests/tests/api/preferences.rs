//! The caller's preferences: defaults, full replace, merge patch, conditional requests.

use std::time::{Duration, Instant};

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::json;

const PREFS: &str = "/api/v1/users/me/preferences";

/// The response's `ETag`, as sent.
fn etag(response: &reqwest::Response) -> String {
    response.headers()["etag"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn new_user_reads_the_defaults_at_version_zero() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let response = app.get(PREFS, &token).await;
    assert_eq!(response.headers()["etag"], "\"0\"");
    let body = json_with_status(response, 200).await;
    assert_eq!(body["theme"], "system");
    assert_eq!(body["profile_visibility"], "private");
    assert_eq!(
        body["email_notifications"],
        json!({"enabled": true, "frequency": "instant"})
    );
    assert_eq!(body["display_language"], "en-US");
    assert_eq!(body["version"], 0);
}

#[tokio::test]
async fn put_replaces_and_omitted_fields_take_defaults() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let first = json_with_status(
        app.put(
            PREFS,
            &token,
            &json!({"theme": "dark", "show_spoilers": true}),
        )
        .await,
        200,
    )
    .await;
    let replaced = json_with_status(
        app.put(PREFS, &token, &json!({"theme": "light"})).await,
        200,
    )
    .await;
    assert_eq!(replaced["theme"], "light");
    assert_eq!(replaced["show_spoilers"], false);
    assert!(replaced["version"].as_i64().unwrap() > first["version"].as_i64().unwrap());
}

#[tokio::test]
async fn patch_merges_and_null_resets_to_default() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    json_with_status(
        app.put(PREFS, &token, &json!({"theme": "dark", "show_spoilers": true,
            "email_notifications": {"enabled": true, "frequency": "daily", "types": {"new_episodes": true}}}))
            .await,
        200,
    )
    .await;
    let patched = app
        .request(Method::PATCH, PREFS, Some(&token))
        .header("content-type", "application/merge-patch+json")
        .body(
            json!({"theme": null, "email_notifications": {"types": {"friend_activity": false}}})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let body = json_with_status(patched, 200).await;
    assert_eq!(body["theme"], "system", "null resets to the default");
    assert_eq!(body["show_spoilers"], true, "unnamed fields are kept");
    assert_eq!(body["email_notifications"]["frequency"], "daily");
    assert_eq!(
        body["email_notifications"]["types"],
        json!({"new_episodes": true, "friend_activity": false})
    );
}

#[tokio::test]
async fn invalid_preferences_are_422_and_change_nothing() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let bad = app
        .put(
            PREFS,
            &token,
            &json!({"theme": "blue", "display_language": "en_US", "extra": 1}),
        )
        .await;
    let problem = json_with_status(bad, 422).await;
    assert_eq!(problem["errors"].as_array().unwrap().len(), 3);
    let read = json_with_status(app.get(PREFS, &token).await, 200).await;
    assert_eq!(read["version"], 0);
}

#[tokio::test]
async fn stale_if_match_on_patch_is_412() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let written = app.put(PREFS, &token, &json!({"theme": "dark"})).await;
    let current = etag(&written);
    json_with_status(written, 200).await;
    let stale = app
        .request(Method::PATCH, PREFS, Some(&token))
        .header("If-Match", "\"0\"")
        .json(&json!({"theme": "light"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412);
    let not_modified = app
        .request(Method::GET, PREFS, Some(&token))
        .header("If-None-Match", &current)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), 304);
}

#[tokio::test]
async fn if_match_can_be_required_by_configuration() {
    let app = TestApp::spawn_with(|c| c.server.require_if_match = true).await;
    let token = app.token(new_user(), &[]);
    let missing = app.put(PREFS, &token, &json!({"theme": "dark"})).await;
    assert_eq!(
        json_with_status(missing, 428).await["code"],
        "precondition_required"
    );
    let given = app
        .request(Method::PUT, PREFS, Some(&token))
        .header("If-Match", "\"0\"")
        .json(&json!({"theme": "dark"}))
        .send()
        .await
        .unwrap();
    assert_eq!(given.status(), 200);
}

#[tokio::test]
async fn etags_from_before_the_user_was_deleted_never_match_new_preferences() {
    let app = TestApp::spawn().await;
    app.wait_for_change_feeds(1).await;
    let user = new_user();
    let token = app.token(user, &[]);
    let body = json!({"theme": "dark"});
    let written = app.put(PREFS, &token, &body).await;
    let e1 = etag(&written);
    json_with_status(written, 200).await;

    // The user service deletes the user; the cascade removes the preferences, and the change
    // feed tells the app's cache.
    app.execute(&format!("DELETE FROM shared.users WHERE id = '{user}'"))
        .await;
    let started = Instant::now();
    while etag(&app.get(PREFS, &token).await) != "\"0\"" {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the deleted preferences are still served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The same content again: only the ETag tells the two rows apart.
    let rewritten = app.put(PREFS, &token, &body).await;
    let e2 = etag(&rewritten);
    json_with_status(rewritten, 200).await;
    assert_ne!(e2, e1);

    let stale_write = app
        .request(Method::PATCH, PREFS, Some(&token))
        .header("If-Match", &e1)
        .json(&json!({"theme": "light"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stale_write.status(), 412);
    let stale_cache = app
        .request(Method::GET, PREFS, Some(&token))
        .header("If-None-Match", &e1)
        .send()
        .await
        .unwrap();
    assert_eq!(etag(&stale_cache), e2);
    assert_eq!(json_with_status(stale_cache, 200).await["theme"], "dark");
}
