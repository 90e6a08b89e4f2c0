//! The GCRA script against a real Redis-protocol server (`USER_SETTINGS_TEST_REDIS_URL`, which
//! `cargo xtask test` sets to a server it starts). Every test uses its own key prefix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{num::NonZeroU32, time::Duration};

use adapter_redis::{ConfigError, RedisGcra, StoreError};

const HOUR: Duration = Duration::from_secs(3600);
const ONE: NonZeroU32 = NonZeroU32::MIN;

fn store_url() -> String {
    std::env::var("USER_SETTINGS_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!(
            "USER_SETTINGS_TEST_REDIS_URL is not set. Run the tests with `cargo xtask test`, which \
             starts a redis-server and sets it, or point it at a Redis, Valkey or Dragonfly server"
        )
    })
}

fn limiter() -> (RedisGcra, String) {
    let prefix = format!("test-{}:", uuid::Uuid::new_v4().simple());
    let limiter = RedisGcra::connect_lazily(&store_url(), &prefix, Duration::from_secs(2)).unwrap();
    (limiter, prefix)
}

fn limit(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

async fn raw_connection() -> redis::aio::MultiplexedConnection {
    redis::Client::open(store_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_whole_quota_may_be_spent_at_once_then_requests_are_refused() {
    let (limiter, _) = limiter();

    let mut remaining = Vec::new();
    for _ in 0..5 {
        let verdict = limiter.check("u", limit(5), HOUR, ONE).await.unwrap();
        assert!(verdict.allowed);
        remaining.push(verdict.remaining);
    }
    let refused = limiter.check("u", limit(5), HOUR, ONE).await.unwrap();

    assert_eq!(remaining, [4, 3, 2, 1, 0]);
    assert!(!refused.allowed);
    assert_eq!(refused.remaining, 0);
    // One request comes back every 1h / 5 = 720 s; the quota was spent just now.
    assert!(
        refused.retry_after > Duration::from_secs(715)
            && refused.retry_after <= Duration::from_secs(720),
        "{:?}",
        refused.retry_after
    );
}

#[tokio::test]
async fn a_request_comes_back_after_one_emission_interval() {
    let (limiter, _) = limiter();
    // 2 per 400 ms: one back every 200 ms.
    let period = Duration::from_millis(400);
    for _ in 0..2 {
        assert!(
            limiter
                .check("u", limit(2), period, ONE)
                .await
                .unwrap()
                .allowed
        );
    }
    assert!(
        !limiter
            .check("u", limit(2), period, ONE)
            .await
            .unwrap()
            .allowed
    );

    tokio::time::sleep(Duration::from_millis(250)).await;

    let verdict = limiter.check("u", limit(2), period, ONE).await.unwrap();
    assert!(verdict.allowed);
    assert_eq!(verdict.remaining, 0);
}

#[tokio::test]
async fn counters_are_separate_per_key() {
    let (limiter, _) = limiter();
    assert!(
        limiter
            .check("a", limit(1), HOUR, ONE)
            .await
            .unwrap()
            .allowed
    );
    assert!(
        !limiter
            .check("a", limit(1), HOUR, ONE)
            .await
            .unwrap()
            .allowed
    );

    assert!(
        limiter
            .check("b", limit(1), HOUR, ONE)
            .await
            .unwrap()
            .allowed
    );
}

#[tokio::test]
async fn a_counter_expires_when_its_quota_is_full_again() {
    let (limiter, prefix) = limiter();
    limiter.check("u", limit(10), HOUR, ONE).await.unwrap();
    limiter.check("u", limit(10), HOUR, ONE).await.unwrap();

    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}u"))
        .query_async(&mut raw_connection().await)
        .await
        .unwrap();

    // Two requests spent, one back every 360 s: full again in 720 s.
    assert!(ttl > 715_000 && ttl <= 720_000, "{ttl}");
}

#[tokio::test]
async fn the_script_is_loaded_again_after_the_store_forgets_it() {
    let (limiter, _) = limiter();
    assert!(
        limiter
            .check("u", limit(3), HOUR, ONE)
            .await
            .unwrap()
            .allowed
    );
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query_async(&mut raw_connection().await)
        .await
        .unwrap();

    let verdict = limiter.check("u", limit(3), HOUR, ONE).await.unwrap();

    assert!(verdict.allowed);
    assert_eq!(verdict.remaining, 1);
}

#[tokio::test]
async fn instances_sharing_the_store_share_the_quota() {
    let (first, prefix) = limiter();
    let second = RedisGcra::connect_lazily(&store_url(), &prefix, Duration::from_secs(2)).unwrap();

    for limiter in [&first, &second, &first] {
        assert!(
            limiter
                .check("u", limit(3), HOUR, ONE)
                .await
                .unwrap()
                .allowed
        );
    }

    assert!(
        !second
            .check("u", limit(3), HOUR, ONE)
            .await
            .unwrap()
            .allowed
    );
}

#[tokio::test]
async fn an_unreachable_store_fails_within_the_timeout() {
    // A listener that accepts and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", silent.local_addr().unwrap());
    let limiter = RedisGcra::connect_lazily(&url, "t:", Duration::from_millis(100)).unwrap();

    let started = std::time::Instant::now();
    let result = limiter.check("u", limit(3), HOUR, ONE).await;

    assert!(matches!(result, Err(StoreError::Timeout(_))), "{result:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test]
async fn a_refused_connection_is_an_error_not_a_hang() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let limiter = RedisGcra::connect_lazily(&url, "t:", Duration::from_millis(200)).unwrap();

    let result = limiter.check("u", limit(3), HOUR, ONE).await;

    assert!(result.is_err(), "{result:?}");
}

#[test]
fn urls_that_are_not_redis_urls_are_refused_without_echoing_them() {
    for url in ["http://user:hunter2@host", "redis//host", "hunter2"] {
        let error = RedisGcra::connect_lazily(url, "t:", Duration::from_millis(50))
            .err()
            .unwrap();
        assert!(matches!(error, ConfigError::Url(_)));
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}

#[tokio::test]
async fn tls_urls_are_accepted() {
    assert!(
        RedisGcra::connect_lazily("rediss://127.0.0.1:1", "t:", Duration::from_millis(50)).is_ok()
    );
}

#[tokio::test]
async fn a_request_worth_several_is_counted_whole_or_not_at_all() {
    let (limiter, _) = limiter();
    let three = NonZeroU32::new(3).unwrap();

    let verdict = limiter.check("u", limit(5), HOUR, three).await.unwrap();
    assert!(verdict.allowed);
    assert_eq!(verdict.remaining, 2);
    // Three more do not fit in the two left: refused, and nothing is spent.
    let refused = limiter.check("u", limit(5), HOUR, three).await.unwrap();
    assert!(!refused.allowed);
    let verdict = limiter.check("u", limit(5), HOUR, ONE).await.unwrap();
    assert!(verdict.allowed);
    assert_eq!(verdict.remaining, 1);
}
