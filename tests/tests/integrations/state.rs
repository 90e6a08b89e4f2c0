//! The OAuth `state`: missing, unknown, another user's, another provider's, replayed or
//! expired → 400, and nothing is stored.

use e2e::new_user;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{World, tokens};

async fn trakt_ready(world: &World) {
    world
        .token_endpoint(
            "trakt",
            "grant_type=authorization_code",
            tokens("acc-SECRET", Some("ref-SECRET"), Some(3600)),
        )
        .await;
    world.account_endpoint("trakt").await;
}

async fn assert_refused(world: &World, answer: (u16, Value), code: &str) {
    let (status, body) = answer;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], code);
    assert!(world.rows().await.is_empty(), "nothing is stored");
}

#[tokio::test]
async fn a_connect_without_state_is_refused() {
    let world = World::spawn().await;
    trakt_ready(&world).await;
    let answer = world.connect("trakt", json!({"code": "code-SECRET"})).await;
    assert_refused(&world, answer, "state_missing").await;
}

#[tokio::test]
async fn an_unknown_state_is_refused() {
    let world = World::spawn().await;
    trakt_ready(&world).await;
    let answer = world
        .connect(
            "trakt",
            json!({"code": "code-SECRET", "state": "made-up-state-0123456789"}),
        )
        .await;
    assert_refused(&world, answer, "state_invalid").await;
}

#[tokio::test]
async fn another_users_state_is_refused_and_stays_usable_by_its_owner() {
    let world = World::spawn().await;
    trakt_ready(&world).await;
    let start = world.authorize("trakt").await;

    let intruder = world.app.token(new_user(), &[]);
    let response = world
        .app
        .request(
            Method::POST,
            "/api/v1/integrations/trakt/connect",
            Some(&intruder),
        )
        .json(&json!({"code": "code-SECRET", "state": start["state"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(
        world
            .app
            .query_json("SELECT to_json(count(*)) FROM shared.user_settings")
            .await,
        [json!(0)]
    );

    let (status, body) = world
        .connect(
            "trakt",
            json!({"code": "code-SECRET", "state": start["state"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn another_providers_state_is_refused() {
    let world = World::spawn().await;
    trakt_ready(&world).await;
    let start = world.authorize("simkl").await;
    let answer = world
        .connect(
            "trakt",
            json!({"code": "code-SECRET", "state": start["state"]}),
        )
        .await;
    assert_refused(&world, answer, "state_invalid").await;
}

#[tokio::test]
async fn a_replayed_state_is_refused() {
    let world = World::spawn().await;
    trakt_ready(&world).await;
    let start = world.authorize("trakt").await;
    let body = json!({"code": "code-SECRET", "state": start["state"]});
    let (status, _) = world.connect("trakt", body.clone()).await;
    assert_eq!(status, 200);
    world
        .call(
            Method::DELETE,
            "/api/v1/integrations/trakt/disconnect",
            None,
        )
        .await;

    let answer = world.connect("trakt", body).await;
    assert_refused(&world, answer, "state_invalid").await;
}

#[tokio::test]
async fn an_expired_state_is_refused() {
    let world = World::spawn().await;
    trakt_ready(&world).await;
    let start = world.authorize("trakt").await;
    world
        .execute(
            "UPDATE shared.user_settings_oauth_states SET expires_at = now() - interval '1 second'",
        )
        .await;
    let answer = world
        .connect(
            "trakt",
            json!({"code": "code-SECRET", "state": start["state"]}),
        )
        .await;
    assert_refused(&world, answer, "state_expired").await;
}

#[tokio::test]
async fn a_state_expires_ten_minutes_after_authorize() {
    let world = World::spawn().await;
    world.authorize("trakt").await;
    let minutes = world
        .app
        .query_json(
            "SELECT to_json(round(extract(epoch FROM expires_at - created_at) / 60)) \
             FROM shared.user_settings_oauth_states",
        )
        .await;
    assert_eq!(minutes, [json!(10)]);
}

#[tokio::test]
async fn a_different_redirect_uri_is_refused() {
    let world = World::spawn().await;
    trakt_ready(&world).await;
    let start = world.authorize("trakt").await;
    let answer = world
        .connect(
            "trakt",
            json!({"code": "code-SECRET", "state": start["state"], "redirect_uri": "https://evil.example/cb"}),
        )
        .await;
    assert_refused(&world, answer, "redirect_uri_mismatch").await;
}

#[tokio::test]
async fn the_pkce_verifier_is_stored_sealed() {
    let world = World::spawn().await;
    let start = world.authorize("myanimelist").await;
    // MyAnimeList uses plain PKCE: the challenge in the URL is the verifier itself.
    let url = reqwest::Url::parse(start["authorization_url"].as_str().unwrap()).unwrap();
    let (_, verifier) = url
        .query_pairs()
        .find(|(name, _)| name == "code_challenge")
        .expect("a code challenge");
    assert!(verifier.len() >= 43, "{verifier}");
    let stored = world
        .app
        .query_json("SELECT to_json(s) FROM shared.user_settings_oauth_states s")
        .await;
    assert_eq!(stored.len(), 1);
    let row = stored[0].to_string();
    assert!(
        !row.contains(verifier.as_ref()),
        "the verifier is stored in clear: {row}"
    );
    assert!(
        stored[0]["pkce_verifier"].get("ciphertext").is_some(),
        "{row}"
    );
}
