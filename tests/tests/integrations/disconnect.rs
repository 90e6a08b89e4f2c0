//! Disconnect: every key of the connection removed, the token revoked where the provider
//! offers revocation (best effort), the sync settings kept.

use reqwest::Method;
use serde_json::json;
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{body_string_contains, method, path},
};

use crate::support::{World, tokens};

async fn connect_trakt(world: &World) {
    world
        .token_endpoint(
            "trakt",
            "grant_type=authorization_code",
            tokens("acc-SECRET-1", Some("ref-SECRET-1"), Some(86_400)),
        )
        .await;
    world.account_endpoint("trakt").await;
    let (status, body) = world.connect_with_code("trakt", "code-SECRET").await;
    assert_eq!(status, 200, "{body}");
}

async fn disconnect(world: &World, provider: &str) -> u16 {
    world
        .call(
            Method::DELETE,
            &format!("/api/v1/integrations/{provider}/disconnect"),
            None,
        )
        .await
        .0
}

#[tokio::test]
async fn disconnect_revokes_the_token_and_removes_every_key() {
    let world = World::spawn().await;
    connect_trakt(&world).await;
    let (status, _) = world
        .call(
            Method::PUT,
            "/api/v1/users/me/settings/scrobbling.trakt.settings",
            Some(json!({"value": {"auto_scrobble": false}})),
        )
        .await;
    assert_eq!(status, 201);
    Mock::given(method("POST"))
        .and(path("/trakt/oauth/revoke"))
        .and(body_string_contains("token=acc-SECRET-1"))
        .and(body_string_contains("client_id=trakt-client"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&world.server)
        .await;

    assert_eq!(disconnect(&world, "trakt").await, 204);
    let keys: Vec<String> = world
        .rows()
        .await
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        keys,
        ["scrobbling.trakt.settings"],
        "only the sync settings remain"
    );
    let status = world.status("trakt").await;
    assert_eq!(status["connected"], false);
    assert_eq!(status["username"], serde_json::Value::Null);
    assert_eq!(disconnect(&world, "trakt").await, 404);

    // The history names the integration as the actor of the connect and the disconnect, and
    // never holds the tokens.
    let history = world
        .app
        .query_json(&format!(
            "SELECT json_build_object('op', op, 'actor', actor, 'value', value) \
             FROM shared.user_settings_history \
             WHERE user_id = '{}' AND key = 'scrobbling.trakt.oauth_tokens' ORDER BY position",
            world.user
        ))
        .await;
    assert_eq!(
        history,
        [
            json!({"op": "created", "actor": "integration", "value": null}),
            json!({"op": "deleted", "actor": "integration", "value": null}),
        ]
    );
}

#[tokio::test]
async fn a_failed_revocation_still_disconnects() {
    let world = World::spawn().await;
    connect_trakt(&world).await;
    Mock::given(method("POST"))
        .and(path("/trakt/oauth/revoke"))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&world.server)
        .await;
    assert_eq!(disconnect(&world, "trakt").await, 204);
    assert!(world.rows().await.is_empty());
}

#[tokio::test]
async fn providers_without_revocation_are_only_removed() {
    let world = World::spawn().await;
    let (status, _) = world
        .connect(
            "letterboxd",
            json!({"username": "u", "password": "pw-SECRET"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(disconnect(&world, "letterboxd").await, 204);
    assert!(world.rows().await.is_empty());
    assert!(world.server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn disconnect_also_removes_the_legacy_music_copy() {
    let world = World::spawn().await;
    // A copy left by an older deployment (the settings API refuses to write this key).
    world
        .execute(&format!(
            "INSERT INTO shared.users (id) VALUES ('{user}') ON CONFLICT DO NOTHING; \
             INSERT INTO shared.user_settings (user_id, key, value, category, data_type) \
             VALUES ('{user}', 'music.lastfm.session', '{envelope}', 'integrations', 'encrypted')",
            user = world.user,
            envelope = json!({"v": 1, "alg": "A256GCM-HKDF-SHA256", "kid": "e2e1",
                "salt": "c2FsdA", "nonce": "bm9uY2U", "ciphertext": "Y2lwaGVy"}),
        ))
        .await;
    assert_eq!(world.rows().await.len(), 1);
    assert_eq!(disconnect(&world, "lastfm").await, 204);
    assert!(world.rows().await.is_empty());
}

#[tokio::test]
async fn an_export_lists_a_connection_by_name_never_its_tokens() {
    let world = World::spawn().await;
    connect_trakt(&world).await;

    // `call` also checks that no token marker is anywhere in the answer.
    let (status, document) = world
        .call(Method::GET, "/api/v1/users/me/export", None)
        .await;
    assert_eq!(status, 200);
    let trakt = &document["integrations"][0];
    assert_eq!(
        (&trakt["provider"], &trakt["connected"]),
        (&json!("trakt"), &json!(true))
    );
    assert!(trakt["username"].is_string());
    assert!(trakt["connected_at"].is_string());
    // The connection's rows are the integration's: neither a setting nor a secret of the
    // document, so an import can never write them.
    let named = |list: &str| {
        document[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["key"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert!(
        !named("settings")
            .iter()
            .any(|k| k.starts_with("integrations."))
    );
    assert!(!named("secrets").contains(&"scrobbling.trakt.oauth_tokens".to_owned()));
}
