//! Provider failures (error status → 502, no answer → 504, with the provider named and
//! nothing of its body echoed), refused credentials, and providers that are not configured.

use std::time::{Duration, Instant};

use domain::integrations::ProviderId;
use reqwest::Method;
use serde_json::json;
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{method, path},
};

use crate::{
    logs,
    support::{World, assert_no_secret, tokens},
};

#[tokio::test]
async fn a_provider_error_is_a_502_naming_the_provider_without_its_body() {
    let world = World::spawn().await;
    world
        .token_endpoint(
            "trakt",
            "grant_type=authorization_code",
            ResponseTemplate::new(500).set_body_string("stack trace with client_secret=SECRET"),
        )
        .await;
    let (status, problem) = world.connect_with_code("trakt", "code-SECRET").await;
    assert_eq!(status, 502, "{problem}");
    assert_eq!(problem["provider"], "Trakt");
    assert_eq!(problem["code"], "provider_error");
    assert!(problem["detail"].as_str().unwrap().contains("Trakt"));
    assert!(world.rows().await.is_empty());
    assert_no_secret(
        &logs::captured_after("/api/v1/integrations/{provider}/connect"),
        "the logs",
    );
}

#[tokio::test]
async fn a_provider_that_does_not_answer_is_a_504_in_bounded_time() {
    let world = World::spawn().await;
    world
        .token_endpoint(
            "spotify",
            "grant_type=authorization_code",
            tokens("acc-SECRET", Some("ref-SECRET"), Some(3600)).set_delay(Duration::from_secs(5)),
        )
        .await;
    let started = Instant::now();
    let (status, problem) = world.connect_with_code("spotify", "code-SECRET").await;
    assert_eq!(status, 504, "{problem}");
    assert_eq!(problem["provider"], "Spotify");
    assert_eq!(problem["code"], "provider_timeout");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    assert!(world.rows().await.is_empty());
}

#[tokio::test]
async fn a_failing_account_lookup_is_a_502_and_stores_nothing() {
    let world = World::spawn().await;
    world
        .token_endpoint(
            "myanimelist",
            "grant_type=authorization_code",
            tokens("acc-SECRET", Some("ref-SECRET"), Some(3600)),
        )
        .await;
    Mock::given(method("GET"))
        .and(path("/myanimelist/api/users/@me"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&world.server)
        .await;
    let (status, problem) = world.connect_with_code("myanimelist", "code-SECRET").await;
    assert_eq!(status, 502, "{problem}");
    assert_eq!(problem["provider"], "MyAnimeList");
    assert!(world.rows().await.is_empty());
}

#[tokio::test]
async fn a_refused_code_or_password_is_a_422() {
    let world = World::spawn().await;
    world
        .token_endpoint(
            "kitsu",
            "grant_type=password",
            ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"})),
        )
        .await;
    let (status, problem) = world
        .connect(
            "kitsu",
            json!({"username": "a@example.com", "password": "wrong-SECRET"}),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["code"], "rejected_by_provider");
    assert_eq!(problem["errors"][0]["field"], "password");
    assert!(world.rows().await.is_empty());
}

#[tokio::test]
async fn a_body_with_fields_of_another_method_is_a_422() {
    let world = World::spawn().await;
    let (status, problem) = world
        .connect("listenbrainz", json!({"password": "SECRET", "state": "x"}))
        .await;
    assert_eq!(status, 422, "{problem}");
    let codes: Vec<(&str, &str)> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        codes,
        [
            ("token", "required"),
            ("password", "not_applicable"),
            ("state", "not_applicable")
        ]
    );
}

#[tokio::test]
async fn an_unconfigured_provider_is_listed_as_such_and_refuses_to_connect() {
    let world = World::spawn_with(|config| {
        config.provider_mut(ProviderId::Trakt).client_id = None;
        config.provider_mut(ProviderId::Lastfm).enabled = false;
    })
    .await;
    let (_, list) = world.call(Method::GET, "/api/v1/integrations", None).await;
    let configured = |name: &str| {
        list["integrations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["provider"] == name)
            .unwrap()["configured"]
            .clone()
    };
    assert_eq!(configured("trakt"), false);
    assert_eq!(configured("lastfm"), false);
    assert_eq!(configured("simkl"), true);

    for provider in ["trakt", "lastfm"] {
        let (status, problem) = world
            .call(
                Method::GET,
                &format!("/api/v1/integrations/{provider}/authorize"),
                None,
            )
            .await;
        assert_eq!(status, 404, "{problem}");
        assert_eq!(problem["code"], "provider_not_configured");
        let (status, problem) = world
            .connect(provider, json!({"code": "c", "state": "s"}))
            .await;
        assert_eq!(status, 404, "{problem}");
        assert_eq!(problem["code"], "provider_not_configured");
    }
}

#[tokio::test]
async fn unknown_providers_and_redirectless_authorizations_are_refused() {
    let world = World::spawn().await;
    let (status, problem) = world
        .call(Method::GET, "/api/v1/integrations/musicbrainz/status", None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(problem["code"], "provider_not_found");

    let (status, problem) = world
        .call(Method::GET, "/api/v1/integrations/kitsu/authorize", None)
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["code"], "authorization_not_applicable");

    let (status, problem) = world
        .call(
            Method::GET,
            "/api/v1/integrations/trakt/authorize?redirect_uri=https%3A%2F%2Fevil.example%2F",
            None,
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["code"], "redirect_uri_not_allowed");
}

#[tokio::test]
async fn the_integration_routes_need_a_token() {
    let world = World::spawn().await;
    let response = world
        .app
        .request(Method::GET, "/api/v1/integrations", None)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}
