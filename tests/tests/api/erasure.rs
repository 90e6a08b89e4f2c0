//! Erasure: deleting a user's row in `shared.users` (what the platform's user service does)
//! removes everything of theirs: settings, secrets, preferences, devices' overrides, history
//! and pending OAuth authorizations. Only the audit trail of who read their data stays, by
//! design: it records support's reads, holds no value, and must outlive the user.

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn deleting_the_users_row_leaves_nothing_of_theirs_in_any_table() {
    let app = TestApp::spawn().await;
    let user = new_user();
    let token = app.token(user, &[]);
    let other = app.token(new_user(), &[]);
    let support = app.token(new_user(), &["admin"]);
    for (key, body) in [
        ("ui.layout", json!({"value": "grid"})),
        ("ui.layout", json!({"value": "list"})),
        (
            "music.apikey",
            json!({"value": "erase-s3cret", "data_type": "encrypted"}),
        ),
    ] {
        assert!(
            app.put(&format!("/api/v1/users/me/settings/{key}"), &token, &body)
                .await
                .status()
                .is_success()
        );
    }
    app.put(
        "/api/v1/users/me/settings/ui.layout",
        &other,
        &json!({"value": "theirs"}),
    )
    .await;
    let patch = app
        .request(Method::PATCH, "/api/v1/users/me/preferences", Some(&token))
        .header("content-type", "application/merge-patch+json")
        .json(&json!({"theme": "dark"}))
        .send()
        .await
        .unwrap();
    json_with_status(patch, 200).await;
    json_with_status(
        app.put(
            "/api/v1/users/me/devices/phone/settings/ui.layout",
            &token,
            &json!({"value": "compact"}),
        )
        .await,
        201,
    )
    .await;
    let device_patch = app
        .request(
            Method::PATCH,
            "/api/v1/users/me/devices/phone/preferences",
            Some(&token),
        )
        .header("content-type", "application/merge-patch+json")
        .json(&json!({"show_spoilers": true}))
        .send()
        .await
        .unwrap();
    json_with_status(device_patch, 200).await;
    json_with_status(
        app.get(&format!("/api/v1/admin/users/{user}/settings"), &support)
            .await,
        200,
    )
    .await;
    // A pending authorization, as `GET /integrations/{provider}/authorize` stores it.
    app.execute(&format!(
        "INSERT INTO shared.user_settings_oauth_states (state, user_id, provider, redirect_uri, expires_at) \
         VALUES ('pending-state-0123456789', '{user}', 'trakt', 'https://app.example/cb', now() + interval '5 minutes')"
    ))
    .await;
    assert!(
        rows_of(&app, user)
            .await
            .iter()
            .filter(|(_, n)| *n > 0)
            .count()
            >= 6
    );

    app.execute(&format!("DELETE FROM shared.users WHERE id = '{user}'"))
        .await;

    let left: Vec<(String, i64)> = rows_of(&app, user)
        .await
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(
        left,
        [("user_settings_audit.subject_user_id".to_owned(), 1)]
    );
    let audit = app
        .query_json(&format!(
            "SELECT to_jsonb(a) - 'id' - 'at' - 'actor_id' - 'request_id' \
             FROM shared.user_settings_audit a WHERE subject_user_id = '{user}'"
        ))
        .await;
    assert_eq!(audit[0]["action"], "admin_read");
    assert!(!audit[0].to_string().contains("grid"));
    // Nobody else lost anything.
    let theirs = json_with_status(
        app.get("/api/v1/users/me/settings/ui.layout", &other).await,
        200,
    )
    .await;
    assert_eq!(theirs["value"], "theirs");
    // The user's API shows an empty account.
    let listing = json_with_status(app.get("/api/v1/users/me/settings", &token).await, 200).await;
    assert_eq!(listing["settings"], json!([]));
}

/// For every uuid column of every table in `shared`, how many rows hold `user`.
async fn rows_of(app: &TestApp, user: uuid::Uuid) -> Vec<(String, i64)> {
    let columns = app
        .query_json(
            "SELECT to_jsonb(table_name || '.' || column_name) FROM information_schema.columns \
             WHERE table_schema = 'shared' AND data_type = 'uuid' ORDER BY 1",
        )
        .await;
    let mut counts = Vec::new();
    for column in columns {
        let column = column.as_str().unwrap().to_owned();
        let (table, name) = column.split_once('.').unwrap();
        let count: Value = app
            .query_json(&format!(
                "SELECT to_jsonb(count(*)) FROM shared.{table} WHERE {name} = '{user}'"
            ))
            .await
            .remove(0);
        counts.push((column, count.as_i64().unwrap()));
    }
    counts
}
