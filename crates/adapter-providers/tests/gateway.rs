//! The gateway against fake providers on loopback (wiremock): request shapes, PKCE, error
//! mapping, timeouts, and that no response body leaks into an error.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{collections::BTreeMap, time::Duration};

use adapter_providers::{GatewayConfig, HttpProviderGateway, ProviderSettings};
use domain::integrations::{
    AuthorizationUrlError, ConnectProof, Credentials, ProviderError, ProviderGateway, ProviderId,
    Revocation, TokenSet,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{body_string_contains, header, method, path, query_param},
};

const REDIRECT: &str = "https://app.example/integrations/callback";

fn settings(server: &MockServer) -> ProviderSettings {
    let base = server.uri();
    ProviderSettings {
        client_id: Some("client-1".into()),
        client_secret: Some(SecretString::from("client-secret-1")),
        redirect_uri: Some(REDIRECT.into()),
        auth_url: Some(format!("{base}/oauth/authorize")),
        token_url: Some(format!("{base}/oauth/token")),
        api_url: Some(base.clone()),
        revoke_url: Some(format!("{base}/oauth/revoke")),
        ..ProviderSettings::default()
    }
}

fn gateway(
    provider: ProviderId,
    settings: ProviderSettings,
    timeout: Duration,
) -> HttpProviderGateway {
    HttpProviderGateway::new(&GatewayConfig {
        timeout,
        providers: BTreeMap::from([(provider, settings)]),
        ..GatewayConfig::default()
    })
    .unwrap()
}

fn query(url: &str) -> BTreeMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test]
async fn myanimelist_sends_a_plain_pkce_challenge_equal_to_the_verifier() {
    let server = MockServer::start().await;
    let gateway = gateway(
        ProviderId::Myanimelist,
        settings(&server),
        Duration::from_secs(5),
    );
    let request = gateway
        .authorization_request(ProviderId::Myanimelist, None)
        .unwrap();
    let q = query(&request.url);
    let verifier = request.pkce_verifier.expect("a verifier");
    assert_eq!(q["code_challenge_method"], "plain");
    assert_eq!(&q["code_challenge"], verifier.expose_secret());
    assert!((43..=128).contains(&verifier.expose_secret().len()));
    assert_eq!(q["state"], request.state);
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["response_type"], "code");
}

#[tokio::test]
async fn spotify_sends_an_s256_challenge_and_trakt_none() {
    let server = MockServer::start().await;
    let spotify = gateway(
        ProviderId::Spotify,
        settings(&server),
        Duration::from_secs(5),
    )
    .authorization_request(ProviderId::Spotify, None)
    .unwrap();
    let q = query(&spotify.url);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_ne!(
        &q["code_challenge"],
        spotify.pkce_verifier.unwrap().expose_secret()
    );

    let trakt = gateway(ProviderId::Trakt, settings(&server), Duration::from_secs(5))
        .authorization_request(ProviderId::Trakt, None)
        .unwrap();
    assert!(!query(&trakt.url).contains_key("code_challenge"));
    assert!(trakt.pkce_verifier.is_none());
}

#[tokio::test]
async fn a_redirect_uri_that_is_not_configured_is_refused() {
    let server = MockServer::start().await;
    let err = gateway(ProviderId::Trakt, settings(&server), Duration::from_secs(5))
        .authorization_request(ProviderId::Trakt, Some("https://evil.example/cb".into()))
        .unwrap_err();
    assert!(matches!(err, AuthorizationUrlError::RedirectUriNotAllowed));
}

#[tokio::test]
async fn a_provider_without_client_credentials_is_not_configured() {
    let server = MockServer::start().await;
    let mut unconfigured = settings(&server);
    unconfigured.client_secret = None;
    let gateway = gateway(ProviderId::Trakt, unconfigured, Duration::from_secs(5));
    assert!(!gateway.is_configured(ProviderId::Trakt));
    assert!(gateway.is_configured(ProviderId::Listenbrainz));
    assert!(gateway.is_configured(ProviderId::Letterboxd));
    assert!(!gateway.is_configured(ProviderId::Spotify));
}

#[tokio::test]
async fn trakt_code_exchange_posts_the_client_credentials_and_reads_the_account() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("grant_type=authorization_code"))
        .and(body_string_contains("code=the-code"))
        .and(body_string_contains("client_id=client-1"))
        .and(body_string_contains("client_secret=client-secret-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "acc-1", "refresh_token": "ref-1", "token_type": "bearer",
            "expires_in": 7_776_000, "scope": "public", "created_at": 1_700_000_000
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/users/settings"))
        .and(header("authorization", "Bearer acc-1"))
        .and(header("trakt-api-version", "2"))
        .and(header("trakt-api-key", "client-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "user": {"username": "sean", "ids": {"slug": "sean", "uuid": "u-1"}}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let grant = gateway(ProviderId::Trakt, settings(&server), Duration::from_secs(5))
        .connect(
            ProviderId::Trakt,
            ConnectProof::AuthorizationCode {
                code: SecretString::from("the-code"),
                redirect_uri: REDIRECT.into(),
                pkce_verifier: None,
            },
        )
        .await
        .unwrap();
    let Credentials::OAuth(tokens) = grant.credentials else {
        panic!("OAuth tokens expected");
    };
    assert_eq!(tokens.access_token.expose_secret(), "acc-1");
    assert_eq!(tokens.refresh_token.unwrap().expose_secret(), "ref-1");
    assert!(tokens.expires_at.is_some());
    assert_eq!(grant.account.slug.as_deref(), Some("sean"));
}

#[tokio::test]
async fn a_refused_refresh_token_is_invalid_grant() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": "invalid_grant", "error_description": "revoked ref-secret"
        })))
        .mount(&server)
        .await;
    let err = refresh(&server, ProviderId::Myanimelist).await.unwrap_err();
    assert!(matches!(err, ProviderError::InvalidGrant), "{err:?}");
}

#[tokio::test]
async fn a_server_error_is_reported_by_status_without_its_body() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(500).set_body_string("trace: refresh=ref-secret"))
        .mount(&server)
        .await;
    let err = refresh(&server, ProviderId::Spotify).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::Status { status: 500 }),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("ref-secret"));
}

#[tokio::test]
async fn a_provider_that_does_not_answer_in_time_is_a_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let gateway = gateway(
        ProviderId::Kitsu,
        settings(&server),
        Duration::from_millis(300),
    );
    let started = std::time::Instant::now();
    let err = gateway
        .refresh(ProviderId::Kitsu, SecretString::from("r"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Timeout), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn a_token_answer_that_is_not_json_is_invalid_and_not_echoed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_string("access_token=leaky"))
        .mount(&server)
        .await;
    let err = refresh(&server, ProviderId::Trakt).await.unwrap_err();
    assert!(matches!(err, ProviderError::InvalidResponse(_)), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("leaky"));
}

#[tokio::test]
async fn lastfm_get_session_is_signed_and_yields_the_session_key() {
    let server = MockServer::start().await;
    let mut lastfm = settings(&server);
    lastfm.api_url = Some(format!("{}/2.0/", server.uri()));
    let signature = adapter_providers::lastfm_api_signature(
        &[
            ("api_key", "client-1"),
            ("method", "auth.getSession"),
            ("token", "web-token"),
        ],
        "client-secret-1",
    );
    Mock::given(method("GET"))
        .and(path("/2.0/"))
        .and(query_param("method", "auth.getSession"))
        .and(query_param("api_sig", signature.as_str()))
        .and(query_param("format", "json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "session": {"name": "rj", "key": "sk-1", "subscriber": 0}
        })))
        .expect(1)
        .mount(&server)
        .await;
    let grant = gateway(ProviderId::Lastfm, lastfm, Duration::from_secs(5))
        .connect(
            ProviderId::Lastfm,
            ConnectProof::LastfmToken {
                token: SecretString::from("web-token"),
            },
        )
        .await
        .unwrap();
    assert_eq!(grant.account.username.as_deref(), Some("rj"));
    assert!(
        matches!(grant.credentials, Credentials::LastfmSession { session_key } if session_key.expose_secret() == "sk-1")
    );
}

#[tokio::test]
async fn lastfm_authorization_carries_the_state_in_the_callback() {
    let server = MockServer::start().await;
    let request = gateway(
        ProviderId::Lastfm,
        settings(&server),
        Duration::from_secs(5),
    )
    .authorization_request(ProviderId::Lastfm, None)
    .unwrap();
    let q = query(&request.url);
    assert_eq!(q["api_key"], "client-1");
    assert_eq!(query(&q["cb"])["state"], request.state);
}

#[tokio::test]
async fn an_invalid_listenbrainz_token_is_rejected() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/1/validate-token"))
        .and(header("authorization", "Token bad"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "code": 200, "message": "Token invalid.", "valid": false
        })))
        .mount(&server)
        .await;
    let err = gateway(
        ProviderId::Listenbrainz,
        settings(&server),
        Duration::from_secs(5),
    )
    .connect(
        ProviderId::Listenbrainz,
        ConnectProof::UserToken {
            token: SecretString::from("bad"),
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ProviderError::Rejected { .. }), "{err:?}");
}

#[tokio::test]
async fn a_listenbrainz_token_that_cannot_be_a_header_is_rejected_without_a_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    for token in ["line\nbreak", "nul\u{0}byte"] {
        let err = gateway(
            ProviderId::Listenbrainz,
            settings(&server),
            Duration::from_secs(5),
        )
        .connect(
            ProviderId::Listenbrainz,
            ConnectProof::UserToken {
                token: SecretString::from(token),
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, ProviderError::Rejected { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn trakt_revocation_posts_the_token_with_the_client_credentials() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/revoke"))
        .and(body_string_contains("token=acc-1"))
        .and(body_string_contains("client_id=client-1"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let outcome = gateway(ProviderId::Trakt, settings(&server), Duration::from_secs(5))
        .revoke(
            ProviderId::Trakt,
            Credentials::OAuth(TokenSet {
                access_token: SecretString::from("acc-1"),
                refresh_token: None,
                expires_at: None,
                scope: None,
            }),
        )
        .await
        .unwrap();
    assert_eq!(outcome, Revocation::Revoked);
}

#[tokio::test]
async fn providers_without_revocation_are_not_called_even_with_a_revoke_url() {
    let server = MockServer::start().await;
    let tokens = || {
        Credentials::OAuth(TokenSet {
            access_token: SecretString::from("acc-1"),
            refresh_token: None,
            expires_at: None,
            scope: None,
        })
    };
    // Spotify offers no RFC 7009 revocation; the configured URL is not used.
    let outcome = gateway(
        ProviderId::Spotify,
        settings(&server),
        Duration::from_secs(5),
    )
    .revoke(ProviderId::Spotify, tokens())
    .await
    .unwrap();
    assert_eq!(outcome, Revocation::NotSupported);
    // Nor are credentials that are not OAuth tokens revoked.
    let outcome = gateway(
        ProviderId::Listenbrainz,
        settings(&server),
        Duration::from_secs(5),
    )
    .revoke(
        ProviderId::Listenbrainz,
        Credentials::UserToken {
            user_token: SecretString::from("t"),
        },
    )
    .await
    .unwrap();
    assert_eq!(outcome, Revocation::NotSupported);
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn an_expires_in_beyond_the_calendar_is_no_expiry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/oauth/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "access_token": "acc-2",
            "token_type": "bearer",
            "expires_in": i64::MAX,
        })))
        .mount(&server)
        .await;
    let tokens = refresh(&server, ProviderId::Trakt).await.unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "acc-2");
    assert_eq!(tokens.expires_at, None);
}

async fn refresh(server: &MockServer, provider: ProviderId) -> Result<TokenSet, ProviderError> {
    gateway(provider, settings(server), Duration::from_secs(5))
        .refresh(provider, SecretString::from("ref-secret"))
        .await
}
