//! Rate limits shared by every instance through a Redis-protocol store, and what happens while
//! the store is away: each instance limits on its own, nothing fails, and the shared quota
//! applies again once the store answers.

use std::{num::NonZeroU32, time::Duration};

use app::config::RateLimitStore;
use e2e::{TcpProxy, TestApp, json_with_status, new_user, test_redis_url};
use secrecy::SecretString;
use serde_json::json;

use crate::{header, setting};

/// A write quota of 5 per hour, counted in the store at `url`.
fn shared_store(url: String) -> impl FnOnce(&mut app::Config) {
    move |config| {
        config.rate_limiting.writes_per_hour = NonZeroU32::new(5).unwrap();
        config.rate_limiting.store = RateLimitStore::Redis;
        config.rate_limiting.redis_url = Some(SecretString::from(url));
        config.rate_limiting.store_timeout = Duration::from_millis(200).try_into().unwrap();
    }
}

async fn store_behind_proxy() -> TcpProxy {
    let url = test_redis_url();
    let address = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let target = tokio::net::lookup_host(address)
        .await
        .unwrap()
        .next()
        .unwrap();
    TcpProxy::start(target).await
}

#[tokio::test]
async fn two_instances_share_one_quota() {
    let first = TestApp::spawn_with(shared_store(test_redis_url())).await;
    let second = first.spawn_peer(shared_store(test_redis_url())).await;
    let alice = first.token(new_user(), &[]);

    let mut remaining = Vec::new();
    for n in 0..3 {
        let through_first = first
            .put(&setting("ui.counter.value"), &alice, &json!({"value": n}))
            .await;
        assert!(
            through_first.status().is_success(),
            "{}",
            through_first.status()
        );
        remaining.push(header(&through_first, "ratelimit-remaining"));
        if n < 2 {
            let through_second = second
                .put(&setting("ui.counter.value"), &alice, &json!({"value": n}))
                .await;
            assert!(
                through_second.status().is_success(),
                "{}",
                through_second.status()
            );
            remaining.push(header(&through_second, "ratelimit-remaining"));
        }
    }
    assert_eq!(remaining, ["4", "3", "2", "1", "0"]);

    // The sixth write is refused whichever instance gets it.
    for instance in [&second.address, &first.address] {
        let refused = first
            .client
            .put(format!("{instance}{}", setting("ui.counter.value")))
            .bearer_auth(&alice)
            .json(&json!({"value": 6}))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 429, "through {instance}");
        assert_eq!(header(&refused, "ratelimit-limit"), "5");
        let retry_after: u64 = header(&refused, "retry-after").parse().unwrap();
        assert!(
            (1..=720).contains(&retry_after),
            "Retry-After {retry_after}"
        );
        assert_eq!(json_with_status(refused, 429).await["code"], "rate_limited");
    }
}

#[tokio::test]
async fn without_the_store_each_instance_limits_on_its_own_and_nothing_fails() {
    let proxy = store_behind_proxy().await;
    let url = format!("redis://{}", proxy.address());
    let app = TestApp::spawn_with(shared_store(url)).await;
    let alice = app.token(new_user(), &[]);
    let first = app
        .put(&setting("ui.counter.value"), &alice, &json!({"value": 0}))
        .await;
    assert_eq!(header(&first, "ratelimit-remaining"), "4");

    proxy.cut();
    let mut statuses = Vec::new();
    for n in 1..=6 {
        let response = app
            .put(&setting("ui.counter.value"), &alice, &json!({"value": n}))
            .await;
        statuses.push(response.status().as_u16());
    }

    // The local limiter starts from a full quota of its own: five writes, then 429; no 5xx.
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429]);
    let metrics = app.metrics().await;
    let fallbacks = metrics
        .lines()
        .find(|l| l.starts_with("user_settings_rate_limit_store_errors_total"))
        .unwrap();
    assert!(!fallbacks.ends_with(" 0"), "{fallbacks}");
    let ready = app
        .request(reqwest::Method::GET, "/health/ready", None)
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn once_the_store_is_back_the_shared_quota_applies_again() {
    let proxy = store_behind_proxy().await;
    let url = format!("redis://{}", proxy.address());
    let app = TestApp::spawn_with(shared_store(url)).await;
    let alice_id = new_user();
    let alice = app.token(alice_id, &[]);
    for n in 0..2 {
        let written = app
            .put(&setting("ui.counter.value"), &alice, &json!({"value": n}))
            .await;
        assert!(written.status().is_success());
    }
    proxy.cut();
    let during = app
        .put(&setting("ui.counter.value"), &alice, &json!({"value": 2}))
        .await;
    assert!(during.status().is_success(), "{}", during.status());

    proxy.restore();
    // The store is left alone for a second after a failure, then asked again: probe with
    // reads until the store holds this user's read counter.
    let reads_key = format!("rl:r:{alice_id}");
    let mut store = redis::Client::open(test_redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut shared_again = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let read = app.get(&setting("ui.counter.value"), &alice).await;
        assert!(read.status().is_success(), "{}", read.status());
        let exists: bool = redis::cmd("EXISTS")
            .arg(&reads_key)
            .query_async(&mut store)
            .await
            .unwrap();
        if exists {
            shared_again = true;
            break;
        }
    }
    assert!(shared_again, "the store was not used again within 5 s");

    // The store counted the two writes before the cut; this is its third.
    let after = app
        .put(&setting("ui.counter.value"), &alice, &json!({"value": 3}))
        .await;
    assert_eq!(header(&after, "ratelimit-remaining"), "2");
}
