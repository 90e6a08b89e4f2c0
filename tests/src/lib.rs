//! Test harness: spawns the real application on port 0 against a fresh database and talks
//! to it over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod logs;
pub mod proxy;

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use adapter_postgres::testing::TestDatabase;
use app::{Application, Config};
use reqwest::{Client, Method, RequestBuilder};
use secrecy::SecretString;
use serde_json::Value;
use uuid::Uuid;

pub use proxy::TcpProxy;

/// The JWT secret every test app uses.
pub const JWT_SECRET: &str = "e2e-test-jwt-secret-with-enough-entropy";
/// The encryption key every test app uses (`kid` e2e1).
pub const ENCRYPTION_KEY: &str =
    "e2e1:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// A running application and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The HTTP client (no redirects followed).
    pub client: Client,
    /// The test's own database (dropped after the test).
    pub db: TestDatabase,
}

impl TestApp {
    /// Starts the app with the test defaults.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the app after `customize` adjusts the configuration.
    pub async fn spawn_with(customize: impl FnOnce(&mut Config)) -> Self {
        let db = TestDatabase::create().await;
        let address = start_app(db.url(), customize).await;
        Self {
            address,
            client: http_client(),
            db,
        }
    }

    /// Starts the app with the operational routes on a second listener (port 0 too); returns
    /// the app and that listener's `http://127.0.0.1:<port>`.
    pub async fn spawn_with_internal_listener(
        customize: impl FnOnce(&mut Config),
    ) -> (Self, String) {
        let db = TestDatabase::create().await;
        let (address, internal) = start_app_with_listeners(db.url(), |config| {
            config.server.internal_bind = Some("127.0.0.1:0".into());
            customize(config);
        })
        .await;
        let app = Self {
            address,
            client: http_client(),
            db,
        };
        (app, internal.expect("the internal listener is configured"))
    }

    /// Starts the app with its database behind a [`TcpProxy`] the test controls.
    pub async fn spawn_behind_proxy(customize: impl FnOnce(&mut Config)) -> (Self, TcpProxy) {
        let db = TestDatabase::create().await;
        let (target, url_through) = split_address(db.url());
        let target = tokio::net::lookup_host(&target)
            .await
            .unwrap()
            .next()
            .unwrap();
        let proxy = TcpProxy::start(target).await;
        let address = start_app(&url_through(proxy.address()), customize).await;
        let app = Self {
            address,
            client: http_client(),
            db,
        };
        (app, proxy)
    }

    /// Starts another instance of the app on this test's database, as behind a load
    /// balancer (its own caches, rate limiter and change feed).
    pub async fn spawn_peer(&self, customize: impl FnOnce(&mut Config)) -> Peer {
        Peer {
            address: start_app(self.db.url(), customize).await,
            client: http_client(),
        }
    }

    /// A token for `user` with extra `roles`, valid for an hour.
    pub fn token(&self, user: Uuid, roles: &[&str]) -> String {
        adapter_http::auth::mint_hs256(
            &SecretString::from(JWT_SECRET),
            user,
            roles,
            3600,
            None,
            None,
        )
        .unwrap()
    }

    /// A request to `path` with `token` as bearer (when given).
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self
            .client
            .request(method, format!("{}{path}", self.address));
        match token {
            Some(t) => builder.bearer_auth(t),
            None => builder,
        }
    }

    /// `GET` as `user`.
    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.request(Method::GET, path, Some(token))
            .send()
            .await
            .unwrap()
    }

    /// `PUT` a JSON body as `user`.
    pub async fn put(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.request(Method::PUT, path, Some(token))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `DELETE` as `user`.
    pub async fn delete(&self, path: &str, token: &str) -> reqwest::Response {
        self.request(Method::DELETE, path, Some(token))
            .send()
            .await
            .unwrap()
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        let response = self
            .request(Method::GET, "/metrics", None)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// Runs statements on the test database (directly, never through a proxy).
    pub async fn execute(&self, sql: &str) {
        let client = self.db.pool().get().await.unwrap();
        client.batch_execute(sql).await.unwrap();
    }

    /// Waits (at most 10 s) until `instances` change feeds listen on the test database.
    pub async fn wait_for_change_feeds(&self, instances: u64) {
        let sql = "SELECT to_jsonb(count(*)) FROM pg_stat_activity \
                   WHERE datname = current_database() \
                   AND application_name = 'user-settings-change-feed' \
                   AND query LIKE 'LISTEN user_settings_changes%'";
        for _ in 0..200 {
            if self.query_json(sql).await[0] == instances {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{instances} change feed(s) did not start listening within 10 s");
    }

    /// Runs a query on the test database and returns the first column of every row as JSON.
    pub async fn query_json(&self, sql: &str) -> Vec<Value> {
        let client = self.db.pool().get().await.unwrap();
        let rows = client.query(sql, &[]).await.unwrap();
        rows.iter().map(|r| r.get::<_, Value>(0)).collect()
    }
}

/// The Redis-protocol server of the shared rate-limit tests (`USER_SETTINGS_TEST_REDIS_URL`,
/// which `cargo xtask test` sets to a `redis-server` it starts).
///
/// # Panics
/// When the variable is not set.
pub fn test_redis_url() -> String {
    std::env::var("USER_SETTINGS_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!(
            "USER_SETTINGS_TEST_REDIS_URL is not set. Run the tests with `cargo xtask test`, which \
             starts a redis-server and sets it, or point it at a Redis, Valkey or Dragonfly server"
        )
    })
}

/// A fresh user id.
pub fn new_user() -> Uuid {
    Uuid::new_v4()
}

/// The body of a response as JSON, asserting the status first.
pub async fn json_with_status(response: reqwest::Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {body}");
    if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap()
    }
}

/// Another instance of the app, on the database of a [`TestApp`].
pub struct Peer {
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    /// The HTTP client.
    pub client: Client,
}

impl Peer {
    /// A request to `path` with `token` as bearer.
    pub fn request(&self, method: Method, path: &str, token: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(token)
    }

    /// `GET` as `user`.
    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.request(Method::GET, path, token).send().await.unwrap()
    }

    /// `PUT` a JSON body as `user`.
    pub async fn put(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.request(Method::PUT, path, token)
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

/// Reads `path` through `peer` until `expected(status, body)` holds; panics after `limit`.
pub async fn read_until(
    peer: &Peer,
    path: &str,
    token: &str,
    limit: Duration,
    expected: impl Fn(u16, &Value) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let response = peer.get(path, token).await;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if expected(status, &body) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < limit,
            "{path} still answers {status} {body} after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Builds and starts the app on the database at `url`; returns its address.
async fn start_app(url: &str, customize: impl FnOnce(&mut Config)) -> String {
    start_app_with_listeners(url, customize).await.0
}

/// Builds and starts the app on the database at `url`; returns its address and that of its
/// internal listener, when configured.
async fn start_app_with_listeners(
    url: &str,
    customize: impl FnOnce(&mut Config),
) -> (String, Option<String>) {
    let mut config = Config::default();
    config.database.url = Some(url.to_owned());
    config.server.bind = "127.0.0.1:0".into();
    config.server.workers = 1;
    config.encryption.key = Some(SecretString::from(ENCRYPTION_KEY));
    config.jwt.secret = Some(SecretString::from(JWT_SECRET));
    customize(&mut config);
    let app = Application::build(config).await.expect("the app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let internal = app
        .internal_port()
        .map(|port| format!("http://127.0.0.1:{port}"));
    tokio::spawn(app.run_until_stopped());
    (address, internal)
}

fn http_client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `host:port` of a `postgres://user@host:port/db` URL, and a function giving the same
/// URL pointed at another address.
fn split_address(url: &str) -> (String, impl Fn(SocketAddr) -> String + use<>) {
    let authority_start = url
        .find("://")
        .expect("DATABASE_URL must be a postgres:// URL")
        + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| authority_start + i);
    let host_start = url[authority_start..authority_end]
        .rfind('@')
        .map_or(authority_start, |i| authority_start + i + 1);
    let host_port = &url[host_start..authority_end];
    assert!(
        !host_port.is_empty(),
        "DATABASE_URL must name a TCP host for the proxy tests"
    );
    let target = if host_port
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    let (before, after) = (
        url[..host_start].to_owned(),
        url[authority_end..].to_owned(),
    );
    (target, move |address: SocketAddr| {
        format!("{before}{address}{after}")
    })
}

#[cfg(test)]
mod tests {
    use super::split_address;

    #[test]
    fn database_urls_are_pointed_at_the_proxy() {
        let (target, through) = split_address("postgres://postgres@127.0.0.1:5432/test_x?a=b");
        assert_eq!(target, "127.0.0.1:5432");
        assert_eq!(
            through("127.0.0.1:6000".parse().unwrap()),
            "postgres://postgres@127.0.0.1:6000/test_x?a=b"
        );
        let (target, _) = split_address("postgres://u:p@db/test_x");
        assert_eq!(target, "db:5432");
    }
}
