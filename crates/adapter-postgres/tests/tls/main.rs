//! TLS to PostgreSQL: each test starts a private cluster with `ssl = on`, a certificate for
//! `localhost` only (not `127.0.0.1`) signed by a CA made for the test, and a `pg_hba.conf`
//! that accepts only TLS connections; then connects with one `sslmode`.
//!
//! The server binaries come from `USER_SETTINGS_TEST_PG_BINDIR` (`cargo xtask test` sets it),
//! else `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cluster;

use std::time::Duration;

use adapter_postgres::{ChangeEvent, ChangeFeed, PgConfig, build_pool, connect};
use cluster::TlsCluster;

/// Whether the session of `client` is encrypted, as the server sees it.
async fn is_encrypted(client: &tokio_postgres::Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

async fn connects(url: &str) -> Result<tokio_postgres::Client, String> {
    let mut config = PgConfig::new(url);
    config.connect_timeout = Duration::from_secs(5);
    connect(&config).await.map_err(|e| format!("{e:?}"))
}

#[tokio::test]
async fn verify_full_with_the_right_ca_connects_encrypted() {
    let cluster = TlsCluster::start();
    let client = connects(&cluster.url("localhost", "verify-full", Some(cluster.ca())))
        .await
        .unwrap();
    assert!(is_encrypted(&client).await);
}

#[tokio::test]
async fn verify_full_with_another_ca_is_refused() {
    let cluster = TlsCluster::start();
    let result = connects(&cluster.url("localhost", "verify-full", Some(cluster.other_ca()))).await;
    let error = result.err().unwrap();
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn verify_full_is_refused_when_the_certificate_does_not_name_the_host() {
    let cluster = TlsCluster::start();
    // The certificate names `localhost`, not the address.
    let result = connects(&cluster.url("127.0.0.1", "verify-full", Some(cluster.ca()))).await;
    let error = result.err().unwrap();
    assert!(error.contains("NotValidForName"), "{error}");
}

#[tokio::test]
async fn verify_ca_accepts_a_trusted_certificate_for_another_host() {
    let cluster = TlsCluster::start();
    let client = connects(&cluster.url("127.0.0.1", "verify-ca", Some(cluster.ca())))
        .await
        .unwrap();
    assert!(is_encrypted(&client).await);
}

#[tokio::test]
async fn verify_ca_with_another_ca_is_refused() {
    let cluster = TlsCluster::start();
    let result = connects(&cluster.url("127.0.0.1", "verify-ca", Some(cluster.other_ca()))).await;
    let error = result.err().unwrap();
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn require_encrypts_without_a_ca() {
    let cluster = TlsCluster::start();
    let client = connects(&cluster.url("127.0.0.1", "require", None))
        .await
        .unwrap();
    assert!(is_encrypted(&client).await);
}

#[tokio::test]
async fn require_with_a_root_certificate_verifies_the_chain() {
    let cluster = TlsCluster::start();
    let result = connects(&cluster.url("127.0.0.1", "require", Some(cluster.other_ca()))).await;
    let error = result.err().unwrap();
    assert!(error.contains("UnknownIssuer"), "{error}");
}

#[tokio::test]
async fn prefer_encrypts_when_the_server_offers_tls() {
    let cluster = TlsCluster::start();
    let client = connects(&cluster.url("127.0.0.1", "prefer", None))
        .await
        .unwrap();
    assert!(is_encrypted(&client).await);
}

#[tokio::test]
async fn disable_is_refused_by_a_server_that_accepts_only_tls() {
    let cluster = TlsCluster::start();
    let error = connects(&cluster.url("127.0.0.1", "disable", None))
        .await
        .err()
        .unwrap();
    assert!(error.contains("pg_hba.conf"), "{error}");
}

#[tokio::test]
async fn the_pool_connects_with_tls() {
    let cluster = TlsCluster::start();
    let pool = build_pool(&PgConfig::new(cluster.url(
        "localhost",
        "verify-full",
        Some(cluster.ca()),
    )))
    .unwrap();
    let client = pool.get().await.unwrap();
    assert!(is_encrypted(&client).await);
}

#[tokio::test]
async fn the_change_feed_listens_over_tls() {
    let cluster = TlsCluster::start();
    let url = cluster.url("localhost", "verify-full", Some(cluster.ca()));
    let (feed, mut events) = ChangeFeed::spawn(&PgConfig::new(&url)).unwrap();
    // The first event comes once LISTEN succeeded on the feed's own connection.
    let first = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("the feed connects")
        .unwrap();
    assert_eq!(first, ChangeEvent::FlushAll);

    let client = connects(&url).await.unwrap();
    let feed_encrypted: bool = client
        .query_one(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
             WHERE a.application_name = 'user-settings-change-feed'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(feed_encrypted);
    feed.shutdown().await;
}
