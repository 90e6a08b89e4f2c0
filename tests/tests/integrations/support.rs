//! The test world: the app with every provider pointed at one wiremock server (paths
//! prefixed by provider), a user with a token, and typed helpers for the integration routes.

use std::time::Duration;

use app::integrations::{IntegrationsConfig, ProviderSettings};
use domain::integrations::ProviderId;
use e2e::{TestApp, new_user};
use reqwest::Method;
use secrecy::SecretString;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string_contains, method, path},
};

use e2e::logs;

/// The redirect URI configured for every provider.
pub const REDIRECT: &str = "https://app.example/integrations/callback";

/// The app, the fake providers and one user.
pub struct World {
    pub app: TestApp,
    pub server: MockServer,
    pub user: Uuid,
    pub token: String,
}

impl World {
    /// Every provider configured against the fake.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// As [`Self::spawn`], then `customize` adjusts the integrations section.
    pub async fn spawn_with(customize: impl FnOnce(&mut IntegrationsConfig)) -> Self {
        logs::install();
        let server = MockServer::start().await;
        let base = server.uri();
        let app = TestApp::spawn_with(|config| {
            let section = &mut config.integrations;
            section.http_timeout = Duration::from_millis(1500).try_into().unwrap();
            // Letterboxd has no endpoints: its credentials are stored as given.
            for (id, provider) in &mut section.providers {
                if *id != ProviderId::Letterboxd {
                    point_at(provider, &base, id.as_str());
                }
            }
            customize(section);
        })
        .await;
        let user = new_user();
        let token = app.token(user, &[]);
        Self {
            app,
            server,
            user,
            token,
        }
    }

    /// A request to the public API as the user. Asserts that the response holds no secret.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.app.request(method, path, Some(&self.token));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_no_secret(&text, &format!("response to {path}"));
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, value)
    }

    /// `GET .../{provider}/authorize`, which must succeed.
    pub async fn authorize(&self, provider: &str) -> Value {
        let (status, body) = self
            .call(
                Method::GET,
                &format!("/api/v1/integrations/{provider}/authorize"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// `POST .../{provider}/connect`.
    pub async fn connect(&self, provider: &str, body: Value) -> (u16, Value) {
        self.call(
            Method::POST,
            &format!("/api/v1/integrations/{provider}/connect"),
            Some(body),
        )
        .await
    }

    /// Authorize, then connect with `code` and the state: the browser round trip.
    pub async fn connect_with_code(&self, provider: &str, code: &str) -> (u16, Value) {
        let start = self.authorize(provider).await;
        self.connect(provider, json!({"code": code, "state": start["state"]}))
            .await
    }

    /// `GET .../{provider}/status`, which must succeed.
    pub async fn status(&self, provider: &str) -> Value {
        let (status, body) = self
            .call(
                Method::GET,
                &format!("/api/v1/integrations/{provider}/status"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// The internal token route as an integration service (its answer holds a secret).
    pub async fn service_token(&self, provider: &str) -> (u16, Value) {
        let service = self.app.token(new_user(), &["service"]);
        let response = self
            .app
            .get(
                &format!(
                    "/internal/v1/users/{}/integrations/{provider}/token",
                    self.user
                ),
                &service,
            )
            .await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The plaintext of a stored secret, through the internal secrets route.
    pub async fn plaintext(&self, key: &str) -> Value {
        let service = self.app.token(new_user(), &["service"]);
        let response = self
            .app
            .get(
                &format!("/internal/v1/users/{}/secrets/{key}", self.user),
                &service,
            )
            .await;
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.unwrap()["value"].clone()
    }

    /// The user's stored rows, as `{key, data_type, value}`, ordered by key.
    pub async fn rows(&self) -> Vec<Value> {
        self.app
            .query_json(&format!(
                "SELECT json_build_object('key', key, 'data_type', data_type, 'value', value, \
                 'category', category) FROM shared.user_settings \
                 WHERE user_id = '{}' ORDER BY key",
                self.user
            ))
            .await
    }

    /// Runs SQL on the test database.
    pub async fn execute(&self, sql: &str) {
        self.app
            .db
            .pool()
            .get()
            .await
            .unwrap()
            .batch_execute(sql)
            .await
            .unwrap();
    }

    /// The token endpoint of `provider` answers `body` for requests containing `needle`.
    pub async fn token_endpoint(&self, provider: &str, needle: &str, answer: ResponseTemplate) {
        Mock::given(method("POST"))
            .and(path(format!("/{provider}/oauth/token")))
            .and(body_string_contains(needle))
            .respond_with(answer)
            .mount(&self.server)
            .await;
    }

    /// A standard account look-up answer for `provider` (username `{provider}-user`).
    pub async fn account_endpoint(&self, provider: &str) {
        let (verb, route, body) = account_answer(provider);
        Mock::given(method(verb))
            .and(path(route))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&self.server)
            .await;
    }
}

/// A token answer with the marker in both tokens.
pub fn tokens(access: &str, refresh: Option<&str>, expires_in: Option<u64>) -> ResponseTemplate {
    let mut body = json!({"access_token": access, "token_type": "bearer"});
    if let Some(refresh) = refresh {
        body["refresh_token"] = json!(refresh);
    }
    if let Some(seconds) = expires_in {
        body["expires_in"] = json!(seconds);
    }
    ResponseTemplate::new(200).set_body_json(body)
}

fn point_at(provider: &mut ProviderSettings, base: &str, name: &str) {
    provider.client_id = Some(format!("{name}-client"));
    provider.client_secret = Some(SecretString::from(format!("{name}-client-SECRET")));
    provider.redirect_uri = Some(REDIRECT.into());
    provider.auth_url = Some(format!("{base}/{name}/oauth/authorize"));
    provider.token_url = Some(format!("{base}/{name}/oauth/token"));
    provider.api_url = Some(format!("{base}/{name}/api"));
    provider.revoke_url = Some(format!("{base}/{name}/oauth/revoke"));
}

fn account_answer(provider: &str) -> (&'static str, String, Value) {
    let user = format!("{provider}-user");
    match provider {
        "trakt" => (
            "GET",
            "/trakt/api/users/settings".into(),
            json!({"user": {"username": user, "ids": {"slug": user, "uuid": "trakt-uuid-1"}}}),
        ),
        "simkl" => (
            "POST",
            "/simkl/api/users/settings".into(),
            json!({"user": {"name": user}, "account": {"id": 4242}}),
        ),
        "anilist" => (
            "POST",
            "/anilist/api".into(),
            json!({"data": {"Viewer": {"id": 77, "name": user}}}),
        ),
        "myanimelist" => (
            "GET",
            "/myanimelist/api/users/@me".into(),
            json!({"id": 99, "name": user}),
        ),
        "kitsu" => (
            "GET",
            "/kitsu/api/users".into(),
            json!({"data": [{"id": "123", "attributes": {"name": user}}]}),
        ),
        "spotify" => (
            "GET",
            "/spotify/api/me".into(),
            json!({"id": "sp-1", "display_name": user}),
        ),
        other => panic!("no account look-up for {other}"),
    }
}

/// The marker every test secret carries.
pub const MARKER: &str = "SECRET";

/// Fails when `text` contains a secret.
pub fn assert_no_secret(text: &str, what: &str) {
    assert!(!text.contains(MARKER), "{what} contains a secret: {text}");
}

/// Asserts that a stored value is an encryption envelope, not plaintext.
pub fn assert_envelope(row: &Value) {
    assert_eq!(row["data_type"], "encrypted", "{row}");
    let value = &row["value"];
    for member in ["v", "alg", "kid", "salt", "nonce", "ciphertext"] {
        assert!(value.get(member).is_some(), "{member} missing: {row}");
    }
    assert_no_secret(&value.to_string(), "the stored envelope");
}
