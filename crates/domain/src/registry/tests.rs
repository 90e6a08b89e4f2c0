//! Tests of the known-key registry: the shipped data file, lookups and validation.

use serde_json::json;

use super::*;

fn key(raw: &str) -> SettingKey {
    SettingKey::parse(raw).unwrap()
}

#[test]
fn builtin_registry_compiles_and_defaults_satisfy_their_schemas() {
    let registry = KeyRegistry::builtin().unwrap();
    assert!(registry.entries().count() >= 20);
}

#[test]
fn every_credential_key_of_the_seed_is_sensitive() {
    let registry = KeyRegistry::builtin().unwrap();
    for raw in [
        "scrobbling.trakt.oauth_tokens",
        "scrobbling.lastfm.session",
        "scrobbling.listenbrainz.token",
        "scrobbling.simkl.oauth_tokens",
        "scrobbling.letterboxd.credentials",
        "anime.anilist.oauth_tokens",
        "anime.myanimelist.oauth_tokens",
        "anime.kitsu.oauth_tokens",
        "music.spotify.oauth_tokens",
    ] {
        let entry = registry.lookup(&key(raw)).unwrap();
        assert!(entry.sensitive(), "{raw}");
        assert_eq!(entry.data_type(), DataType::Encrypted, "{raw}");
    }
}

#[test]
fn exact_keys_take_precedence_over_patterns() {
    let registry = KeyRegistry::builtin().unwrap();
    let trakt = registry
        .lookup(&key("scrobbling.trakt.oauth_tokens"))
        .unwrap();
    assert_eq!(trakt.spec().pattern, "scrobbling.trakt.oauth_tokens");
    let other = registry.lookup(&key("video.plex.oauth_tokens")).unwrap();
    assert_eq!(other.spec().pattern, "{area}.{service}.oauth_tokens");
}

#[test]
fn patterns_match_exactly_one_segment_per_placeholder() {
    let registry = KeyRegistry::builtin().unwrap();
    assert!(registry.lookup(&key("scrobbling.trakt.settings")).is_some());
    assert!(
        registry
            .lookup(&key("scrobbling.trakt.extra.settings"))
            .is_none()
    );
    assert!(registry.lookup(&key("ui.custom.thing")).is_none());
}

#[test]
fn known_value_is_validated_against_its_schema() {
    let registry = KeyRegistry::builtin().unwrap();
    let audio = registry.lookup(&key("playback.audio.defaults")).unwrap();
    assert!(
        audio
            .validate(&json!({"volume": 80, "normalize": true}))
            .is_ok()
    );
    let errors = audio
        .validate(&json!({"volume": 101, "extra": 1}))
        .unwrap_err();
    let fields: Vec<_> = errors.errors().iter().map(|e| e.field.as_str()).collect();
    assert!(fields.contains(&"value.volume"), "{fields:?}");
    assert!(errors.errors().iter().all(|e| e.code == "schema_violation"));
}

#[test]
fn schema_errors_of_sensitive_keys_do_not_echo_the_value() {
    let registry = KeyRegistry::builtin().unwrap();
    let trakt = registry
        .lookup(&key("scrobbling.trakt.oauth_tokens"))
        .unwrap();
    let errors = trakt
        .validate(&json!({"access_token": 12345678, "refresh_token": "super-secret-refresh"}))
        .unwrap_err();
    for e in errors.errors() {
        assert!(!e.message.contains("12345678"), "{}", e.message);
        assert!(!e.message.contains("super-secret-refresh"), "{}", e.message);
    }
}

#[test]
fn formats_are_validated() {
    let registry = KeyRegistry::builtin().unwrap();
    let spotify = registry.lookup(&key("music.spotify.oauth_tokens")).unwrap();
    let bad = json!({"access_token": "a", "refresh_token": "r", "expires_at": "tomorrow"});
    assert!(spotify.validate(&bad).is_err());
    let good =
        json!({"access_token": "a", "refresh_token": "r", "expires_at": "2026-03-03T10:00:00Z"});
    assert!(spotify.validate(&good).is_ok());
}

#[test]
fn broken_registries_are_refused() {
    let bad_default = r#"[{"pattern":"a.b","category":null,"data_type":"number","sensitive":false,
        "description":"","default":"x","schema":{"type":"number"}}]"#;
    assert!(matches!(
        KeyRegistry::from_json(bad_default),
        Err(RegistryError::Default(_))
    ));
    let plain_secret = r#"[{"pattern":"a.b","category":null,"data_type":"string","sensitive":true,
        "description":"","schema":{}}]"#;
    assert!(matches!(
        KeyRegistry::from_json(plain_secret),
        Err(RegistryError::Sensitivity(_))
    ));
    let bad_pattern = r#"[{"pattern":"A..b","category":null,"data_type":"string","sensitive":false,
        "description":"","schema":{}}]"#;
    assert!(matches!(
        KeyRegistry::from_json(bad_pattern),
        Err(RegistryError::Pattern(_))
    ));
}
