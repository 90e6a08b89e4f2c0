//! History and restore: every change is kept (the user's settings, a device's overrides, the
//! preferences) with its version, operation and actor; an overwrite is undone and a deleted
//! key brought back by a restore; a secret's history holds no value and cannot be restored;
//! support reads a history audited; retention prunes by versions and by age.

use std::time::Duration;

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::{Value, json};

fn own(key: &str) -> String {
    format!("/api/v1/users/me/settings/{key}")
}

fn history_of(key: &str) -> String {
    format!("/api/v1/users/me/settings/{key}/history")
}

fn restore_of(key: &str) -> String {
    format!("/api/v1/users/me/settings/{key}/restore")
}

async fn history(app: &TestApp, path: &str, token: &str) -> Vec<Value> {
    let body = json_with_status(app.get(path, token).await, 200).await;
    body.as_array().expect("a history is an array").clone()
}

async fn restore(app: &TestApp, path: &str, token: &str, version: &Value) -> reqwest::Response {
    app.request(Method::POST, path, Some(token))
        .json(&json!({ "version": version }))
        .send()
        .await
        .unwrap()
}

/// `(op, value, actor)` of every entry, newest first.
fn summary(entries: &[Value]) -> Vec<(String, Value, String)> {
    entries
        .iter()
        .map(|e| {
            (
                e["op"].as_str().unwrap().to_owned(),
                e["value"].clone(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn entry(op: &str, value: Value, actor: &str) -> (String, Value, String) {
    (op.to_owned(), value, actor.to_owned())
}

#[tokio::test]
async fn an_accidental_overwrite_is_undone_from_the_history() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let key = "playback.subtitles.size";
    json_with_status(app.put(&own(key), &token, &json!({"value": 28})).await, 201).await;
    // Another device overwrites it by mistake.
    json_with_status(app.put(&own(key), &token, &json!({"value": 12})).await, 200).await;

    let entries = history(&app, &history_of(key), &token).await;
    assert_eq!(
        summary(&entries),
        [
            entry("updated", json!(12), "user"),
            entry("created", json!(28), "user")
        ]
    );
    assert!(entries[0]["version"].as_i64() > entries[1]["version"].as_i64());
    assert!(entries[0]["changed_at"].is_string());

    let restored = restore(&app, &restore_of(key), &token, &entries[1]["version"]).await;
    let body = json_with_status(restored, 200).await;
    assert_eq!(body["value"], 28);
    let read = json_with_status(app.get(&own(key), &token).await, 200).await;
    assert_eq!(read["value"], 28);
    assert_eq!(read["version"], body["version"]);

    let entries = history(&app, &history_of(key), &token).await;
    assert_eq!(entries[0]["op"], "restored");
    assert_eq!(entries[0]["value"], 28);
    assert_eq!(entries[0]["version"], body["version"]);
    assert_eq!(entries.len(), 3);
}

#[tokio::test]
async fn a_deleted_key_is_created_again_by_a_restore() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let key = "ui.layout";
    let body = json!({"value": {"columns": 3}, "category": "ui", "description": "grid"});
    json_with_status(app.put(&own(key), &token, &body).await, 201).await;
    json_with_status(app.delete(&own(key), &token).await, 204).await;

    let entries = history(&app, &history_of(key), &token).await;
    assert_eq!(
        summary(&entries),
        [
            entry("deleted", Value::Null, "user"),
            entry("created", json!({"columns": 3}), "user")
        ]
    );
    // A deletion holds no value to restore.
    let refused = restore(&app, &restore_of(key), &token, &entries[0]["version"]).await;
    let problem = json_with_status(refused, 422).await;
    assert_eq!(problem["code"], "version_is_a_deletion");
    // A version never kept.
    let unknown = restore(&app, &restore_of(key), &token, &json!(1)).await;
    assert_eq!(
        json_with_status(unknown, 404).await["code"],
        "version_not_found"
    );

    let restored = restore(&app, &restore_of(key), &token, &entries[1]["version"]).await;
    assert_eq!(restored.headers()["location"], own(key).as_str());
    let body = json_with_status(restored, 201).await;
    assert_eq!(
        (&body["value"], &body["category"], &body["description"]),
        (&json!({"columns": 3}), &json!("ui"), &json!("grid"))
    );
}

#[tokio::test]
async fn a_restore_honours_if_match() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let key = "ui.theme.mode";
    let first = app.put(&own(key), &token, &json!({"value": "dark"})).await;
    let first_tag = first.headers()["etag"].to_str().unwrap().to_owned();
    json_with_status(first, 201).await;
    json_with_status(
        app.put(&own(key), &token, &json!({"value": "light"})).await,
        200,
    )
    .await;
    let entries = history(&app, &history_of(key), &token).await;

    let stale = app
        .request(Method::POST, &restore_of(key), Some(&token))
        .header("if-match", first_tag)
        .json(&json!({"version": entries[1]["version"]}))
        .send()
        .await
        .unwrap();
    json_with_status(stale, 412).await;
    let read = json_with_status(app.get(&own(key), &token).await, 200).await;
    assert_eq!(read["value"], "light");
}

#[tokio::test]
async fn a_secrets_history_keeps_no_value_and_cannot_be_restored() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let key = "music.apikey";
    for secret in ["first-s3cret-value", "second-s3cret-value"] {
        let body = json!({"value": secret, "data_type": "encrypted"});
        let response = app.put(&own(key), &token, &body).await;
        assert!(response.status().is_success());
    }

    let response = app.get(&history_of(key), &token).await;
    let text = response.text().await.unwrap();
    assert!(!text.contains("s3cret"), "{text}");
    assert!(!text.contains("ciphertext"), "{text}");
    let entries: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(
        summary(&entries),
        [
            entry("updated", Value::Null, "user"),
            entry("created", Value::Null, "user")
        ]
    );
    // Not in the database either.
    let kept = app
        .query_json(
            "SELECT to_jsonb(count(*)) FROM shared.user_settings_history \
             WHERE key = 'music.apikey' AND value IS NOT NULL",
        )
        .await;
    assert_eq!(kept, [json!(0)]);

    let refused = restore(&app, &restore_of(key), &token, &entries[1]["version"]).await;
    assert_eq!(
        json_with_status(refused, 422).await["code"],
        "secret_not_restorable"
    );
}

#[tokio::test]
async fn a_history_is_read_a_page_at_a_time() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let key = "ui.counter";
    for n in 0..5 {
        app.put(&own(key), &token, &json!({"value": n})).await;
    }
    let first = app
        .get(&format!("{}?limit=2", history_of(key)), &token)
        .await;
    let next = first.headers()["link"].to_str().unwrap().to_owned();
    let page: Vec<Value> = json_with_status(first, 200)
        .await
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        page.iter().map(|e| e["value"].clone()).collect::<Vec<_>>(),
        [json!(4), json!(3)]
    );
    let url = next
        .strip_prefix('<')
        .and_then(|l| l.split_once(">; rel=\"next\""))
        .unwrap()
        .0;
    let mut values = Vec::new();
    let mut url = Some(url.to_owned());
    while let Some(path) = url {
        let response = app.get(&path, &token).await;
        url = response.headers().get("link").map(|l| {
            let l = l.to_str().unwrap();
            l[1..l.find('>').unwrap()].to_owned()
        });
        for e in json_with_status(response, 200).await.as_array().unwrap() {
            values.push(e["value"].clone());
        }
    }
    assert_eq!(values, [json!(2), json!(1), json!(0)]);

    let bad = app
        .get(&format!("{}?cursor=abc", history_of(key)), &token)
        .await;
    json_with_status(bad, 400).await;
    let negative = app
        .get(&format!("{}?cursor=-3", history_of(key)), &token)
        .await;
    json_with_status(negative, 422).await;
}

#[tokio::test]
async fn preferences_are_restored_from_their_history() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let path = "/api/v1/users/me/preferences";
    let patch = |body: Value| {
        app.request(Method::PATCH, path, Some(&token))
            .header("content-type", "application/merge-patch+json")
            .json(&body)
            .send()
    };
    json_with_status(patch(json!({"theme": "dark"})).await.unwrap(), 200).await;
    json_with_status(
        patch(json!({"theme": null, "display_language": "fr-FR"}))
            .await
            .unwrap(),
        200,
    )
    .await;

    let entries = history(&app, "/api/v1/users/me/preferences/history", &token).await;
    assert_eq!(entries[0]["value"], json!({"display_language": "fr-FR"}));
    let dark = entries
        .iter()
        .find(|e| e["value"] == json!({"theme": "dark"}))
        .expect("the version that set the theme");

    let restored = restore(
        &app,
        "/api/v1/users/me/preferences/restore",
        &token,
        &dark["version"],
    )
    .await;
    let body = json_with_status(restored, 200).await;
    assert_eq!(body["theme"], "dark");
    assert_eq!(body["sources"]["theme"], "user");
    // Every field the kept version did not set inherits again.
    assert_eq!(body["display_language"], "en-US");
    assert_eq!(body["sources"]["display_language"], "builtin");
    let entries = history(&app, "/api/v1/users/me/preferences/history", &token).await;
    assert_eq!(entries[0]["op"], "restored");
}

#[tokio::test]
async fn a_devices_override_has_its_own_history() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let on_tv = "/api/v1/users/me/devices/living-room-tv/settings/playback.volume";
    json_with_status(app.put(on_tv, &token, &json!({"value": 30})).await, 201).await;
    json_with_status(app.put(on_tv, &token, &json!({"value": 90})).await, 200).await;
    // The user's own key has no history: the device's is apart.
    assert!(
        history(&app, &history_of("playback.volume"), &token)
            .await
            .is_empty()
    );

    let entries = history(&app, &format!("{on_tv}/history"), &token).await;
    assert_eq!(
        summary(&entries),
        [
            entry("updated", json!(90), "user"),
            entry("created", json!(30), "user")
        ]
    );
    let restored = restore(
        &app,
        &format!("{on_tv}/restore"),
        &token,
        &entries[1]["version"],
    )
    .await;
    assert_eq!(json_with_status(restored, 200).await["value"], 30);
}

#[tokio::test]
async fn support_reads_a_history_and_the_read_is_audited() {
    let app = TestApp::spawn().await;
    let user = new_user();
    let token = app.token(user, &[]);
    let support = app.token(new_user(), &["admin"]);
    app.put(&own("ui.theme.mode"), &token, &json!({"value": "dark"}))
        .await;
    let path = format!("/api/v1/admin/users/{user}/settings/ui.theme.mode/history");

    // A user's token cannot read it.
    json_with_status(app.get(&path, &token).await, 403).await;
    let entries = json_with_status(app.get(&path, &support).await, 200).await;
    assert_eq!(entries[0]["value"], "dark");
    let audited = app
        .query_json(&format!(
            "SELECT to_jsonb(key) FROM shared.user_settings_audit \
             WHERE subject_user_id = '{user}' AND action = 'admin_read'"
        ))
        .await;
    assert_eq!(audited, [json!("ui.theme.mode")]);
}

#[tokio::test]
async fn retention_keeps_the_last_versions_and_drops_what_is_too_old() {
    let app = TestApp::spawn_with(|config| {
        config.history.keep_versions = std::num::NonZeroU32::new(3).unwrap();
        config.history.prune_interval = Duration::from_millis(100).try_into().unwrap();
    })
    .await;
    let token = app.token(new_user(), &[]);
    for n in 0..6 {
        app.put(&own("ui.counter"), &token, &json!({"value": n}))
            .await;
    }
    app.put(&own("ui.old"), &token, &json!({"value": "then"}))
        .await;
    app.execute(
        "UPDATE shared.user_settings_history SET changed_at = now() - interval '91 days' \
         WHERE key = 'ui.old'",
    )
    .await;

    let mut kept = Vec::new();
    for _ in 0..100 {
        kept = history(&app, &history_of("ui.counter"), &token).await;
        let old = history(&app, &history_of("ui.old"), &token).await;
        if kept.len() == 3 && old.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let values: Vec<Value> = kept.iter().map(|e| e["value"].clone()).collect();
    assert_eq!(values, [json!(5), json!(4), json!(3)]);
    assert!(
        history(&app, &history_of("ui.old"), &token)
            .await
            .is_empty()
    );
    // The setting itself is untouched: only its history is pruned.
    let old = json_with_status(app.get(&own("ui.old"), &token).await, 200).await;
    assert_eq!(old["value"], "then");
}
