//! Test harness: spawns the real application on port 0 against a fresh database and talks
//! to it over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use adapter_postgres::testing::TestDatabase;
use app::{Application, Config};
use reqwest::{Client, Method, RequestBuilder};
use secrecy::SecretString;
use serde_json::Value;
use uuid::Uuid;

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
        let mut config = Config::default();
        config.database.url = Some(db.url().to_owned());
        config.server.bind = "127.0.0.1:0".into();
        config.server.workers = 1;
        config.encryption.key = Some(SecretString::from(ENCRYPTION_KEY));
        config.jwt.secret = Some(SecretString::from(JWT_SECRET));
        customize(&mut config);
        let app = Application::build(config).await.expect("the app starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self {
            address,
            client,
            db,
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

    /// Runs a query on the test database and returns the first column of every row as JSON.
    pub async fn query_json(&self, sql: &str) -> Vec<Value> {
        let client = self.db.pool().get().await.unwrap();
        let rows = client.query(sql, &[]).await.unwrap();
        rows.iter().map(|r| r.get::<_, Value>(0)).collect()
    }
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
