//! `/metrics`: what traffic leaves behind, in the Prometheus text format.

use std::num::NonZeroU32;

use e2e::{TestApp, json_with_status, new_user};
use reqwest::Method;
use serde_json::json;

use crate::{header, setting};

/// The value of the sample `series` (name and labels exactly as exposed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

#[tokio::test]
async fn metrics_appear_after_traffic() {
    let app = TestApp::spawn().await;
    let user = new_user();
    let token = app.token(user, &[]);
    json_with_status(
        app.put(&setting("ui.metrics.probe"), &token, &json!({"value": 1}))
            .await,
        201,
    )
    .await;
    for _ in 0..2 {
        json_with_status(app.get(&setting("ui.metrics.probe"), &token).await, 200).await;
    }
    let secret = json!({"value": "s3cr3t", "data_type": "encrypted"});
    json_with_status(
        app.put(&setting("ui.metrics.secret"), &token, &secret)
            .await,
        201,
    )
    .await;
    let missing = app
        .request(Method::GET, "/no/such/route", None)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let response = app
        .request(Method::GET, "/metrics", None)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(header(&response, "content-type").starts_with("text/plain"));
    let text = response.text().await.unwrap();

    let route = r#"route="/api/v1/users/me/settings/{key}""#;
    assert_eq!(
        sample(
            &text,
            &format!(r#"user_settings_http_requests_total{{method="PUT",{route},status="201"}}"#)
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!(
                r#"user_settings_http_request_duration_seconds_count{{method="GET",{route}}}"#
            )
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"user_settings_http_requests_total{method="GET",route="unmatched",status="404"}"#
        ),
        Some(1.0)
    );
    let hits = sample(&text, r#"user_settings_cache_hits_total{cache="settings"}"#).unwrap();
    let misses = sample(
        &text,
        r#"user_settings_cache_misses_total{cache="settings"}"#,
    )
    .unwrap();
    assert_eq!(
        hits + misses,
        2.0,
        "every read of a setting is a hit or a miss"
    );
    assert_eq!(
        sample(
            &text,
            r#"user_settings_crypto_operations_total{operation="seal",outcome="ok"}"#
        ),
        Some(1.0)
    );
    // The shared pool's 16, plus the pool of each thread with a runtime of its own that has
    // queried (the HTTP worker's, the test's): whole pools of the configured sizes.
    let max_size = sample(&text, "user_settings_db_pool_max_size").unwrap_or_default();
    assert!(max_size >= 32.0 && max_size % 16.0 == 0.0, "{max_size}");
    assert!(sample(&text, "user_settings_db_pool_size").is_some_and(|n| n >= 1.0));
    assert!(sample(&text, "user_settings_db_pool_available").is_some());
    assert_eq!(sample(&text, "user_settings_db_pool_waiting"), Some(0.0));
    assert_eq!(
        sample(&text, "user_settings_change_feed_reconnects_total"),
        Some(0.0)
    );
    assert!(sample(&text, "user_settings_rate_limiter_tracked_users").is_some_and(|n| n >= 1.0));
    assert!(!text.contains(&user.to_string()), "no label names a user");
    assert!(!text.contains("ui.metrics.probe"), "no label names a key");
}

#[tokio::test]
async fn refused_requests_are_counted() {
    let app =
        TestApp::spawn_with(|c| c.rate_limiting.writes_per_hour = NonZeroU32::new(1).unwrap())
            .await;
    let token = app.token(new_user(), &[]);
    for value in [1, 2, 3] {
        app.put(
            &setting("ui.metrics.limited"),
            &token,
            &json!({"value": value}),
        )
        .await;
    }
    let text = app.metrics().await;
    assert_eq!(
        sample(&text, r#"user_settings_rate_limited_total{kind="write"}"#),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"user_settings_http_requests_total{method="PUT",route="/api/v1/users/me/settings/{key}",status="429"}"#
        ),
        Some(2.0)
    );
}

#[tokio::test]
async fn cache_bytes_are_exposed_per_cache() {
    let app = TestApp::spawn().await;
    let token = app.token(new_user(), &[]);
    let value = json!({"value": "x".repeat(8 << 10)});
    json_with_status(
        app.put(&setting("ui.metrics.big"), &token, &value).await,
        201,
    )
    .await;
    let series = |cache: &str| format!(r#"user_settings_cache_bytes{{cache="{cache}"}}"#);
    // moka totals its weights lazily, on later accesses: read until the figures show.
    let mut text = String::new();
    for _ in 0..50 {
        json_with_status(app.get(&setting("ui.metrics.big"), &token).await, 200).await;
        json_with_status(app.get("/api/v1/users/me/settings", &token).await, 200).await;
        json_with_status(app.get("/api/v1/users/me/preferences", &token).await, 200).await;
        text = app.metrics().await;
        let held = |cache| sample(&text, &series(cache)).unwrap_or(0.0);
        if held("settings") > 0.0 && held("settings_list") > 0.0 && held("preferences") > 0.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Each cache holds the 8 KiB value (or the defaults) and charges at least what it pins.
    assert!(
        sample(&text, &series("settings")).is_some_and(|b| b > 8192.0),
        "{text}"
    );
    assert!(
        sample(&text, &series("settings_list")).is_some_and(|b| b > 8192.0),
        "{text}"
    );
    assert!(
        sample(&text, &series("preferences")).is_some_and(|b| b > 0.0),
        "{text}"
    );
}
