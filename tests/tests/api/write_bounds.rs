//! What bounds a user's writes and reads: integration-managed keys, the byte quota, the bulk
//! body limit, concurrent writes in flight, and paginated listings.

use std::time::Duration;

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::{Value, json};

const SETTINGS: &str = "/api/v1/users/me/settings";

fn path(key: &str) -> String {
    format!("{SETTINGS}/{key}")
}

#[tokio::test]
async fn integration_managed_keys_answer_409_naming_the_integration_route_and_change_nothing() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let forged = json!({"value": {"access_token": "forged", "refresh_token": "forged"}});

    let put = app
        .put(&path("scrobbling.trakt.oauth_tokens"), &token, &forged)
        .await;
    let bulk = app
        .put(
            SETTINGS,
            &token,
            &json!({"settings": [{"key": "integrations.trakt.connection", "value": {}}]}),
        )
        .await;
    let delete = app
        .delete(&path("scrobbling.listenbrainz.token"), &token)
        .await;

    for (response, provider) in [(put, "trakt"), (bulk, "trakt"), (delete, "listenbrainz")] {
        let problem = json_with_status(response, 409).await;
        assert_eq!(problem["code"], "managed_by_integration");
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("/api/v1/integrations/{provider}/")),
            "{detail}"
        );
    }
    assert!(
        app.query_json("SELECT value FROM shared.user_settings")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_write_over_the_byte_quota_answers_422_naming_the_quota() {
    let app = TestApp::spawn_with(|config| {
        config.validation.max_value_size_kb = 1;
        config.validation.max_bytes_per_user_kb = 2;
    })
    .await;
    let token = app.token(new_user(), &[]);
    // Each value is 1000 bytes as stored: 998 characters and two quotes.
    let value = json!({"value": "x".repeat(998)});
    for key in ["ui.a", "ui.b"] {
        assert_eq!(app.put(&path(key), &token, &value).await.status(), 201);
    }

    let problem = json_with_status(app.put(&path("ui.c"), &token, &value).await, 422).await;

    assert_eq!(problem["errors"][0]["code"], "quota_exceeded");
    let message = problem["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("2048 bytes"), "{message}");
    assert_eq!(app.get(&path("ui.c"), &token).await.status(), 404);
}

#[tokio::test]
async fn a_bulk_body_over_the_bulk_limit_answers_413() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    // 100 values of 11 KiB each: every value and the item count are within their limits,
    // the body (1.1 MiB) is not.
    let items: Vec<Value> = (0..100)
        .map(|i| json!({"key": format!("ui.k{i}"), "value": "x".repeat(11 * 1024)}))
        .collect();

    let response = app.put(SETTINGS, &token, &json!({"settings": items})).await;

    let problem = json_with_status(response, 413).await;
    assert_eq!(problem["code"], "payload_too_large");
}

#[tokio::test]
async fn writes_beyond_the_per_user_bound_in_flight_answer_429_with_retry_after() {
    let app = TestApp::spawn_with(|config| {
        config.server.max_concurrent_writes_per_user = 2;
        config.database.timeout = Duration::from_secs(10).try_into().unwrap();
        config.database.statement_timeout = Duration::from_secs(10).try_into().unwrap();
    })
    .await;
    let user = new_user();
    let token = app.token(user, &[]);
    let other = app.token(new_user(), &[]);
    let one = json!({"value": 1});
    assert_eq!(app.put(&path("ui.first"), &token, &one).await.status(), 201);

    // Hold the user's row lock so that writes stay in flight.
    let mut lock_holder = app.db.pool().get().await.unwrap();
    let lock = lock_holder.transaction().await.unwrap();
    lock.execute(
        "SELECT 1 FROM shared.users WHERE id = $1 FOR UPDATE",
        &[&user],
    )
    .await
    .unwrap();
    let in_flight: Vec<_> = ["ui.a", "ui.b"]
        .into_iter()
        .map(|key| {
            let request = app
                .request(Method::PUT, &path(key), Some(&token))
                .json(&one);
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    wait_for_lock_waiters(&app, 2).await;

    let refused = app.put(&path("ui.c"), &token, &one).await;
    let other_user = app.put(&path("ui.c"), &other, &one).await;

    assert_eq!(refused.headers()["retry-after"], "1");
    let problem = json_with_status(refused, 429).await;
    assert_eq!(problem["code"], "too_many_concurrent_writes");
    assert_eq!(other_user.status(), 201, "other users are not held back");
    lock.rollback().await.unwrap();
    for task in in_flight {
        assert_eq!(task.await.unwrap(), 201);
    }
    assert_eq!(app.put(&path("ui.c"), &token, &one).await.status(), 201);
}

/// Waits until `n` sessions wait for a lock.
async fn wait_for_lock_waiters(app: &TestApp, n: usize) {
    for _ in 0..200 {
        let waiting = app
            .query_json(
                "SELECT to_json(count(*)) FROM pg_stat_activity \
                 WHERE wait_event_type = 'Lock' AND datname = current_database()",
            )
            .await;
        if waiting[0].as_u64() == Some(n as u64) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{n} writes never waited for the lock");
}

#[tokio::test]
async fn listings_come_in_pages_that_a_cursor_continues() {
    let app = TestApp::spawn().await;
    let user = new_user();
    let token = app.token(user, &[]);
    let items: Vec<Value> = ["ui.e", "ui.c", "ui.a", "ui.d", "ui.b"]
        .iter()
        .map(|k| json!({"key": k, "value": 1}))
        .collect();
    assert_eq!(
        app.put(SETTINGS, &token, &json!({"settings": items}))
            .await
            .status(),
        200
    );

    let mut keys = Vec::new();
    let mut next = format!("{SETTINGS}?limit=2");
    let mut pages = 0;
    loop {
        let page = json_with_status(app.get(&next, &token).await, 200).await;
        pages += 1;
        for setting in page["settings"].as_array().unwrap() {
            keys.push(setting["key"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => next = format!("{SETTINGS}?limit=2&cursor={cursor}"),
            None => break,
        }
    }

    assert_eq!(keys, ["ui.a", "ui.b", "ui.c", "ui.d", "ui.e"]);
    assert_eq!(pages, 3);
}

#[tokio::test]
async fn a_listing_without_page_parameters_is_whole_and_has_no_cursor() {
    let app = TestApp::spawn().await;
    let user = new_user();
    let token = app.token(user, &[]);
    for key in ["ui.a", "ui.b", "ui.c"] {
        app.put(&path(key), &token, &json!({"value": 1})).await;
    }
    let admin = app.token(new_user(), &["admin"]);

    let own = json_with_status(app.get(SETTINGS, &token).await, 200).await;
    let admin_page = json_with_status(
        app.get(
            &format!("/api/v1/admin/users/{user}/settings?limit=2"),
            &admin,
        )
        .await,
        200,
    )
    .await;

    assert_eq!(own["settings"].as_array().unwrap().len(), 3);
    assert!(own.get("next_cursor").is_none());
    assert_eq!(admin_page["settings"].as_array().unwrap().len(), 2);
    assert!(admin_page["next_cursor"].is_string());
}

#[tokio::test]
async fn bad_page_parameters_answer_422() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    for (query, code) in [
        ("limit=0", "out_of_range"),
        ("limit=1001", "out_of_range"),
        ("cursor=%21%21", "invalid_cursor"),
    ] {
        let problem =
            json_with_status(app.get(&format!("{SETTINGS}?{query}"), &token).await, 422).await;
        assert_eq!(problem["errors"][0]["code"], code, "{query}");
    }
}
