//! The internal token route: a valid token, refreshed near expiry with the new pair stored,
//! one refresh for concurrent callers, `invalid_grant` → `needs_reauth`, audited, role
//! `service` only.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{body_string_contains, method, path},
};

use crate::{
    logs,
    support::{World, assert_no_secret, tokens},
};

/// Connects Trakt with an access token expiring in `expires_in` seconds.
async fn connected_trakt(world: &World, expires_in: u64) {
    world
        .token_endpoint(
            "trakt",
            "grant_type=authorization_code",
            tokens("acc-SECRET-1", Some("ref-SECRET-1"), Some(expires_in)),
        )
        .await;
    world.account_endpoint("trakt").await;
    let (status, body) = world.connect_with_code("trakt", "code-SECRET").await;
    assert_eq!(status, 200, "{body}");
}

async fn refresh_answers(world: &World, answer: ResponseTemplate, calls: u64) {
    Mock::given(method("POST"))
        .and(path("/trakt/oauth/token"))
        .and(body_string_contains("grant_type=refresh_token"))
        .and(body_string_contains("refresh_token=ref-SECRET-1"))
        .respond_with(answer)
        .expect(calls)
        .mount(&world.server)
        .await;
}

#[tokio::test]
async fn a_service_gets_a_valid_token_and_the_read_is_audited() {
    let world = World::spawn().await;
    connected_trakt(&world, 86_400).await;
    refresh_answers(&world, tokens("unused", None, None), 0).await;

    let (status, body) = world.service_token("trakt").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["access_token"], "acc-SECRET-1");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["username"], "trakt-user");
    assert!(body["expires_at"].is_string());

    let audit = world
        .app
        .query_json(
            "SELECT json_build_object('action', action, 'role', actor_role, 'key', key) \
             FROM shared.user_settings_audit WHERE action = 'token_read'",
        )
        .await;
    assert_eq!(
        audit,
        [
            json!({"action": "token_read", "role": "service", "key": "scrobbling.trakt.oauth_tokens"})
        ]
    );
}

#[tokio::test]
async fn a_token_near_expiry_is_refreshed_and_the_new_pair_stored() {
    let world = World::spawn().await;
    connected_trakt(&world, 60).await;
    refresh_answers(
        &world,
        tokens("acc-SECRET-2", Some("ref-SECRET-2"), Some(86_400)),
        1,
    )
    .await;

    let (status, body) = world.service_token("trakt").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["access_token"], "acc-SECRET-2");
    let stored = world.plaintext("scrobbling.trakt.oauth_tokens").await;
    assert_eq!(stored["access_token"], "acc-SECRET-2");
    assert_eq!(stored["refresh_token"], "ref-SECRET-2");
    assert_eq!(stored["user_slug"], "trakt-user");
    // The next call uses the stored pair: no second refresh (the mock expects one call).
    let (_, again) = world.service_token("trakt").await;
    assert_eq!(again["access_token"], "acc-SECRET-2");
    let metadata = world.status("trakt").await;
    assert_eq!(metadata["needs_reauth"], false);
    assert_no_secret(
        &logs::captured_after("/internal/v1/users/{user_id}/integrations/{provider}/token"),
        "the logs",
    );
}

#[tokio::test]
async fn two_concurrent_requests_cause_exactly_one_refresh() {
    let world = World::spawn().await;
    connected_trakt(&world, 30).await;
    refresh_answers(
        &world,
        tokens("acc-SECRET-2", Some("ref-SECRET-2"), Some(86_400))
            .set_delay(Duration::from_millis(300)),
        1,
    )
    .await;

    let (first, second) = tokio::join!(world.service_token("trakt"), world.service_token("trakt"));
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(second.0, 200, "{}", second.1);
    assert_eq!(first.1["access_token"], "acc-SECRET-2");
    assert_eq!(second.1["access_token"], "acc-SECRET-2");
    world.server.verify().await;
}

#[tokio::test]
async fn callers_queued_behind_a_failing_refresh_share_its_failure() {
    let world = World::spawn().await;
    connected_trakt(&world, 30).await;
    refresh_answers(
        &world,
        ResponseTemplate::new(500).set_delay(Duration::from_millis(500)),
        1,
    )
    .await;

    let (first, second) = tokio::join!(world.service_token("trakt"), world.service_token("trakt"));
    assert_eq!(first.0, 502, "{}", first.1);
    assert_eq!(second.0, 502, "{}", second.1);
    assert_eq!(second.1["code"], "provider_error");
    // The provider was asked once (the mock expects one call).
    world.server.verify().await;
}

#[tokio::test]
async fn invalid_grant_marks_the_connection_needs_reauth() {
    let world = World::spawn().await;
    connected_trakt(&world, 10).await;
    refresh_answers(
        &world,
        ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"})),
        1,
    )
    .await;

    let (status, problem) = world.service_token("trakt").await;
    assert_eq!(status, 409, "{problem}");
    assert_eq!(problem["code"], "needs_reauth");
    let status = world.status("trakt").await;
    assert_eq!(status["needs_reauth"], true);
    assert_eq!(status["connected"], true);
    // Later calls answer at once, without asking the provider again.
    let (status, _) = world.service_token("trakt").await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn a_provider_failure_while_refreshing_is_a_502() {
    let world = World::spawn().await;
    connected_trakt(&world, 10).await;
    refresh_answers(&world, ResponseTemplate::new(503), 1).await;
    let (status, problem) = world.service_token("trakt").await;
    assert_eq!(status, 502, "{problem}");
    assert_eq!(problem["provider"], "Trakt");
    assert_no_secret(&problem.to_string(), "the problem");
}

#[tokio::test]
async fn only_services_read_tokens() {
    let world = World::spawn().await;
    connected_trakt(&world, 86_400).await;
    let response = world
        .app
        .get(
            &format!("/internal/v1/users/{}/integrations/trakt/token", world.user),
            &world.token,
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_no_secret(&response.text().await.unwrap(), "the 403");
}

#[tokio::test]
async fn tokens_of_unconnected_or_tokenless_connections_are_not_found() {
    let world = World::spawn().await;
    let (status, problem) = world.service_token("spotify").await;
    assert_eq!(status, 404);
    assert_eq!(problem["code"], "integration_not_connected");
    world
        .connect(
            "letterboxd",
            json!({"username": "u", "password": "pw-SECRET"}),
        )
        .await;
    let (status, problem) = world.service_token("letterboxd").await;
    assert_eq!(status, 404);
    assert_eq!(problem["code"], "no_access_token");
    let (status, _) = world
        .call(Method::GET, "/api/v1/integrations/letterboxd/status", None)
        .await;
    assert_eq!(status, 200);
}
