//! Slow requests are visible at a production log level: a request that took at least the
//! configured threshold is logged at `warn`, and so is a wait for a database connection,
//! inside the request's span, so the two lines tell where the time went.

use std::time::Duration;

use adapter_postgres::{PgConfig, build_pool, testing::TestDatabase};
use e2e::{TestApp, json_with_status, logs, new_user};
use reqwest::Method;
use serde_json::{Value, json};

use crate::setting;

const THRESHOLD: Duration = Duration::from_millis(100);
/// How long the test holds the user's row, and so the only pooled connection.
const HOLD: Duration = Duration::from_millis(400);

/// Sends a request tagged with the client request id `tag`, which the request's span (and
/// so each of its log lines) names: the test reads only its own lines, even from a buffer
/// other tests share (under `cargo test`).
async fn tagged(
    app: &TestApp,
    method: Method,
    key: &str,
    token: &str,
    body: Option<Value>,
    tag: &str,
) -> reqwest::Response {
    let request = app
        .request(method, &setting(key), Some(token))
        .header("x-request-id", tag);
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.unwrap()
}

/// The captured lines of the request tagged `tag`.
fn lines_of(logged: &str, tag: &str) -> Vec<String> {
    logged
        .lines()
        .filter(|line| line.contains(tag))
        .map(str::to_owned)
        .collect()
}

fn has(lines: &[String], level: &str, message: &str) -> bool {
    lines
        .iter()
        .any(|line| line.contains(level) && line.contains(message))
}

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
    let quick = tagged(
        &app,
        Method::PUT,
        "ui.slow.read",
        &token,
        Some(json!({"value": 1})),
        "slow-test-quick",
    )
    .await;
    json_with_status(quick, 201).await;

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
    let write = tagged(
        &app,
        Method::PUT,
        "ui.slow.write",
        &token,
        Some(json!({"value": 2})),
        "slow-test-held",
    );
    let read = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        tagged(
            &app,
            Method::GET,
            "ui.slow.read",
            &token,
            None,
            "slow-test-waiting",
        )
        .await
    };
    let release = async {
        tokio::time::sleep(HOLD).await;
        blocking.commit().await.unwrap();
    };
    let (written, read, ()) = tokio::join!(write, read, release);
    json_with_status(written, 201).await;
    json_with_status(read, 200).await;

    let logged = logs::captured();
    let held = lines_of(&logged, "slow-test-held");
    let waiting = lines_of(&logged, "slow-test-waiting");
    let quick = lines_of(&logged, "slow-test-quick");
    assert!(
        has(&held, "WARN", "slow request"),
        "the held write:\n{logged}"
    );
    assert!(
        has(&waiting, "WARN", "slow request"),
        "the waiting read:\n{logged}"
    );
    assert!(
        waiting.iter().any(|line| line.contains("WARN")
            && line.contains("slow database connection checkout")
            && line.contains("outcome=\"ok\"")
            && line.contains("pool_waiting")),
        "the read's wait for a connection was not logged in its span:\n{logged}"
    );
    // The held write had its connection at once: its time went to the lock, not the pool.
    assert!(!has(&held, "WARN", "checkout"), "{logged}");
    // The first write was quick: logged at `info`, not as slow.
    assert!(has(&quick, "INFO", "request handled"), "{logged}");
    assert!(!has(&quick, "WARN", "slow request"), "{logged}");
}

#[tokio::test]
async fn a_threshold_of_zero_logs_no_request_as_slow() {
    logs::install();
    let app = TestApp::spawn_with(|c| c.log.slow_request = Duration::ZERO).await;
    let token = app.token(new_user(), &[]);

    let response = tagged(
        &app,
        Method::PUT,
        "ui.slow.never",
        &token,
        Some(json!({"value": 1})),
        "zero-test-write",
    )
    .await;
    json_with_status(response, 201).await;

    let logged = logs::captured();
    let lines = lines_of(&logged, "zero-test-write");
    assert!(has(&lines, "INFO", "request handled"), "{logged}");
    assert!(!has(&lines, "WARN", "slow"), "{logged}");
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
