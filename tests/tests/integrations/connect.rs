//! Happy paths, one per provider: the credentials are stored encrypted under the provider's storage key,
//! the metadata is readable in clear, and the status says connected with the username.

use domain::integrations::ProviderId;
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::{
    Mock, ResponseTemplate,
    matchers::{body_string_contains, header, method, path, query_param},
};

use crate::{
    logs,
    support::{MARKER, REDIRECT, World, assert_envelope, assert_no_secret, tokens},
};

fn query(url: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// Checks what an OAuth connect stored and reports.
async fn assert_connected(world: &World, provider: &str, storage_key: &str, answer: &Value) {
    assert_eq!(answer["connected"], true, "{answer}");
    assert_eq!(answer["username"], format!("{provider}-user"));
    let rows = world.rows().await;
    let keys: Vec<&str> = rows.iter().map(|r| r["key"].as_str().unwrap()).collect();
    let metadata_key = format!("integrations.{provider}.connection");
    assert_eq!(keys, sorted(&[storage_key, &metadata_key]));
    let secret_row = rows.iter().find(|r| r["key"] == storage_key).unwrap();
    assert_envelope(secret_row);
    assert_eq!(secret_row["category"], "integrations");
    let metadata = &rows
        .iter()
        .find(|r| r["key"] == metadata_key.as_str())
        .unwrap();
    assert_eq!(metadata["data_type"], "json");
    assert_eq!(metadata["value"]["username"], format!("{provider}-user"));
    assert_eq!(metadata["value"]["needs_reauth"], false);
    let status = world.status(provider).await;
    assert_eq!(status["connected"], true);
    assert_eq!(status["configured"], true);
    assert_eq!(status["username"], format!("{provider}-user"));
    assert!(status["connected_at"].is_string());
    // The settings API shows the credentials redacted.
    let (code, setting) = world
        .call(
            Method::GET,
            &format!("/api/v1/users/me/settings/{storage_key}"),
            None,
        )
        .await;
    assert_eq!(code, 200);
    assert_eq!(setting["redacted"], true);
}

fn sorted<'a>(keys: &[&'a str]) -> Vec<&'a str> {
    let mut keys = keys.to_vec();
    keys.sort_unstable();
    keys
}

#[tokio::test]
async fn trakt_connects_through_the_browser_round_trip() {
    let world = World::spawn().await;
    world
        .token_endpoint(
            "trakt",
            "code=code-SECRET-trakt",
            tokens(
                "acc-SECRET-trakt",
                Some("ref-SECRET-trakt"),
                Some(7_776_000),
            ),
        )
        .await;
    world.account_endpoint("trakt").await;

    let start = world.authorize("trakt").await;
    let url = start["authorization_url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/trakt/oauth/authorize?", world.server.uri())));
    let q = query(url);
    assert_eq!(q["client_id"], "trakt-client");
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["state"], start["state"].as_str().unwrap());
    assert!(start["state"].as_str().unwrap().len() >= 16);
    assert!(start["expires_at"].is_string());

    let (status, answer) = world
        .connect(
            "trakt",
            json!({"code": "code-SECRET-trakt", "state": start["state"], "redirect_uri": REDIRECT}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_connected(&world, "trakt", "scrobbling.trakt.oauth_tokens", &answer).await;
    let stored = world.plaintext("scrobbling.trakt.oauth_tokens").await;
    assert_eq!(stored["access_token"], "acc-SECRET-trakt");
    assert_eq!(stored["refresh_token"], "ref-SECRET-trakt");
    assert_eq!(stored["user_slug"], "trakt-user");
    assert_eq!(stored["user_id"], "trakt-uuid-1");
    assert!(stored["expires_at"].is_string());
    let logged = logs::captured_after("/api/v1/integrations/{provider}/connect");
    assert!(logged.contains("integration connected"), "{logged}");
    assert_no_secret(&logged, "the logs");
}

#[tokio::test]
async fn myanimelist_sends_the_pkce_verifier_of_its_authorization() {
    let world = World::spawn().await;
    let start = world.authorize("myanimelist").await;
    let q = query(start["authorization_url"].as_str().unwrap());
    assert_eq!(q["code_challenge_method"], "plain");
    // Plain PKCE: the verifier is the challenge.
    let verifier = q["code_challenge"].clone();
    Mock::given(method("POST"))
        .and(path("/myanimelist/oauth/token"))
        .and(body_string_contains(format!("code_verifier={verifier}")))
        .respond_with(tokens(
            "acc-SECRET-mal",
            Some("ref-SECRET-mal"),
            Some(2_678_400),
        ))
        .expect(1)
        .mount(&world.server)
        .await;
    world.account_endpoint("myanimelist").await;

    let (status, answer) = world
        .connect(
            "myanimelist",
            json!({"code": "code-SECRET-mal", "state": start["state"]}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_connected(
        &world,
        "myanimelist",
        "anime.myanimelist.oauth_tokens",
        &answer,
    )
    .await;
}

#[tokio::test]
async fn spotify_connects_with_s256_pkce() {
    let world = World::spawn().await;
    world
        .token_endpoint(
            "spotify",
            "code_verifier=",
            tokens("acc-SECRET-sp", Some("ref-SECRET-sp"), Some(3600)),
        )
        .await;
    world.account_endpoint("spotify").await;
    let start = world.authorize("spotify").await;
    assert_eq!(
        query(start["authorization_url"].as_str().unwrap())["code_challenge_method"],
        "S256"
    );
    let (status, answer) = world
        .connect(
            "spotify",
            json!({"code": "code-SECRET-sp", "state": start["state"]}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_connected(&world, "spotify", "music.spotify.oauth_tokens", &answer).await;
    assert!(answer["expires_at"].is_string());
}

#[tokio::test]
async fn anilist_connects_and_keeps_its_one_year_token() {
    let world = World::spawn().await;
    world
        .token_endpoint(
            "anilist",
            "code=code-SECRET-ani",
            tokens("acc-SECRET-ani", None, Some(31_536_000)),
        )
        .await;
    world.account_endpoint("anilist").await;
    let (status, answer) = world.connect_with_code("anilist", "code-SECRET-ani").await;
    assert_eq!(status, 200, "{answer}");
    assert_connected(&world, "anilist", "anime.anilist.oauth_tokens", &answer).await;
    let stored = world.plaintext("anime.anilist.oauth_tokens").await;
    assert_eq!(stored["user_id"], 77);
    assert_eq!(stored["username"], "anilist-user");
}

#[tokio::test]
async fn simkl_connects_with_a_token_that_does_not_expire() {
    let world = World::spawn().await;
    world
        .token_endpoint(
            "simkl",
            "code=code-SECRET-simkl",
            tokens("acc-SECRET-simkl", None, None),
        )
        .await;
    world.account_endpoint("simkl").await;
    let (status, answer) = world.connect_with_code("simkl", "code-SECRET-simkl").await;
    assert_eq!(status, 200, "{answer}");
    assert_connected(&world, "simkl", "scrobbling.simkl.oauth_tokens", &answer).await;
    assert_eq!(answer["expires_at"], Value::Null);
    assert_eq!(
        world.plaintext("scrobbling.simkl.oauth_tokens").await["user_id"],
        4242
    );
}

#[tokio::test]
async fn kitsu_uses_the_password_grant_and_keeps_only_tokens_and_email() {
    let world = World::spawn().await;
    world
        .token_endpoint(
            "kitsu",
            "grant_type=password",
            tokens(
                "acc-SECRET-kitsu",
                Some("ref-SECRET-kitsu"),
                Some(2_592_000),
            ),
        )
        .await;
    world.account_endpoint("kitsu").await;
    let (status, answer) = world
        .connect(
            "kitsu",
            json!({"username": "fan@example.com", "password": "pw-SECRET-kitsu"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_connected(&world, "kitsu", "anime.kitsu.oauth_tokens", &answer).await;
    let stored = world.plaintext("anime.kitsu.oauth_tokens").await;
    assert_eq!(stored["email"], "fan@example.com");
    assert!(
        !stored.to_string().contains("pw-SECRET"),
        "the password is not kept"
    );
}

#[tokio::test]
async fn lastfm_signs_get_session_with_a_known_api_sig() {
    let world = World::spawn().await;
    let start = world.authorize("lastfm").await;
    let q = query(start["authorization_url"].as_str().unwrap());
    assert_eq!(q["api_key"], "lastfm-client");
    assert_eq!(query(&q["cb"])["state"], start["state"].as_str().unwrap());

    // Computed by hand: `printf %s
    // "api_keylastfm-clientmethodauth.getSessiontokenweb-SECRET-1lastfm-client-SECRET" | md5sum`.
    Mock::given(method("GET"))
        .and(path("/lastfm/api"))
        .and(query_param("method", "auth.getSession"))
        .and(query_param("api_key", "lastfm-client"))
        .and(query_param("token", "web-SECRET-1"))
        .and(query_param("api_sig", "d08ceadbd749a370ac302475ff842728"))
        .and(query_param("format", "json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "session": {"name": "lastfm-user", "key": "sk-SECRET-lastfm", "subscriber": 0}
        })))
        .expect(1)
        .mount(&world.server)
        .await;
    let (status, answer) = world
        .connect(
            "lastfm",
            json!({"token": "web-SECRET-1", "state": start["state"]}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_connected(&world, "lastfm", "scrobbling.lastfm.session", &answer).await;
    let stored = world.plaintext("scrobbling.lastfm.session").await;
    assert_eq!(stored["session_key"], "sk-SECRET-lastfm");
    assert_eq!(stored["username"], "lastfm-user");
}

#[tokio::test]
async fn listenbrainz_validates_the_user_token_before_storing_it() {
    let world = World::spawn().await;
    Mock::given(method("GET"))
        .and(path("/listenbrainz/api/1/validate-token"))
        .and(header("authorization", "Token lb-SECRET-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "code": 200, "message": "Token valid.", "valid": true, "user_name": "listenbrainz-user"
        })))
        .expect(1)
        .mount(&world.server)
        .await;
    let (status, answer) = world
        .connect("listenbrainz", json!({"token": "lb-SECRET-1"}))
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_connected(
        &world,
        "listenbrainz",
        "scrobbling.listenbrainz.token",
        &answer,
    )
    .await;
    assert_eq!(
        world.plaintext("scrobbling.listenbrainz.token").await["user_token"],
        "lb-SECRET-1"
    );
}

#[tokio::test]
async fn letterboxd_stores_the_credentials_encrypted_without_verifying_them() {
    let world = World::spawn().await;
    let (status, answer) = world
        .connect(
            "letterboxd",
            json!({"username": "letterboxd-user", "password": "pw-SECRET-lb"}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_connected(
        &world,
        "letterboxd",
        "scrobbling.letterboxd.credentials",
        &answer,
    )
    .await;
    assert_eq!(
        world.plaintext("scrobbling.letterboxd.credentials").await["password"],
        "pw-SECRET-lb"
    );
}

#[tokio::test]
async fn the_list_shows_every_provider_with_its_status() {
    let world = World::spawn().await;
    world
        .connect(
            "letterboxd",
            json!({"username": "fan", "password": "pw-SECRET"}),
        )
        .await;
    let (status, list) = world.call(Method::GET, "/api/v1/integrations", None).await;
    assert_eq!(status, 200);
    let list = list["integrations"].as_array().unwrap();
    let names: Vec<&str> = list
        .iter()
        .map(|p| p["provider"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "trakt",
            "lastfm",
            "listenbrainz",
            "simkl",
            "letterboxd",
            "anilist",
            "myanimelist",
            "kitsu",
            "spotify"
        ]
    );
    assert!(list.iter().all(|p| p["configured"] == true));
    let connected: Vec<&str> = list
        .iter()
        .filter(|p| p["connected"] == true)
        .map(|p| p["provider"].as_str().unwrap())
        .collect();
    assert_eq!(connected, ["letterboxd"]);
    assert_eq!(list[4]["username"], "fan");
    assert!(!list.iter().any(|p| p.to_string().contains(MARKER)));
}

#[tokio::test]
async fn sync_settings_are_known_keys_with_defaults() {
    let world = World::spawn().await;
    let (status, registry) = world
        .call(Method::GET, "/api/v1/settings/schema", None)
        .await;
    assert_eq!(status, 200);
    let entry = registry["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["pattern"] == "scrobbling.{service}.settings")
        .expect("sync settings entry");
    assert_eq!(entry["default"]["threshold_percent"], 90);
    let (status, _) = world
        .call(
            Method::PUT,
            "/api/v1/users/me/settings/scrobbling.trakt.settings",
            Some(json!({"value": {"auto_scrobble": false, "threshold_percent": 80}})),
        )
        .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn a_native_apps_private_use_redirect_uri_can_be_asked_for() {
    let native = "com.example.app:/integrations/callback";
    let world = World::spawn_with(|c| {
        c.provider_mut(ProviderId::Trakt).extra_redirect_uris = vec![native.to_owned()];
    })
    .await;
    let (status, body) = world
        .call(
            Method::GET,
            "/api/v1/integrations/trakt/authorize?redirect_uri=com.example.app%3A%2Fintegrations%2Fcallback",
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let url = body["authorization_url"].as_str().unwrap();
    assert_eq!(query(url)["redirect_uri"], native);
}
