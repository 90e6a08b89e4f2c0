//! Export and import: the export holds everything the user stored (secrets and tokens by name
//! only) as a download; importing it into a fresh user reproduces the same effective view; a
//! dry run and an invalid document change nothing, the latter listing every problem; a
//! replace removes what the document does not hold; the rate limit counts every changed item.

use std::num::NonZeroU32;

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::{Value, json};

const EXPORT: &str = "/api/v1/users/me/export";
const SETTINGS: &str = "/api/v1/users/me/settings";

fn own(key: &str) -> String {
    format!("{SETTINGS}/{key}")
}

async fn import(app: &TestApp, token: &str, query: &str, document: &Value) -> reqwest::Response {
    app.request(
        Method::POST,
        &format!("/api/v1/users/me/import{query}"),
        Some(token),
    )
    .json(document)
    .send()
    .await
    .unwrap()
}

/// A user with a bit of everything: settings, a secret, preferences, a device's overrides.
async fn seed(app: &TestApp, token: &str) {
    for (key, body) in [
        (
            "ui.layout",
            json!({"value": {"columns": 3}, "category": "ui", "description": "grid"}),
        ),
        ("playback.subtitles.size", json!({"value": 28})),
        (
            "music.apikey",
            json!({"value": "exp0rt-s3cret", "data_type": "encrypted"}),
        ),
    ] {
        json_with_status(app.put(&own(key), token, &body).await, 201).await;
    }
    let preferences = app
        .request(Method::PATCH, "/api/v1/users/me/preferences", Some(token))
        .header("content-type", "application/merge-patch+json")
        .json(&json!({"theme": "dark", "display_language": "de-DE"}))
        .send()
        .await
        .unwrap();
    json_with_status(preferences, 200).await;
    json_with_status(
        app.put(
            "/api/v1/users/me/devices/living-room-tv/settings/playback.volume",
            token,
            &json!({"value": 40}),
        )
        .await,
        201,
    )
    .await;
    let device_preferences = app
        .request(
            Method::PATCH,
            "/api/v1/users/me/devices/living-room-tv/preferences",
            Some(token),
        )
        .header("content-type", "application/merge-patch+json")
        .json(&json!({"auto_play_videos": false}))
        .send()
        .await
        .unwrap();
    json_with_status(device_preferences, 200).await;
}

/// The effective view without what differs between two users holding the same values (row
/// versions) and without secrets (never imported).
async fn comparable_view(app: &TestApp, token: &str, device: Option<&str>) -> Value {
    let path = match device {
        Some(device) => format!("/api/v1/users/me/effective?device={device}"),
        None => "/api/v1/users/me/effective".to_owned(),
    };
    let mut view = json_with_status(app.get(&path, token).await, 200).await;
    let settings = view["settings"].as_object_mut().unwrap();
    settings.retain(|_, entry| entry["redacted"] == false);
    for entry in settings.values_mut() {
        entry.as_object_mut().unwrap().remove("version");
    }
    view
}

async fn export_of(app: &TestApp, token: &str) -> Value {
    json_with_status(app.get(EXPORT, token).await, 200).await
}

#[tokio::test]
async fn an_export_holds_everything_and_never_a_secret_value() {
    let app = TestApp::spawn().await;
    let user = new_user();
    let token = app.token(user, &[]);
    seed(&app, &token).await;

    let response = app.get(EXPORT, &token).await;
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let text = response.text().await.unwrap();
    assert!(!text.contains("exp0rt-s3cret"), "{text}");
    assert!(!text.contains("ciphertext"), "{text}");
    let document: Value = serde_json::from_str(&text).unwrap();

    assert_eq!(document["format"], "user-settings-export");
    assert_eq!(document["format_version"], 1);
    assert_eq!(document["user_id"], user.to_string());
    assert!(document["exported_at"].is_string());
    assert_eq!(
        document["preferences"],
        json!({"theme": "dark", "display_language": "de-DE"})
    );
    let keys: Vec<&str> = document["settings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["playback.subtitles.size", "ui.layout"]);
    let layout = &document["settings"][1];
    assert_eq!(
        (
            &layout["value"],
            &layout["category"],
            &layout["data_type"],
            &layout["description"]
        ),
        (
            &json!({"columns": 3}),
            &json!("ui"),
            &json!("json"),
            &json!("grid")
        )
    );
    assert!(layout["updated_at"].is_string());
    assert_eq!(document["secrets"][0]["key"], "music.apikey");
    assert_eq!(
        document["secrets"][0].as_object().unwrap().len(),
        2,
        "a secret is listed by name and date only"
    );
    let tv = &document["devices"]["living-room-tv"];
    assert_eq!(tv["preferences"], json!({"auto_play_videos": false}));
    assert_eq!(tv["settings"][0]["key"], "playback.volume");
    assert_eq!(tv["settings"][0]["value"], 40);
    assert_eq!(document["integrations"], json!([]));
}

#[tokio::test]
async fn importing_an_export_into_a_fresh_user_reproduces_the_effective_view() {
    let app = TestApp::spawn().await;
    let alice = app.token(new_user(), &[]);
    let bob = app.token(new_user(), &[]);
    seed(&app, &alice).await;
    let document = export_of(&app, &alice).await;

    let plan = json_with_status(import(&app, &bob, "", &document).await, 200).await;
    assert_eq!(
        plan,
        json!({
            "create": [
                "devices/living-room-tv/preferences",
                "devices/living-room-tv/settings/playback.volume",
                "preferences",
                "settings/playback.subtitles.size",
                "settings/ui.layout",
            ],
            "update": [], "delete": [], "unchanged": [],
        })
    );
    assert_eq!(
        comparable_view(&app, &bob, None).await,
        comparable_view(&app, &alice, None).await
    );
    assert_eq!(
        comparable_view(&app, &bob, Some("living-room-tv")).await,
        comparable_view(&app, &alice, Some("living-room-tv")).await
    );
    // The secret was not copied: it is listed, never imported.
    json_with_status(app.get(&own("music.apikey"), &bob).await, 404).await;

    // The history names the import.
    let history = json_with_status(
        app.get(&format!("{}/history", own("ui.layout")), &bob)
            .await,
        200,
    )
    .await;
    assert_eq!(
        (&history[0]["op"], &history[0]["actor"]),
        (&json!("imported"), &json!("import"))
    );

    // The same document again changes nothing.
    let again = json_with_status(import(&app, &bob, "", &document).await, 200).await;
    assert_eq!(again["create"], json!([]));
    assert_eq!(again["update"], json!([]));
    assert_eq!(again["unchanged"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn a_dry_run_answers_the_plan_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let alice = app.token(new_user(), &[]);
    let bob = app.token(new_user(), &[]);
    seed(&app, &alice).await;
    json_with_status(
        app.put(&own("ui.layout"), &bob, &json!({"value": "list"}))
            .await,
        201,
    )
    .await;
    json_with_status(
        app.put(&own("ui.only.bob"), &bob, &json!({"value": true}))
            .await,
        201,
    )
    .await;
    let before = export_of(&app, &bob).await;
    let document = export_of(&app, &alice).await;

    let plan = json_with_status(
        import(&app, &bob, "?mode=replace&dry_run=true", &document).await,
        200,
    )
    .await;
    assert_eq!(plan["update"], json!(["settings/ui.layout"]));
    assert_eq!(plan["delete"], json!(["settings/ui.only.bob"]));
    assert_eq!(plan["create"].as_array().unwrap().len(), 4);

    let mut after = export_of(&app, &bob).await;
    after["exported_at"] = before["exported_at"].clone();
    assert_eq!(after, before);
    let history = json_with_status(
        app.get(&format!("{}/history", own("ui.layout")), &bob)
            .await,
        200,
    )
    .await;
    assert_eq!(history.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_replace_removes_what_the_document_does_not_hold_but_keeps_secrets() {
    let app = TestApp::spawn().await;
    let bob = app.token(new_user(), &[]);
    json_with_status(
        app.put(&own("ui.old"), &bob, &json!({"value": 1})).await,
        201,
    )
    .await;
    json_with_status(
        app.put(
            &own("music.apikey"),
            &bob,
            &json!({"value": "b0b-s3cret", "data_type": "encrypted"}),
        )
        .await,
        201,
    )
    .await;
    let document = json!({
        "format": "user-settings-export", "format_version": 1,
        "settings": [{"key": "ui.new", "value": "yes"}],
    });

    let plan = json_with_status(import(&app, &bob, "?mode=replace", &document).await, 200).await;
    assert_eq!(plan["create"], json!(["settings/ui.new"]));
    assert_eq!(plan["delete"], json!(["settings/ui.old"]));
    json_with_status(app.get(&own("ui.old"), &bob).await, 404).await;
    json_with_status(app.get(&own("ui.new"), &bob).await, 200).await;
    // The secret stays: a document never holds one.
    json_with_status(app.get(&own("music.apikey"), &bob).await, 200).await;
}

#[tokio::test]
async fn an_invalid_document_changes_nothing_and_lists_every_problem() {
    let app = TestApp::spawn().await;
    let bob = app.token(new_user(), &[]);
    json_with_status(
        app.put(&own("ui.kept"), &bob, &json!({"value": 1})).await,
        201,
    )
    .await;
    let document = json!({
        "format": "user-settings-export", "format_version": 1,
        "preferences": {"theme": "neon"},
        "settings": [
            {"key": "ui.fine", "value": 1},
            {"key": "Bad Key", "value": 1},
            {"key": "ui.secret", "value": "x", "data_type": "encrypted"},
            {"key": "ui.nothing"},
            {"key": "ui.fine", "value": 2},
        ],
        "secrets": [{"key": "music.apikey", "value": "plain-s3cret"}],
        "devices": {"bad device!": {"settings": []},
                    "tv": {"preferences": {"theme": "neon"},
                           "settings": [{"key": "ui.x", "value": 1, "data_type": "boolean"}]}},
    });

    let response = import(&app, &bob, "?mode=replace", &document).await;
    let text = response.text().await.unwrap();
    assert!(!text.contains("plain-s3cret"), "{text}");
    let problem: Value = serde_json::from_str(&text).unwrap();
    let mut fields: Vec<(String, String)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    fields.sort();
    let fields: Vec<String> = fields
        .into_iter()
        .map(|(f, c)| format!("{f}:{c}"))
        .collect();
    assert!(
        fields.contains(&"preferences.theme:invalid_value".to_owned())
            || fields.iter().any(|f| f.starts_with("preferences.theme:")),
        "{fields:?}"
    );
    for expected in [
        "settings[1].key:",
        "settings[2].value:secret_not_importable",
        "settings[3].value:",
        "settings[4].key:duplicate_key",
        "secrets[0].value:secret_not_importable",
        "devices[bad device!]:",
        "devices[tv][0].",
        "devices[tv].preferences.theme:",
    ] {
        assert!(
            fields.iter().any(|f| f.starts_with(expected)),
            "{expected} missing from {fields:?}"
        );
    }
    // Nothing was written, nothing removed.
    json_with_status(app.get(&own("ui.fine"), &bob).await, 404).await;
    json_with_status(app.get(&own("ui.kept"), &bob).await, 200).await;

    let wrong_format = import(
        &app,
        &bob,
        "",
        &json!({"format": "other", "format_version": 9}),
    )
    .await;
    let problem = json_with_status(wrong_format, 422).await;
    let codes: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["invalid_format", "unsupported_version"]);
}

#[tokio::test]
async fn an_import_counts_one_write_per_changed_item_and_is_refused_whole() {
    let app = TestApp::spawn_with(|config| {
        config.rate_limiting.writes_per_hour = NonZeroU32::new(5).unwrap();
    })
    .await;
    let bob = app.token(new_user(), &[]);
    let settings: Vec<Value> = (0..8)
        .map(|n| json!({"key": format!("ui.item{n}"), "value": n}))
        .collect();
    let document =
        json!({"format": "user-settings-export", "format_version": 1, "settings": settings});

    // The plan alone is free of the items' cost.
    json_with_status(import(&app, &bob, "?dry_run=true", &document).await, 200).await;
    let refused = import(&app, &bob, "", &document).await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let listing = json_with_status(app.get(SETTINGS, &bob).await, 200).await;
    assert_eq!(listing["settings"], json!([]));

    // Three items fit in what is left.
    let small = json!({"format": "user-settings-export", "format_version": 1,
                       "settings": [{"key": "ui.a", "value": 1}, {"key": "ui.b", "value": 2}]});
    json_with_status(import(&app, &bob, "", &small).await, 200).await;
}

#[tokio::test]
async fn support_exports_a_user_for_an_access_request_audited() {
    let app = TestApp::spawn().await;
    let user = new_user();
    let token = app.token(user, &[]);
    let support = app.token(new_user(), &["admin"]);
    seed(&app, &token).await;
    let path = format!("/api/v1/admin/users/{user}/export");

    json_with_status(app.get(&path, &token).await, 403).await;
    let document = json_with_status(app.get(&path, &support).await, 200).await;
    assert_eq!(document["user_id"], user.to_string());
    assert_eq!(document["settings"].as_array().unwrap().len(), 2);
    let audited = app
        .query_json(&format!(
            "SELECT to_jsonb(count(*)) FROM shared.user_settings_audit \
             WHERE subject_user_id = '{user}' AND action = 'admin_read'"
        ))
        .await;
    assert_eq!(audited, [json!(1)]);
}
