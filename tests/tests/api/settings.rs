//! The caller's settings: CRUD, conditional requests, limits, validation, secrets, bulk,
//! and isolation between users.

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::{Value, json};

fn path(key: &str) -> String {
    format!("/api/v1/users/me/settings/{key}")
}

/// The response's `ETag`, as sent.
fn etag(response: &reqwest::Response) -> String {
    response.headers()["etag"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn put_creates_then_updates_and_get_reads_back() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let created = app
        .put(
            &path("ui.dashboard.widgets"),
            &token,
            &json!({"value": [{"type": "trending", "position": 0}]}),
        )
        .await;
    assert_eq!(
        created.headers()["location"],
        "/api/v1/users/me/settings/ui.dashboard.widgets"
    );
    let created_etag = etag(&created);
    let body = json_with_status(created, 201).await;
    assert_eq!(body["data_type"], "json");
    assert_eq!(body["category"], "ui");
    let created_version = body["version"].as_i64().unwrap();
    assert_eq!(created_etag, format!("\"{created_version}\""));

    let updated = app
        .put(&path("ui.dashboard.widgets"), &token, &json!({"value": []}))
        .await;
    let updated_etag = etag(&updated);
    let updated_version = json_with_status(updated, 200).await["version"]
        .as_i64()
        .unwrap();
    assert!(updated_version > created_version);
    assert_eq!(updated_etag, format!("\"{updated_version}\""));

    let read = json_with_status(app.get(&path("ui.dashboard.widgets"), &token).await, 200).await;
    assert_eq!(read["value"], json!([]));
    assert_eq!(read["redacted"], false);
}

#[tokio::test]
async fn list_filters_by_category_in_key_order() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    for (key, category) in [("b.x", "ui"), ("a.x", "ui"), ("c.x", "sync")] {
        let r = app
            .put(
                &path(key),
                &token,
                &json!({"value": 1, "category": category}),
            )
            .await;
        json_with_status(r, 201).await;
    }
    let all = json_with_status(app.get("/api/v1/users/me/settings", &token).await, 200).await;
    let keys: Vec<&str> = all["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["a.x", "b.x", "c.x"]);
    let ui = json_with_status(
        app.get("/api/v1/users/me/settings?category=ui", &token)
            .await,
        200,
    )
    .await;
    assert_eq!(ui["settings"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn delete_removes_and_then_404s() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    json_with_status(
        app.put(&path("ui.x"), &token, &json!({"value": true}))
            .await,
        201,
    )
    .await;
    let deleted = app
        .request(Method::DELETE, &path("ui.x"), Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let again = app
        .request(Method::DELETE, &path("ui.x"), Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_with_status(again, 404).await["code"],
        "setting_not_found"
    );
    assert_eq!(
        json_with_status(app.get(&path("ui.x"), &token).await, 404).await["code"],
        "setting_not_found"
    );
}

#[tokio::test]
async fn if_none_match_gives_304_and_stale_if_match_gives_412() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let created = app.put(&path("ui.x"), &token, &json!({"value": 1})).await;
    let first = etag(&created);
    json_with_status(created, 201).await;

    let cached = app
        .request(Method::GET, &path("ui.x"), Some(&token))
        .header("If-None-Match", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), 304);

    let stale = app
        .request(Method::PUT, &path("ui.x"), Some(&token))
        .header("If-Match", "\"0\"")
        .json(&json!({"value": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_with_status(stale, 412).await["code"],
        "precondition_failed"
    );

    let fresh = app
        .request(Method::PUT, &path("ui.x"), Some(&token))
        .header("If-Match", &first)
        .json(&json!({"value": 2}))
        .send()
        .await
        .unwrap();
    let second = etag(&fresh);
    assert_ne!(second, first);
    assert_eq!(json_with_status(fresh, 200).await["value"], 2);

    let stale_delete = app
        .request(Method::DELETE, &path("ui.x"), Some(&token))
        .header("If-Match", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(stale_delete.status(), 412);
    assert_eq!(
        json_with_status(app.get(&path("ui.x"), &token).await, 200).await["value"],
        2
    );
}

#[tokio::test]
async fn etags_from_before_a_delete_never_match_the_recreated_setting() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    // The same body both times: only the ETag tells the two settings apart.
    let body = json!({"value": "dark"});
    let created = app.put(&path("ui.theme"), &token, &body).await;
    let e1 = etag(&created);
    json_with_status(created, 201).await;
    json_with_status(app.delete(&path("ui.theme"), &token).await, 204).await;

    let recreated = app.put(&path("ui.theme"), &token, &body).await;
    let e2 = etag(&recreated);
    json_with_status(recreated, 201).await;
    assert_ne!(e2, e1);

    let stale_write = app
        .request(Method::PUT, &path("ui.theme"), Some(&token))
        .header("If-Match", &e1)
        .json(&json!({"value": "light"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_with_status(stale_write, 412).await["code"],
        "precondition_failed"
    );
    let stale_cache = app
        .request(Method::GET, &path("ui.theme"), Some(&token))
        .header("If-None-Match", &e1)
        .send()
        .await
        .unwrap();
    assert_eq!(etag(&stale_cache), e2);
    assert_eq!(json_with_status(stale_cache, 200).await["value"], "dark");
    let stale_delete = app
        .request(Method::DELETE, &path("ui.theme"), Some(&token))
        .header("If-Match", &e1)
        .send()
        .await
        .unwrap();
    assert_eq!(stale_delete.status(), 412);

    let current = app
        .request(Method::GET, &path("ui.theme"), Some(&token))
        .header("If-None-Match", &e2)
        .send()
        .await
        .unwrap();
    assert_eq!(current.status(), 304);
}

#[tokio::test]
async fn if_none_match_star_only_creates() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let create = |v: i32| {
        app.request(Method::PUT, &path("ui.once"), Some(&token))
            .header("If-None-Match", "*")
            .json(&json!({"value": v}))
            .send()
    };
    assert_eq!(create(1).await.unwrap().status(), 201);
    assert_eq!(create(2).await.unwrap().status(), 412);
}

#[tokio::test]
async fn value_over_100_kib_is_413_and_not_stored() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let big = "x".repeat(101 * 1024);
    let response = app
        .put(&path("ui.big"), &token, &json!({"value": big}))
        .await;
    assert_eq!(
        json_with_status(response, 413).await["code"],
        "payload_too_large"
    );
    assert_eq!(app.get(&path("ui.big"), &token).await.status(), 404);
}

#[tokio::test]
async fn non_json_body_is_415_and_malformed_json_is_400() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let text = app
        .request(Method::PUT, &path("ui.x"), Some(&token))
        .header("content-type", "text/plain")
        .body("value=1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_with_status(text, 415).await["code"],
        "unsupported_media_type"
    );
    let broken = app
        .request(Method::PUT, &path("ui.x"), Some(&token))
        .header("content-type", "application/json")
        .body("{\"value\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_with_status(broken, 400).await["code"],
        "malformed_request"
    );
}

async fn validation_errors(
    app: &TestApp,
    token: &str,
    key: &str,
    body: Value,
) -> Vec<(String, String)> {
    let response = app.put(&path(key), token, &body).await;
    let problem = json_with_status(response, 422).await;
    problem["errors"]
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
async fn each_validation_rule_answers_422_with_its_field() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let deep = (0..40).fold(json!(1), |v, _| json!([v]));
    let cases = [
        ("UI.Bad", json!({"value": 1}), ("key", "invalid_characters")),
        ("ui..x", json!({"value": 1}), ("key", "empty_segment")),
        (
            "ui.x",
            json!({"value": 1, "category": "games"}),
            ("category", "unknown_category"),
        ),
        (
            "ui.x",
            json!({"value": 1, "data_type": "text"}),
            ("data_type", "unknown_data_type"),
        ),
        (
            "ui.x",
            json!({"value": "1", "data_type": "number"}),
            ("value", "type_mismatch"),
        ),
        ("ui.x", json!({"value": null}), ("value", "required")),
        ("ui.x", json!({"value": deep}), ("value", "too_deep")),
        (
            "ui.x",
            json!({"value": 1, "description": "d".repeat(1025)}),
            ("description", "too_long"),
        ),
        (
            "playback.audio.defaults",
            json!({"value": {"volume": 101}}),
            ("value.volume", "schema_violation"),
        ),
        (
            "playback.audio.defaults",
            json!({"value": {}, "data_type": "string"}),
            ("data_type", "data_type_mismatch"),
        ),
    ];
    for (key, body, (field, code)) in cases {
        let errors = validation_errors(&app, &token, key, body.clone()).await;
        assert!(
            errors.contains(&(field.to_owned(), code.to_owned())),
            "{key} {body}: expected {field}/{code} in {errors:?}"
        );
    }
    let listed = json_with_status(app.get("/api/v1/users/me/settings", &token).await, 200).await;
    assert_eq!(listed["settings"], json!([]), "nothing was stored");
}

#[tokio::test]
async fn unknown_body_field_is_rejected() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let response = app
        .put(&path("ui.x"), &token, &json!({"value": 1, "colour": "red"}))
        .await;
    assert_eq!(
        json_with_status(response, 422).await["errors"][0]["code"],
        "invalid_shape"
    );
}

#[tokio::test]
async fn secrets_are_redacted_everywhere_and_stored_as_envelopes() {
    let app = TestApp::spawn().await;
    let user = new_user();
    let token = app.token(user, &[]);
    // A sensitive known key that no integration manages.
    let secret = json!({"access_token": "tok-PLAINTEXT", "refresh_token": "ref-PLAINTEXT"});
    let put = app
        .put(
            &path("sync.plex.oauth_tokens"),
            &token,
            &json!({"value": secret}),
        )
        .await;
    let put_body = put.text().await.unwrap();
    let one = app
        .get(&path("sync.plex.oauth_tokens"), &token)
        .await
        .text()
        .await
        .unwrap();
    let list = app
        .get("/api/v1/users/me/settings", &token)
        .await
        .text()
        .await
        .unwrap();
    let admin = app.token(new_user(), &["admin"]);
    let admin_list = app
        .get(&format!("/api/v1/admin/users/{user}/settings"), &admin)
        .await
        .text()
        .await
        .unwrap();
    for body in [&put_body, &one, &list, &admin_list] {
        assert!(!body.contains("PLAINTEXT"), "{body}");
        assert!(body.contains("\"redacted\":true"), "{body}");
    }
    let stored = app
        .query_json("SELECT value FROM shared.user_settings")
        .await;
    assert_eq!(stored.len(), 1);
    let envelope = &stored[0];
    assert_eq!(envelope["v"], 1);
    assert_eq!(envelope["alg"], "A256GCM-HKDF-SHA256");
    assert_eq!(envelope["kid"], "e2e1");
    assert!(!envelope.to_string().contains("PLAINTEXT"));
}

#[tokio::test]
async fn bulk_writes_all_or_nothing() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let bad = json!({"settings": [
        {"key": "ui.a", "value": 1},
        {"key": "ui..b", "value": 2},
        {"key": "ui.c", "value": null}
    ]});
    let problem = json_with_status(
        app.put("/api/v1/users/me/settings", &token, &bad).await,
        422,
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["settings[1].key", "settings[2].value"]);
    let listed = json_with_status(app.get("/api/v1/users/me/settings", &token).await, 200).await;
    assert_eq!(listed["settings"], json!([]));

    let good = json!({"settings": [{"key": "ui.a", "value": 1}, {"key": "ui.b", "value": "two"}]});
    let written = json_with_status(
        app.put("/api/v1/users/me/settings", &token, &good).await,
        200,
    )
    .await;
    assert_eq!(written["settings"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn users_cannot_reach_each_others_settings() {
    let app = TestApp::spawn().await;
    let alice = app.token(new_user(), &[]);
    let bob = app.token(new_user(), &[]);
    json_with_status(
        app.put(&path("ui.private"), &alice, &json!({"value": "alice's"}))
            .await,
        201,
    )
    .await;

    assert_eq!(app.get(&path("ui.private"), &bob).await.status(), 404);
    let bobs = json_with_status(app.get("/api/v1/users/me/settings", &bob).await, 200).await;
    assert_eq!(bobs["settings"], json!([]));
    let delete = app
        .request(Method::DELETE, &path("ui.private"), Some(&bob))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status(), 404);
    json_with_status(
        app.put(&path("ui.private"), &bob, &json!({"value": "bob's"}))
            .await,
        201,
    )
    .await;

    let alices = json_with_status(app.get(&path("ui.private"), &alice).await, 200).await;
    assert_eq!(alices["value"], "alice's");
}

#[tokio::test]
async fn every_response_carries_a_server_request_id_and_echoes_the_clients_apart() {
    let app = TestApp::spawn().await;
    let echoed = app
        .request(Method::GET, "/health/live", None)
        .header("X-Request-Id", "abc-123")
        .send()
        .await
        .unwrap();
    let id = echoed.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "the server's own UUID, not the client's id");
    assert_eq!(echoed.headers()["x-client-request-id"], "abc-123");
    let generated = app
        .request(Method::GET, "/api/v1/users/me/settings", None)
        .header("X-Request-Id", "bad id!")
        .send()
        .await
        .unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36);
    assert!(
        !generated.headers().contains_key("x-client-request-id"),
        "a malformed client id is not echoed"
    );
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problem_json() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let missing = app.get("/api/v1/nope", &token).await;
    assert_eq!(
        json_with_status(missing, 404).await["code"],
        "route_not_found"
    );
    let post = app
        .request(Method::POST, &path("ui.x"), Some(&token))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_with_status(post, 405).await["code"],
        "method_not_allowed"
    );
}
