//! Slow requests are visible at a production log level: a request that took at least the
//! configured threshold is logged at `warn`, and so is a wait for a database connection,
//! inside the request's span, so the two lines tell where the time went.

use std::time::Duration;

use adapter_postgres::{PgConfig, build_pool, testing::TestDatabase};
use e2e::{TestApp, json_with_status, logs, new_user};
use serde_json::json;

use crate::setting;

const THRESHOLD: Duration = Duration::from_millis(100);
/// How long the test holds the user's row, and so the only pooled connection.
const HOLD: Duration = Duration::from_millis(400);

#[tokio::test]
async fn a_slow_request_and_its_wait_for_a_connection_are_logged_as_warnings() {
    logs::install();
    let app = TestApp::spawn_with(|c| {
        c.log.slow_request = THRESHOLD;
        // One connection, and reads that go to the database: a second request must wait.
        c.database.max_connections = 1;
        c.cache.settings_ttl = Duration::ZERO;
    })
    .await;
    let user = new_user();
    let token = app.token(user, &[]);
    json_with_status(
        app.put(&setting("ui.slow.read"), &token, &json!({"value": 1}))
            .await,
        201,
    )
    .await;

    // Another session holds the user's row: the next write waits for it on the only
    // connection, and a read behind it waits for that connection.
    let mut blocker = app.db.pool().get().await.unwrap();
    let blocking = blocker.transaction().await.unwrap();
    blocking
        .execute(
            "SELECT 1 FROM shared.users WHERE id = $1 FOR UPDATE",
            &[&user],
        )
        .await
        .unwrap();
    let (path, body) = (setting("ui.slow.write"), json!({"value": 2}));
    let write = app.put(&path, &token, &body);
    let read = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        app.get(&setting("ui.slow.read"), &token).await
    };
    let release = async {
        tokio::time::sleep(HOLD).await;
        blocking.commit().await.unwrap();
    };
    let (written, read, ()) = tokio::join!(write, read, release);
    json_with_status(written, 201).await;
    json_with_status(read, 200).await;

    let logged = logs::captured();
    let lines: Vec<&str> = logged.lines().collect();
    let route = "route=/api/v1/users/me/settings/{key}";
    let slow = |method: &str| {
        lines.iter().any(|line| {
            line.contains("WARN")
                && line.contains("slow request")
                && line.contains(&format!("method={method}"))
                && line.contains(route)
        })
    };
    assert!(
        slow("PUT"),
        "the held write is not a slow request:\n{logged}"
    );
    assert!(
        slow("GET"),
        "the waiting read is not a slow request:\n{logged}"
    );
    assert!(
        lines.iter().any(|line| line.contains("WARN")
            && line.contains("slow database connection checkout")
            && line.contains("method=GET")
            && line.contains("outcome=\"ok\"")
            && line.contains("pool_waiting")),
        "the read's wait for a connection was not logged in its span:\n{logged}"
    );
    // The first write was quick: logged at `info`, not as slow.
    assert!(
        lines.iter().any(|line| line.contains("INFO")
            && line.contains("request handled")
            && line.contains("method=PUT")),
        "{logged}"
    );
}

#[tokio::test]
async fn a_threshold_of_zero_logs_no_request_as_slow() {
    logs::install();
    let app = TestApp::spawn_with(|c| c.log.slow_request = Duration::ZERO).await;
    let token = app.token(new_user(), &[]);

    json_with_status(
        app.put(&setting("ui.slow.never"), &token, &json!({"value": 1}))
            .await,
        201,
    )
    .await;

    let logged = logs::captured_after("/api/v1/users/me/settings/{key}");
    assert!(!logged.contains("slow request"), "{logged}");
    assert!(
        !logged.contains("slow database connection checkout"),
        "{logged}"
    );
}

#[tokio::test]
async fn a_wait_for_a_connection_its_caller_gave_up_is_logged_too() {
    logs::install();
    let db = TestDatabase::create().await;
    let pool = build_pool(&PgConfig {
        max_size: 1,
        thread_max_size: 1,
        slow_checkout: Some(Duration::from_millis(50)),
        ..db.config()
    })
    .unwrap();
    let held = pool.get().await.unwrap();

    // The caller's own deadline ends the wait before the pool's timeout would.
    let waited = tokio::time::timeout(Duration::from_millis(200), pool.get()).await;
    assert!(waited.is_err(), "the only connection is held");
    drop(held);

    let logged = logs::captured();
    assert!(
        logged.lines().any(|line| line.contains("WARN")
            && line.contains("slow database connection checkout")
            && line.contains("outcome=\"abandoned\"")),
        "{logged}"
    );
}
