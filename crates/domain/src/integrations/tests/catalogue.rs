//! The catalogue agrees with the registry: every storage key is a sensitive known key, the
//! stored JSON of every provider satisfies its key's schema, and the metadata key is clear.

use secrecy::SecretString;
use serde_json::json;

use super::{NOW, in_minutes, oauth_grant};
use crate::{
    integrations::{
        CATALOGUE, ConnectionMetadata, Credentials, Grant, ProviderId, RemoteAccount, RemoteUserId,
        metadata_key,
    },
    registry::KeyRegistry,
    settings::{DataType, SettingKey},
};

fn registry() -> KeyRegistry {
    KeyRegistry::builtin().unwrap()
}

/// A grant as each provider's adapter produces it.
fn typical_grant(provider: ProviderId) -> Grant {
    let account = |id: Option<RemoteUserId>, username: &str| RemoteAccount {
        id,
        username: Some(username.into()),
        ..RemoteAccount::default()
    };
    match provider {
        ProviderId::Trakt => oauth_grant("a", Some("r"), in_minutes(60)),
        ProviderId::Lastfm => Grant {
            credentials: Credentials::LastfmSession {
                session_key: SecretString::from("sk"),
            },
            account: account(None, "rj"),
        },
        ProviderId::Listenbrainz => Grant {
            credentials: Credentials::UserToken {
                user_token: SecretString::from("t"),
            },
            account: account(None, "lb"),
        },
        ProviderId::Letterboxd => Grant {
            credentials: Credentials::Password {
                password: SecretString::from("p"),
            },
            account: account(None, "fan"),
        },
        ProviderId::Kitsu => {
            let mut grant = oauth_grant("a", Some("r"), in_minutes(60));
            grant.account = RemoteAccount {
                id: Some(RemoteUserId::Text("1".into())),
                username: Some("k".into()),
                slug: None,
                email: Some("k@example.com".into()),
            };
            grant
        }
        ProviderId::Simkl => {
            let mut grant = oauth_grant("a", None, None);
            grant.account = account(Some(RemoteUserId::Number(7)), "s");
            grant
        }
        ProviderId::Anilist => {
            let mut grant = oauth_grant("a", None, in_minutes(525_600));
            grant.account = account(Some(RemoteUserId::Number(7)), "ani");
            grant
        }
        ProviderId::Myanimelist | ProviderId::Spotify => {
            oauth_grant("a", Some("r"), in_minutes(60))
        }
    }
}

#[test]
fn the_catalogue_is_in_id_order_and_slugs_round_trip() {
    for (spec, id) in CATALOGUE.iter().zip(ProviderId::ALL) {
        assert_eq!(spec.id, id);
        assert_eq!(ProviderId::parse(spec.slug), Some(id));
        assert_eq!(serde_json::to_value(id).unwrap(), json!(spec.slug));
    }
    assert_eq!(ProviderId::parse("musicbrainz"), None);
}

#[test]
fn every_storage_and_legacy_key_is_a_sensitive_known_key() {
    let registry = registry();
    for spec in &CATALOGUE {
        for key in std::iter::once(spec.storage_key).chain(spec.legacy_keys.iter().copied()) {
            let entry = registry
                .lookup(&SettingKey::parse(key).unwrap())
                .unwrap_or_else(|| panic!("{key} is not a known key"));
            assert!(entry.sensitive(), "{key} must be sensitive");
            assert_eq!(entry.data_type(), DataType::Encrypted);
        }
    }
}

#[test]
fn every_sync_settings_key_is_known_with_a_default() {
    let registry = registry();
    for key in CATALOGUE.iter().filter_map(|s| s.settings_key) {
        let entry = registry.lookup(&SettingKey::parse(key).unwrap()).unwrap();
        assert!(entry.spec().default.is_some(), "{key}");
        assert!(!entry.sensitive());
    }
}

#[test]
fn what_each_provider_stores_satisfies_its_key_schema() {
    let registry = registry();
    for provider in ProviderId::ALL {
        let grant = typical_grant(provider);
        let key = SettingKey::parse(provider.spec().storage_key).unwrap();
        let json = grant.to_stored_json();
        let entry = registry.lookup(&key).unwrap();
        // The vault writes without a category: the registry's files it where listings find it.
        assert_eq!(
            entry.category().as_ref().map(|c| c.as_str()),
            Some("integrations")
        );
        entry
            .validate(&json)
            .unwrap_or_else(|e| panic!("{provider}: {e}"));
        let back = Grant::from_stored_json(provider, &json).unwrap();
        assert_eq!(back.account, grant.account, "{provider}");
        assert_eq!(
            back.credentials.expires_at(),
            grant.credentials.expires_at()
        );
    }
}

#[test]
fn the_metadata_key_is_known_clear_and_its_schema_accepts_what_is_written() {
    let registry = registry();
    for provider in ProviderId::ALL {
        let key = SettingKey::parse(&metadata_key(provider)).unwrap();
        let entry = registry.lookup(&key).unwrap();
        assert!(!entry.sensitive());
        assert_eq!(entry.data_type(), DataType::Json);
        assert_eq!(
            entry.category().as_ref().map(|c| c.as_str()),
            Some("integrations")
        );
        let metadata = ConnectionMetadata::connected(provider, &typical_grant(provider), NOW);
        entry
            .validate(&metadata.to_json())
            .unwrap_or_else(|e| panic!("{provider}: {e}"));
    }
}

#[test]
fn stored_json_missing_its_secret_is_malformed() {
    let err = Grant::from_stored_json(ProviderId::Trakt, &json!({"refresh_token": "r"}));
    assert!(err.is_err());
    let err = Grant::from_stored_json(ProviderId::Lastfm, &json!({"session_key": 5}));
    assert!(err.is_err());
}

#[test]
fn credentials_never_print_their_secrets() {
    let grant = typical_grant(ProviderId::Trakt);
    let printed = format!("{grant:?}");
    assert!(
        !printed.contains("\"a\"") && !printed.contains("\"r\""),
        "{printed}"
    );
}
