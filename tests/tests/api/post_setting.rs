//! `POST /api/v1/users/me/settings`: the body names the key; the write is exactly a
//! `PUT .../settings/{key}` (validation, preconditions, quotas, rate limit, answers).

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::{Value, json};

const COLLECTION: &str = "/api/v1/users/me/settings";

async fn post(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    app.request(Method::POST, COLLECTION, Some(token))
        .json(body)
        .send()
        .await
        .unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn posting_a_new_key_creates_it_with_location_and_etag() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let subtitles = json!({"enabled": true, "preferred_language": "en"});

    let created = post(
        &app,
        &token,
        &json!({"key": "playback.subtitles.defaults", "value": subtitles}),
    )
    .await;

    assert_eq!(
        header(&created, "location"),
        "/api/v1/users/me/settings/playback.subtitles.defaults"
    );
    let etag = header(&created, "etag");
    assert!(!etag.is_empty());
    let body = json_with_status(created, 201).await;
    assert_eq!(body["key"], "playback.subtitles.defaults");
    assert_eq!(body["category"], "playback");
    let read = app
        .get(&format!("{COLLECTION}/playback.subtitles.defaults"), &token)
        .await;
    assert_eq!(header(&read, "etag"), etag);
    assert_eq!(json_with_status(read, 200).await["value"], subtitles);
}

#[tokio::test]
async fn posting_an_existing_key_updates_it() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let first = post(
        &app,
        &token,
        &json!({"key": "ui.theme.accent", "value": "red"}),
    )
    .await;
    let first_etag = header(&first, "etag");
    json_with_status(first, 201).await;

    let second = post(
        &app,
        &token,
        &json!({"key": "ui.theme.accent", "value": "blue"}),
    )
    .await;

    assert_ne!(header(&second, "etag"), first_etag);
    assert_eq!(json_with_status(second, 200).await["value"], "blue");
}

#[tokio::test]
async fn posting_honours_if_match_and_if_none_match() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let first = post(
        &app,
        &token,
        &json!({"key": "ui.theme.accent", "value": "red"}),
    )
    .await;
    let stale = header(&first, "etag");
    post(
        &app,
        &token,
        &json!({"key": "ui.theme.accent", "value": "blue"}),
    )
    .await;

    let with_stale_tag = app
        .request(Method::POST, COLLECTION, Some(&token))
        .header("If-Match", stale)
        .json(&json!({"key": "ui.theme.accent", "value": "green"}))
        .send()
        .await
        .unwrap();
    let create_only = app
        .request(Method::POST, COLLECTION, Some(&token))
        .header("If-None-Match", "*")
        .json(&json!({"key": "ui.theme.accent", "value": "green"}))
        .send()
        .await
        .unwrap();

    assert_eq!(with_stale_tag.status(), 412);
    assert_eq!(create_only.status(), 412);
    let read = app
        .get(&format!("{COLLECTION}/ui.theme.accent"), &token)
        .await;
    assert_eq!(json_with_status(read, 200).await["value"], "blue");
}

#[tokio::test]
async fn a_post_is_validated_like_a_put_and_changes_nothing_when_refused() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);

    let bad_key = post(&app, &token, &json!({"key": "Not A Key", "value": 1})).await;
    let no_key = post(&app, &token, &json!({"value": 1})).await;
    let bad_schema = post(
        &app,
        &token,
        &json!({"key": "playback.subtitles.defaults", "value": {"enabled": "yes"}}),
    )
    .await;
    let managed = post(
        &app,
        &token,
        &json!({"key": "scrobbling.trakt.oauth_tokens", "value": {"access_token": "x"}}),
    )
    .await;

    assert_eq!(
        json_with_status(bad_key, 422).await["code"],
        "validation_failed"
    );
    assert_eq!(no_key.status(), 422);
    assert_eq!(bad_schema.status(), 422);
    assert_eq!(
        json_with_status(managed, 409).await["code"],
        "managed_by_integration"
    );
    let listed = app.get(COLLECTION, &token).await;
    assert_eq!(json_with_status(listed, 200).await["settings"], json!([]));
}

#[tokio::test]
async fn a_post_counts_as_a_write() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);

    let created = post(
        &app,
        &token,
        &json!({"key": "ui.theme.accent", "value": "red"}),
    )
    .await;

    assert_eq!(header(&created, "ratelimit-limit"), "100");
    assert_eq!(header(&created, "ratelimit-remaining"), "99");
}

#[tokio::test]
async fn the_post_is_documented() {
    let app = TestApp::spawn().await;
    let document = app
        .request(Method::GET, "/openapi.json", None)
        .send()
        .await
        .unwrap();
    let document = json_with_status(document, 200).await;
    let post = &document["paths"][COLLECTION]["post"];
    assert!(post.is_object(), "no POST {COLLECTION} in the document");
    assert!(post["responses"]["201"].is_object());
}
