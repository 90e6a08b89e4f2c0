//! Per-user quotas: the 101st write within the hour is refused; reads and other users are not.

use std::num::NonZeroU32;

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::json;

use crate::{header, setting};

#[tokio::test]
async fn the_101st_write_within_the_hour_is_refused_with_quota_headers() {
    let app = TestApp::spawn().await;
    let alice = app.token(new_user(), &[]);
    for n in 1..=100 {
        let written = app
            .put(&setting("ui.counter.value"), &alice, &json!({"value": n}))
            .await;
        assert!(
            written.status().is_success(),
            "write {n}: {}",
            written.status()
        );
        assert_eq!(header(&written, "ratelimit-limit"), "100");
        assert_eq!(
            header(&written, "ratelimit-remaining"),
            (100 - n).to_string()
        );
    }

    let refused = app
        .put(&setting("ui.counter.value"), &alice, &json!({"value": 101}))
        .await;
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "content-type"), "application/problem+json");
    assert_eq!(header(&refused, "ratelimit-limit"), "100");
    assert_eq!(header(&refused, "ratelimit-remaining"), "0");
    // One write comes back every 36 s; the whole quota within the hour.
    let retry_after: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((1..=36).contains(&retry_after), "Retry-After {retry_after}");
    let reset: u64 = header(&refused, "ratelimit-reset").parse().unwrap();
    assert!((3500..=3600).contains(&reset), "RateLimit-Reset {reset}");
    assert!(!header(&refused, "x-request-id").is_empty());
    let problem = json_with_status(refused, 429).await;
    assert_eq!(problem["code"], "rate_limited");
    assert_eq!(problem["status"], 429);

    // The refused write changed nothing; reads have their own quota.
    let read = app.get(&setting("ui.counter.value"), &alice).await;
    assert_eq!(header(&read, "ratelimit-limit"), "1000");
    assert_eq!(header(&read, "ratelimit-remaining"), "999");
    assert_eq!(json_with_status(read, 200).await["value"], 100);

    let bob = app.token(new_user(), &[]);
    let other = app
        .put(&setting("ui.counter.value"), &bob, &json!({"value": 1}))
        .await;
    assert_eq!(header(&other, "ratelimit-remaining"), "99");
    json_with_status(other, 201).await;
}

#[tokio::test]
async fn quotas_come_from_the_configuration() {
    let app = TestApp::spawn_with(|c| {
        c.rate_limiting.reads_per_hour = NonZeroU32::new(2).unwrap();
        c.rate_limiting.writes_per_hour = NonZeroU32::new(1).unwrap();
    })
    .await;
    let alice = app.token(new_user(), &[]);
    let path = "/api/v1/users/me/preferences";
    assert_eq!(app.get(path, &alice).await.status(), 200);
    assert_eq!(app.get(path, &alice).await.status(), 200);
    assert_eq!(app.get(path, &alice).await.status(), 429);
    let patch = |body| {
        app.request(Method::PATCH, path, Some(&alice))
            .json(&body)
            .send()
    };
    assert_eq!(patch(json!({"theme": "dark"})).await.unwrap().status(), 200);
    assert_eq!(
        patch(json!({"theme": "light"})).await.unwrap().status(),
        429
    );
}

#[tokio::test]
async fn unauthenticated_and_operational_routes_are_not_limited() {
    let app =
        TestApp::spawn_with(|c| c.rate_limiting.reads_per_hour = NonZeroU32::new(1).unwrap()).await;
    for _ in 0..3 {
        let unauthenticated = app
            .request(Method::GET, "/api/v1/users/me/settings", None)
            .send()
            .await
            .unwrap();
        assert_eq!(unauthenticated.status(), 401);
        assert_eq!(header(&unauthenticated, "ratelimit-limit"), "");
        let schema = app
            .request(Method::GET, "/api/v1/settings/schema", None)
            .send()
            .await
            .unwrap();
        assert_eq!(schema.status(), 200);
        let ready = app
            .request(Method::GET, "/health/ready", None)
            .send()
            .await
            .unwrap();
        assert_eq!(ready.status(), 200);
    }
}

/// A read quota of 2, one stored setting `ui.theme`, and a token of its owner.
async fn two_reads_an_hour() -> (TestApp, String) {
    let app =
        TestApp::spawn_with(|c| c.rate_limiting.reads_per_hour = NonZeroU32::new(2).unwrap()).await;
    let alice = app.token(new_user(), &[]);
    json_with_status(
        app.put(&setting("ui.theme"), &alice, &json!({"value": "dark"}))
            .await,
        201,
    )
    .await;
    (app, alice)
}

/// Asserts that `path` reached the read handler of `ui.theme` and was counted: the first read
/// of the quota answers with one left, the next read (plainly spelled) with none, and the
/// third is refused.
async fn assert_counted_read(app: &TestApp, alice: &str, path: &str) {
    let spelled = app.get(path, alice).await;
    assert_eq!(header(&spelled, "ratelimit-limit"), "2", "{path}");
    assert_eq!(header(&spelled, "ratelimit-remaining"), "1", "{path}");
    assert_eq!(json_with_status(spelled, 200).await["value"], "dark");
    let plain = app.get(&setting("ui.theme"), alice).await;
    assert_eq!(header(&plain, "ratelimit-remaining"), "0");
    assert_eq!(app.get(path, alice).await.status(), 429, "{path}");
}

#[tokio::test]
async fn a_percent_encoded_prefix_is_counted_like_the_plain_path() {
    let (app, alice) = two_reads_an_hour().await;
    assert_counted_read(&app, &alice, "/%61pi/v1/users/me/settings/ui.theme").await;
}

#[tokio::test]
async fn a_percent_encoded_key_is_counted_like_the_plain_path() {
    let (app, alice) = two_reads_an_hour().await;
    assert_counted_read(&app, &alice, "/api/v1/users/me/settings/%75i%2Etheme").await;
}

#[tokio::test]
async fn a_percent_encoded_path_is_labelled_with_its_route_template() {
    let (app, alice) = two_reads_an_hour().await;
    let read = app
        .get("/%61pi/v1/users/me/settings/ui.theme", &alice)
        .await;
    json_with_status(read, 200).await;
    let text = app.metrics().await;
    let series = r#"user_settings_http_requests_total{method="GET",route="/api/v1/users/me/settings/{key}",status="200"} 1"#;
    assert!(text.lines().any(|l| l == series), "{text}");
    assert!(
        !text.contains(r#"route="unmatched",status="200""#),
        "{text}"
    );
}

#[tokio::test]
async fn spellings_that_match_no_route_reach_no_handler() {
    let app = TestApp::spawn().await;
    let alice = app.token(new_user(), &[]);
    json_with_status(
        app.put(&setting("ui.theme"), &alice, &json!({"value": "dark"}))
            .await,
        201,
    )
    .await;
    for path in [
        "/api/v1/users/me/settings/",
        "/api//v1/users/me/settings",
        "/api//v1/users/me/settings/ui.theme",
        "/api/v1//users/me/settings/ui.theme",
    ] {
        let response = app.get(path, &alice).await;
        let problem = json_with_status(response, 404).await;
        assert_eq!(problem["code"], "route_not_found", "{path}");
    }
}
