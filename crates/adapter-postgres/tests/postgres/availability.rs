//! An unreachable, silent or slow database fails calls as `Unavailable`, in bounded time.

use std::time::{Duration, Instant};

use adapter_postgres::{
    PgConfig, PgSettingsRepository, Provisioning, build_pool, ping, testing::TestDatabase,
};
use domain::{
    RepositoryError,
    ports::{SettingWriteError, SettingsRepository},
    settings::Precondition,
};
use serde_json::json;
use tokio::net::TcpListener;

use crate::support::{first_page, insert_user, key, new_user, quota, write};

/// Scheduling and connection set-up on a busy two-core machine.
const SLACK: Duration = Duration::from_millis(1500);

fn short_timeouts(url: String) -> PgConfig {
    PgConfig {
        wait_timeout: Duration::from_millis(500),
        create_timeout: Duration::from_millis(500),
        connect_timeout: Duration::from_millis(500),
        ..PgConfig::new(url)
    }
}

#[tokio::test]
async fn closed_port_fails_as_unavailable() {
    // Port 1 on loopback: nothing listens, the connection is refused.
    let config = short_timeouts("postgres://postgres@127.0.0.1:1/postgres".to_owned());
    let repo = PgSettingsRepository::new(build_pool(&config).unwrap(), Provisioning::Auto);
    let started = Instant::now();

    let result = repo.get(new_user(), &key("ui.theme")).await;

    assert!(
        matches!(result, Err(RepositoryError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < config.create_timeout + SLACK);
}

#[tokio::test]
async fn silent_server_fails_as_unavailable_within_the_create_timeout() {
    // Accepts TCP connections and never answers: the start-up handshake would hang forever.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = short_timeouts(format!("postgres://postgres@127.0.0.1:{port}/postgres"));
    let repo = PgSettingsRepository::new(build_pool(&config).unwrap(), Provisioning::Auto);
    let started = Instant::now();

    let result = repo
        .upsert(
            new_user(),
            &write("ui.theme", json!("dark")),
            Precondition::Any,
            quota(10),
        )
        .await;

    assert!(
        matches!(
            result,
            Err(SettingWriteError::Repository(RepositoryError::Unavailable(
                _
            )))
        ),
        "{result:?}"
    );
    assert!(started.elapsed() < config.create_timeout + SLACK);
    server.abort();
}

#[tokio::test]
async fn operation_deadline_bounds_a_call_even_when_pool_timeouts_are_long() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = PgConfig {
        create_timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(30),
        ..PgConfig::new(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
    };
    let limit = Duration::from_millis(300);
    let repo = PgSettingsRepository::new(build_pool(&config).unwrap(), Provisioning::Auto)
        .with_operation_timeout(limit);
    let started = Instant::now();

    let result = repo.list(new_user(), None, first_page()).await;

    assert!(
        matches!(result, Err(RepositoryError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < limit + SLACK);
    server.abort();
}

#[tokio::test]
async fn statement_timeout_fails_as_unavailable() {
    let db = TestDatabase::create().await;
    let user = new_user();
    insert_user(&db, user).await;
    let config = PgConfig {
        statement_timeout: Duration::from_millis(300),
        ..db.config()
    };
    let repo = PgSettingsRepository::new(build_pool(&config).unwrap(), Provisioning::Auto);
    // Another session holds the user's row, so the write waits for its lock.
    let mut blocker = db.pool().get().await.unwrap();
    let blocking = blocker.transaction().await.unwrap();
    blocking
        .execute(
            "SELECT 1 FROM shared.users WHERE id = $1 FOR UPDATE",
            &[&user.as_uuid()],
        )
        .await
        .unwrap();
    let started = Instant::now();

    let result = repo
        .upsert(
            user,
            &write("ui.theme", json!("dark")),
            Precondition::Any,
            quota(10),
        )
        .await;

    assert!(
        matches!(
            result,
            Err(SettingWriteError::Repository(RepositoryError::Unavailable(
                _
            )))
        ),
        "{result:?}"
    );
    assert!(started.elapsed() < config.statement_timeout + SLACK);
    blocking.rollback().await.unwrap();
}

#[tokio::test]
async fn ping_succeeds_on_a_live_database() {
    let db = TestDatabase::create().await;

    ping(db.pool()).await.unwrap();
}

#[tokio::test]
async fn ping_fails_as_unavailable_on_a_closed_port() {
    let config = short_timeouts("postgres://postgres@127.0.0.1:1/postgres".to_owned());

    let result = ping(&build_pool(&config).unwrap()).await;

    assert!(
        matches!(result, Err(RepositoryError::Unavailable(_))),
        "{result:?}"
    );
}
