//! The database taken away mid-test (through a proxy the test controls): fast 503s, a failing
//! readiness probe, recovery without a restart, and no acknowledged write lost.

use std::time::{Duration, Instant};

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{header, setting};

/// The configured database timeout, and how much later than it an answer may come.
const TIMEOUT: Duration = Duration::from_secs(1);
const SLACK: Duration = Duration::from_millis(1500);

/// Asserts a problem+json 503 that came within the timeout.
async fn assert_unavailable_in_time(started: Instant, response: reqwest::Response) {
    let elapsed = started.elapsed();
    assert!(elapsed < TIMEOUT + SLACK, "answered after {elapsed:?}");
    assert_eq!(
        header(&response, "content-type"),
        "application/problem+json"
    );
    assert!(!header(&response, "retry-after").is_empty());
    let problem = json_with_status(response, 503).await;
    assert_eq!(problem["code"], "service_unavailable");
}

async fn ready(app: &TestApp) -> reqwest::Response {
    app.request(Method::GET, "/health/ready", None)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn without_the_database_the_api_fails_fast_and_recovers_without_losing_writes() {
    let (app, proxy) =
        TestApp::spawn_behind_proxy(|c| c.database.timeout = TIMEOUT.try_into().unwrap()).await;
    let user = new_user();
    let token = app.token(user, &[]);
    let put = |key: &'static str| {
        app.request(Method::PUT, &setting(key), Some(&token))
            .json(&json!({"value": key}))
            .send()
    };

    json_with_status(put("ui.outage.before").await.unwrap(), 201).await;

    proxy.cut();
    // Let the proxy close the connections it carried.
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    assert_unavailable_in_time(started, put("ui.outage.during").await.unwrap()).await;
    let started = Instant::now();
    assert_unavailable_in_time(started, app.get(&setting("ui.outage.unread"), &token).await).await;
    let started = Instant::now();
    assert_unavailable_in_time(started, ready(&app).await).await;

    proxy.restore();
    let started = Instant::now();
    while ready(&app).await.status() != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "not ready 10 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    json_with_status(put("ui.outage.after").await.unwrap(), 201).await;

    // Every acknowledged write is there, through the API and in the table.
    for key in ["ui.outage.before", "ui.outage.after"] {
        let read = json_with_status(app.get(&setting(key), &token).await, 200).await;
        assert_eq!(read["value"], key);
    }
    let stored = app
        .query_json(&format!(
            "SELECT to_jsonb(key) FROM shared.user_settings WHERE user_id = '{user}' ORDER BY key"
        ))
        .await;
    for key in ["ui.outage.after", "ui.outage.before"] {
        assert!(
            stored.contains(&Value::from(key)),
            "{key} is stored: {stored:?}"
        );
    }
}

#[tokio::test]
async fn readiness_reports_an_outage_once_its_last_answer_is_a_second_old() {
    let (app, proxy) =
        TestApp::spawn_behind_proxy(|c| c.database.timeout = TIMEOUT.try_into().unwrap()).await;
    assert_eq!(ready(&app).await.status(), 200);
    proxy.cut();
    // Answers are shared for at most a second.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let started = Instant::now();
    assert_unavailable_in_time(started, ready(&app).await).await;
}
