//! Settings service: validation, encryption path, preconditions, bulk and audit.

use std::sync::Arc;

use mockall::predicate::eq;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::{admin, created, stored, user};
use crate::{
    RepositoryError,
    audit::AuditAction,
    history::{ChangeActor, ChangeOp, ChangeOrigin, HistoryEntry},
    ports::{
        MockAuditLog, MockHistoryRepository, MockSecretCipher, MockSettingsRepository,
        SettingDeleteError, SettingWriteError,
    },
    registry::KeyRegistry,
    secrets::{CipherError, Envelope, SecretValue},
    services::{
        DeleteSettingError, GetSecretError, NotRestorable, SetSettingError, SettingInput,
        SettingsService, WritePipeline,
    },
    settings::{
        AllowedCategories, DataType, Limits, Page, Precondition, QuotaExceeded, SettingKey,
        StoredValue,
    },
};

type Service = SettingsService<MockSettingsRepository, MockSecretCipher, MockAuditLog>;

/// The service over mocks with the default limits and categories. A port the test does not
/// hand over expects no call, so a test shows only the ports it is about.
#[derive(Default)]
struct TestService {
    repo: MockSettingsRepository,
    cipher: MockSecretCipher,
    audit: MockAuditLog,
}

impl TestService {
    fn repo(self, repo: MockSettingsRepository) -> Self {
        Self { repo, ..self }
    }

    fn cipher(self, cipher: MockSecretCipher) -> Self {
        Self { cipher, ..self }
    }

    fn audit(self, audit: MockAuditLog) -> Self {
        Self { audit, ..self }
    }

    fn build(self) -> Service {
        SettingsService::new(
            self.repo,
            self.audit,
            WritePipeline::new(
                self.cipher,
                Arc::new(KeyRegistry::builtin().unwrap()),
                Limits::default(),
                AllowedCategories::default(),
            ),
        )
    }
}

/// A service that must refuse before reaching any port.
fn untouched() -> Service {
    TestService::default().build()
}

fn raw(value: &Value) -> Option<Box<serde_json::value::RawValue>> {
    (!value.is_null()).then(|| serde_json::value::to_raw_value(value).unwrap())
}

fn input(key: &str, value: Value) -> SettingInput {
    SettingInput {
        key: key.into(),
        value: raw(&value),
        ..SettingInput::default()
    }
}

fn raw_input(key: &str, text: &str) -> SettingInput {
    SettingInput {
        key: key.into(),
        value: Some(serde_json::value::RawValue::from_string(text.to_owned()).unwrap()),
        ..SettingInput::default()
    }
}

fn envelope(kid: &str) -> Envelope {
    Envelope {
        v: 1,
        alg: "A256GCM-HKDF-SHA256".into(),
        kid: kid.into(),
        salt: "s".into(),
        nonce: "n".into(),
        ciphertext: "c".into(),
    }
}

fn codes(err: SetSettingError) -> Vec<(String, &'static str)> {
    match err {
        SetSettingError::Validation(e) => e
            .errors()
            .iter()
            .map(|e| (e.field.clone(), e.code))
            .collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[tokio::test]
async fn set_infers_json_type_and_stores_value() {
    let mut repo = MockSettingsRepository::new();
    repo.expect_upsert()
        .withf(|_, w, p, max| {
            w.data_type == DataType::Json
                && w.value == json!({"a": 1})
                && *p == Precondition::Any
                && *max == Limits::default().quota()
        })
        .times(1)
        .returning(|_, w, _, _| Ok(created(w)));
    let svc = TestService::default().repo(repo).build();
    let (view, was_created) = svc
        .set_setting(
            user(),
            input("ui.custom.panel", json!({"a": 1})),
            Precondition::Any,
        )
        .await
        .unwrap();
    assert!(was_created);
    assert_eq!(view.data_type, DataType::Json);
}

#[tokio::test]
async fn set_reports_every_problem_and_writes_nothing() {
    let svc = untouched();
    let bad = SettingInput {
        key: "Bad Key".into(),
        value: raw(&json!(1)),
        description: Some("d".repeat(1025)),
        category: Some("games".into()),
        data_type: Some("text".into()),
    };
    let mut found = codes(
        svc.set_setting(user(), bad, Precondition::Any)
            .await
            .unwrap_err(),
    );
    found.sort();
    assert_eq!(
        found,
        vec![
            ("category".to_owned(), "unknown_category"),
            ("data_type".to_owned(), "unknown_data_type"),
            ("description".to_owned(), "too_long"),
            ("key".to_owned(), "invalid_characters"),
        ]
    );
}

#[tokio::test]
async fn set_rejects_value_not_matching_declared_type() {
    let svc = untouched();
    let mut wrong = input("ui.font.size", json!("12"));
    wrong.data_type = Some("number".into());
    assert_eq!(
        codes(
            svc.set_setting(user(), wrong, Precondition::Any)
                .await
                .unwrap_err()
        ),
        vec![("value".to_owned(), "type_mismatch")]
    );
}

#[tokio::test]
async fn set_rejects_null_value() {
    let svc = untouched();
    assert_eq!(
        codes(
            svc.set_setting(user(), input("ui.x", Value::Null), Precondition::Any)
                .await
                .unwrap_err()
        ),
        vec![("value".to_owned(), "required")]
    );
}

#[tokio::test]
async fn set_rejects_value_over_size_limit() {
    let svc = untouched();
    let big = json!("x".repeat(101 * 1024));
    assert_eq!(
        codes(
            svc.set_setting(user(), input("ui.big", big), Precondition::Any)
                .await
                .unwrap_err()
        ),
        vec![("value".to_owned(), "too_large")]
    );
}

#[tokio::test]
async fn known_key_value_is_checked_against_its_schema() {
    let svc = untouched();
    let err = svc
        .set_setting(
            user(),
            input("playback.audio.defaults", json!({"volume": 300})),
            Precondition::Any,
        )
        .await
        .unwrap_err();
    assert_eq!(
        codes(err),
        vec![("value.volume".to_owned(), "schema_violation")]
    );
}

#[tokio::test]
async fn known_key_refuses_other_data_type_and_category() {
    let svc = untouched();
    let mut wrong = input("playback.audio.defaults", json!({"volume": 3}));
    wrong.data_type = Some("string".into());
    wrong.category = Some("ui".into());
    let mut found = codes(
        svc.set_setting(user(), wrong, Precondition::Any)
            .await
            .unwrap_err(),
    );
    found.sort();
    assert_eq!(
        found,
        vec![
            ("category".to_owned(), "category_mismatch"),
            ("data_type".to_owned(), "data_type_mismatch"),
        ]
    );
}

#[tokio::test]
async fn known_key_takes_its_registered_category() {
    let mut repo = MockSettingsRepository::new();
    repo.expect_upsert()
        .withf(|_, w, _, _| w.category.as_ref().map(|c| c.as_str()) == Some("playback"))
        .returning(|_, w, _, _| Ok(created(w)));
    let svc = TestService::default().repo(repo).build();
    svc.set_setting(
        user(),
        input("playback.audio.defaults", json!({"volume": 3})),
        Precondition::Any,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn sensitive_key_is_sealed_for_its_cell_and_plaintext_never_reaches_the_store() {
    let token = json!({"access_token": "plain-access", "refresh_token": "plain-refresh"});
    let expected_plaintext = token.to_string().into_bytes();
    let mut cipher = MockSecretCipher::new();
    cipher
        .expect_seal()
        .withf(move |u, k, p| {
            *u == user()
                && k.as_str() == "sync.plex.oauth_tokens"
                && p == expected_plaintext.as_slice()
        })
        .times(1)
        .returning(|_, _, _| Ok(envelope("k1")));
    let mut repo = MockSettingsRepository::new();
    repo.expect_upsert()
        .withf(|_, w, _, _| {
            let stored = w.value.to_json().to_string();
            w.data_type == DataType::Encrypted
                && w.value == StoredValue::Sealed(envelope("k1"))
                && !stored.contains("plain-access")
                && !stored.contains("plain-refresh")
        })
        .times(1)
        .returning(|_, w, _, _| Ok(created(w)));
    let svc = TestService::default().repo(repo).cipher(cipher).build();
    let (view, _) = svc
        .set_setting(
            user(),
            input("sync.plex.oauth_tokens", token),
            Precondition::Any,
        )
        .await
        .unwrap();
    assert!(view.redacted);
    assert_eq!(view.value, Value::Null);
}

#[tokio::test]
async fn explicit_encrypted_type_seals_a_dynamic_key() {
    let mut cipher = MockSecretCipher::new();
    cipher
        .expect_seal()
        .times(1)
        .returning(|_, _, _| Ok(envelope("k1")));
    let mut repo = MockSettingsRepository::new();
    repo.expect_upsert()
        .withf(|_, w, _, _| w.value == StoredValue::Sealed(envelope("k1")))
        .returning(|_, w, _, _| Ok(created(w)));
    let svc = TestService::default().repo(repo).cipher(cipher).build();
    let mut secret = input("integrations.plex.token", json!("plex-secret"));
    secret.data_type = Some("encrypted".into());
    svc.set_setting(user(), secret, Precondition::Any)
        .await
        .unwrap();
}

#[tokio::test]
async fn set_secret_seals_whatever_the_key() {
    let mut cipher = MockSecretCipher::new();
    cipher
        .expect_seal()
        .withf(|_, k, p| k.as_str() == "integrations.plex.token" && p == br#""abc""#)
        .times(1)
        .returning(|_, _, _| Ok(envelope("k1")));
    let mut repo = MockSettingsRepository::new();
    repo.expect_upsert().returning(|_, w, _, _| Ok(created(w)));
    let svc = TestService::default().repo(repo).cipher(cipher).build();
    let (view, _) = svc
        .set_secret(
            user(),
            "integrations.plex.token",
            &SecretValue::from_json(&json!("abc")),
            None,
        )
        .await
        .unwrap();
    assert!(view.redacted);
}

#[tokio::test]
async fn cipher_failure_is_surfaced_without_writing() {
    let mut cipher = MockSecretCipher::new();
    cipher
        .expect_seal()
        .returning(|_, _, _| Err(CipherError::Internal("no randomness".into())));
    let svc = TestService::default().cipher(cipher).build();
    let mut secret = input("integrations.plex.token", json!("x"));
    secret.data_type = Some("encrypted".into());
    let err = svc
        .set_setting(user(), secret, Precondition::Any)
        .await
        .unwrap_err();
    assert!(matches!(err, SetSettingError::Cipher(_)));
}

#[tokio::test]
async fn version_conflict_is_surfaced() {
    let mut repo = MockSettingsRepository::new();
    repo.expect_upsert()
        .withf(|_, _, p, _| *p == Precondition::Version(2))
        .returning(|_, _, _, _| Err(SettingWriteError::VersionConflict { current: Some(3) }));
    let svc = TestService::default().repo(repo).build();
    let err = svc
        .set_setting(user(), input("ui.x", json!(1)), Precondition::Version(2))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        SetSettingError::VersionConflict { current: Some(3) }
    ));
}

#[tokio::test]
async fn quota_limit_is_passed_to_the_store_and_surfaced() {
    let mut repo = MockSettingsRepository::new();
    repo.expect_upsert()
        .withf(|_, _, _, quota| quota.max_settings == 1000)
        .returning(|_, _, _, _| {
            Err(SettingWriteError::QuotaExceeded(QuotaExceeded::Settings {
                limit: 1000,
            }))
        });
    let svc = TestService::default().repo(repo).build();
    let err = svc
        .set_setting(user(), input("ui.x", json!(1)), Precondition::Any)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        SetSettingError::QuotaExceeded(QuotaExceeded::Settings { limit: 1000 })
    ));
}

#[tokio::test]
async fn byte_quota_is_passed_to_the_store_and_surfaced() {
    let mut repo = MockSettingsRepository::new();
    repo.expect_upsert_many()
        .withf(|_, _, quota| quota.max_bytes == 5 * 1024 * 1024)
        .returning(|_, _, quota| {
            Err(SettingWriteError::QuotaExceeded(QuotaExceeded::Bytes {
                limit: quota.max_bytes,
            }))
        });
    let svc = TestService::default().repo(repo).build();
    let err = svc
        .set_settings(user(), vec![input("ui.x", json!(1))])
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        SetSettingError::QuotaExceeded(QuotaExceeded::Bytes { limit: 5_242_880 })
    ));
}

#[tokio::test]
async fn bulk_reports_every_bad_item_by_index_and_writes_nothing() {
    let svc = untouched();
    let items = vec![
        input("ui.ok", json!(true)),
        input("ui..bad", json!(1)),
        input("ui.ok2", Value::Null),
        input("ui.ok", json!(false)),
    ];
    let mut found = codes(svc.set_settings(user(), items).await.unwrap_err());
    found.sort();
    assert_eq!(
        found,
        vec![
            ("settings[1].key".to_owned(), "empty_segment"),
            ("settings[2].value".to_owned(), "required"),
            ("settings[3].key".to_owned(), "duplicate_key"),
        ]
    );
}

#[tokio::test]
async fn bulk_size_limit_is_inclusive() {
    let mut repo = MockSettingsRepository::new();
    repo.expect_upsert_many()
        .withf(|_, writes, _| writes.len() == 100)
        .times(1)
        .returning(|_, writes, _| Ok(writes.iter().map(created).collect()));
    let svc = TestService::default().repo(repo).build();
    let items: Vec<_> = (0..100)
        .map(|i| input(&format!("ui.k{i}"), json!(i)))
        .collect();
    assert_eq!(svc.set_settings(user(), items).await.unwrap().len(), 100);
    let too_many: Vec<_> = (0..101)
        .map(|i| input(&format!("ui.k{i}"), json!(i)))
        .collect();
    assert_eq!(
        codes(svc.set_settings(user(), too_many).await.unwrap_err()),
        vec![("settings".to_owned(), "too_many")]
    );
}

#[tokio::test]
async fn get_redacts_encrypted_values() {
    let mut repo = MockSettingsRepository::new();
    repo.expect_get().returning(|_, k| {
        let write = crate::settings::SettingWrite {
            key: k.clone(),
            value: envelope("k1").into(),
            description: None,
            category: None,
            data_type: DataType::Encrypted,
            origin: Default::default(),
        };
        Ok(Some(stored(&write, 1)))
    });
    let svc = TestService::default().repo(repo).build();
    let view = svc
        .get_setting(user(), "integrations.plex.token")
        .await
        .unwrap();
    assert!(view.redacted);
    assert_eq!(view.value, Value::Null);
}

#[tokio::test]
async fn unknown_category_filter_is_rejected() {
    let svc = untouched();
    assert!(
        svc.list_settings(user(), Some("nope"), None, None)
            .await
            .is_err()
    );
}

fn secret_repo() -> MockSettingsRepository {
    let mut repo = MockSettingsRepository::new();
    repo.expect_get().returning(|_, k| {
        let write = crate::settings::SettingWrite {
            key: k.clone(),
            value: envelope("k1").into(),
            description: None,
            category: None,
            data_type: DataType::Encrypted,
            origin: Default::default(),
        };
        Ok(Some(stored(&write, 1)))
    });
    repo
}

#[tokio::test]
async fn get_secret_audits_then_decrypts_for_the_right_cell() {
    let mut audit = MockAuditLog::new();
    audit
        .expect_record()
        .withf(|e| {
            e.action == AuditAction::SecretRead
                && e.subject == user()
                && e.key.as_ref().map(SettingKey::as_str) == Some("integrations.plex.token")
        })
        .times(1)
        .returning(|_| Ok(()));
    let mut cipher = MockSecretCipher::new();
    cipher
        .expect_open()
        .withf(|u, k, e| *u == user() && k.as_str() == "integrations.plex.token" && e.kid == "k1")
        .times(1)
        .returning(|_, _, _| Ok(Zeroizing::new(br#""plain""#.to_vec())));
    let svc = TestService::default()
        .repo(secret_repo())
        .cipher(cipher)
        .audit(audit)
        .build();
    let secret = svc
        .get_secret(&admin(), user(), "integrations.plex.token")
        .await
        .unwrap();
    assert_eq!(secret.expose_json().unwrap(), json!("plain"));
    assert_eq!(format!("{secret:?}"), "[REDACTED]");
}

#[tokio::test]
async fn get_secret_discloses_nothing_when_audit_fails() {
    let mut audit = MockAuditLog::new();
    audit
        .expect_record()
        .returning(|_| Err(RepositoryError::Unavailable("down".into())));
    // No expectation on the cipher: decrypting would fail the test.
    let svc = TestService::default()
        .repo(secret_repo())
        .audit(audit)
        .build();
    let err = svc
        .get_secret(&admin(), user(), "integrations.plex.token")
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        GetSecretError::Repository(RepositoryError::Unavailable(_))
    ));
}

#[tokio::test]
async fn get_secret_of_a_plain_setting_is_refused() {
    let mut repo = MockSettingsRepository::new();
    repo.expect_get().returning(|_, k| {
        let write = crate::settings::SettingWrite {
            key: k.clone(),
            value: json!(true).into(),
            description: None,
            category: None,
            data_type: DataType::Boolean,
            origin: Default::default(),
        };
        Ok(Some(stored(&write, 1)))
    });
    let svc = TestService::default().repo(repo).build();
    let err = svc
        .get_secret(&admin(), user(), "ui.flag")
        .await
        .unwrap_err();
    assert!(matches!(err, GetSecretError::NotASecret));
}

#[tokio::test]
async fn delete_maps_store_outcomes() {
    let mut repo = MockSettingsRepository::new();
    repo.expect_delete()
        .with(
            eq(user()),
            eq(SettingKey::parse("ui.a").unwrap()),
            eq(Precondition::Version(1)),
            eq(ChangeOrigin::User),
        )
        .returning(|_, _, _, _| Err(SettingDeleteError::VersionConflict { current: 2 }));
    repo.expect_delete()
        .with(
            eq(user()),
            eq(SettingKey::parse("ui.b").unwrap()),
            eq(Precondition::Any),
            eq(ChangeOrigin::User),
        )
        .returning(|_, _, _, _| Err(SettingDeleteError::NotFound));
    let svc = TestService::default().repo(repo).build();
    assert!(matches!(
        svc.delete_setting(user(), "ui.a", Precondition::Version(1))
            .await,
        Err(DeleteSettingError::VersionConflict { current: Some(2) })
    ));
    assert!(matches!(
        svc.delete_setting(user(), "ui.b", Precondition::Any).await,
        Err(DeleteSettingError::NotFound)
    ));
}

#[tokio::test]
async fn admin_listing_is_audited_for_the_subject() {
    let mut audit = MockAuditLog::new();
    audit
        .expect_record()
        .withf(|e| e.action == AuditAction::AdminRead && e.subject == user() && e.actor == admin())
        .times(1)
        .returning(|_| Ok(()));
    let mut repo = MockSettingsRepository::new();
    repo.expect_list()
        .withf(|u, c, _| *u == user() && c.is_none())
        .returning(|_, _, _| Ok(vec![]));
    let svc = TestService::default().repo(repo).audit(audit).build();
    assert!(
        svc.list_settings_as_admin(&admin(), user(), None, None, None)
            .await
            .unwrap()
            .settings
            .is_empty()
    );
}

#[test]
fn debug_of_an_input_never_shows_the_value() {
    let secret = input("a.b", json!({"password": "hunter2"}));
    let printed = format!("{secret:?}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("a.b"));
}

fn stored_keys(keys: &[&str]) -> Vec<crate::settings::Setting> {
    keys.iter()
        .map(|k| {
            let write = crate::settings::SettingWrite {
                key: SettingKey::parse(k).unwrap(),
                value: json!(1).into(),
                description: None,
                category: None,
                data_type: DataType::Number,
                origin: Default::default(),
            };
            stored(&write, 1)
        })
        .collect()
}

#[tokio::test]
async fn a_full_page_names_its_last_key_as_the_next_start() {
    let mut repo = MockSettingsRepository::new();
    repo.expect_list()
        .withf(|_, _, page| {
            *page
                == Page {
                    after: Some(SettingKey::parse("ui.a").unwrap()),
                    limit: 3,
                }
        })
        .returning(|_, _, _| Ok(stored_keys(&["ui.b", "ui.c", "ui.d"])));
    let svc = TestService::default().repo(repo).build();
    let page = svc
        .list_settings(user(), None, Some("ui.a"), Some(2))
        .await
        .unwrap();
    let keys: Vec<_> = page.settings.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["ui.b", "ui.c"]);
    assert_eq!(page.next_after, Some(SettingKey::parse("ui.c").unwrap()));
}

#[tokio::test]
async fn the_last_page_has_no_next_start_and_no_limit_means_the_maximum() {
    let mut repo = MockSettingsRepository::new();
    repo.expect_list()
        .withf(|_, _, page| *page == Page::first(Page::MAX_LIMIT + 1))
        .returning(|_, _, _| Ok(stored_keys(&["ui.a", "ui.b"])));
    let svc = TestService::default().repo(repo).build();
    let page = svc.list_settings(user(), None, None, None).await.unwrap();
    assert_eq!(page.settings.len(), 2);
    assert_eq!(page.next_after, None);
}

#[tokio::test]
async fn page_limits_out_of_range_and_bad_cursors_are_refused() {
    let svc = untouched();
    for (after, limit, code) in [
        (None, Some(0), "out_of_range"),
        (None, Some(1001), "out_of_range"),
        (Some("NOT A KEY"), None, "invalid_cursor"),
    ] {
        match svc.list_settings(user(), None, after, limit).await {
            Err(crate::services::ListSettingsError::Validation(e)) => {
                assert_eq!(e.errors()[0].code, code);
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn integration_managed_keys_cannot_be_written_or_deleted() {
    // No expectation on the store: any call would fail the test.
    let svc = untouched();
    let token = json!({"access_token": "forged"});
    for key in [
        "scrobbling.trakt.oauth_tokens",
        "music.lastfm.session",
        "integrations.trakt.connection",
    ] {
        assert!(
            matches!(
                svc.set_setting(user(), input(key, token.clone()), Precondition::Any)
                    .await,
                Err(SetSettingError::ManagedByIntegration { .. })
            ),
            "{key}"
        );
        assert!(
            matches!(
                svc.delete_setting(user(), key, Precondition::Any).await,
                Err(DeleteSettingError::ManagedByIntegration { .. })
            ),
            "{key}"
        );
    }
    let bulk = vec![
        input("ui.ok", json!(1)),
        input("scrobbling.listenbrainz.token", json!({"user_token": "t"})),
    ];
    assert!(matches!(
        svc.set_settings(user(), bulk).await,
        Err(SetSettingError::ManagedByIntegration { provider, .. })
            if provider == crate::integrations::ProviderId::Listenbrainz
    ));
}

#[tokio::test]
async fn a_provider_sync_settings_key_stays_writable() {
    let mut repo = MockSettingsRepository::new();
    repo.expect_upsert()
        .times(1)
        .returning(|_, w, _, _| Ok(created(w)));
    let svc = TestService::default().repo(repo).build();
    svc.set_setting(
        user(),
        input("scrobbling.trakt.settings", json!({"auto_scrobble": false})),
        Precondition::Any,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn whitespace_between_tokens_does_not_count_towards_the_value_size() {
    let mut repo = MockSettingsRepository::new();
    repo.expect_upsert()
        .withf(|_, w, _, _| w.value == json!(["x", "y"]))
        .times(1)
        .returning(|_, w, _, _| Ok(created(w)));
    let svc = SettingsService::new(
        repo,
        MockAuditLog::new(),
        WritePipeline::new(
            MockSecretCipher::new(),
            Arc::new(KeyRegistry::builtin().unwrap()),
            Limits {
                max_value_bytes: 9,
                ..Limits::default()
            },
            AllowedCategories::default(),
        ),
    );
    // `["x","y"]` is 9 bytes; the spaces around it are not counted.
    svc.set_setting(
        user(),
        raw_input("ui.pair", "[ \"x\" ,\n  \"y\" ]"),
        Precondition::Any,
    )
    .await
    .unwrap();
    assert_eq!(
        codes(
            svc.set_setting(
                user(),
                raw_input("ui.pair", r#"["x","yz"]"#),
                Precondition::Any
            )
            .await
            .unwrap_err()
        ),
        vec![("value".to_owned(), "too_large")]
    );
}

/// A history that keeps one entry of `ui.a` at version 7.
fn history_with(entry: HistoryEntry) -> Arc<MockHistoryRepository> {
    let mut history = MockHistoryRepository::new();
    history
        .expect_entry()
        .withf(|_, target, version| {
            target.key.as_ref().map(SettingKey::as_str) == Some("ui.a") && *version == 7
        })
        .returning(move |_, _, _| Ok(Some(entry.clone())));
    history.expect_entry().returning(|_, _, _| Ok(None));
    Arc::new(history)
}

fn kept(op: ChangeOp, value: Option<Value>, data_type: DataType) -> HistoryEntry {
    HistoryEntry {
        version: 7,
        op,
        actor: ChangeActor::User,
        value,
        data_type: Some(data_type),
        category: None,
        description: None,
        changed_at: time::OffsetDateTime::UNIX_EPOCH,
    }
}

#[tokio::test]
async fn a_restore_writes_the_kept_value_as_a_restore_under_the_precondition() {
    let mut repo = MockSettingsRepository::new();
    repo.expect_upsert()
        .withf(|_, write, expected, _| {
            write.key.as_str() == "ui.a"
                && write.value.plain() == Some(&json!({"columns": 3}))
                && write.origin == ChangeOrigin::Restore
                && *expected == Precondition::Version(9)
        })
        .times(1)
        .returning(|_, write, _, _| Ok(created(write)));
    let svc = TestService::default()
        .repo(repo)
        .build()
        .with_history(history_with(kept(
            ChangeOp::Updated,
            Some(json!({"columns": 3})),
            DataType::Json,
        )));

    let (setting, created) = svc
        .restore(user(), "ui.a", 7, Precondition::Version(9))
        .await
        .unwrap();
    assert!(created);
    assert_eq!(setting.value, json!({"columns": 3}));
}

#[tokio::test]
async fn a_secret_a_deletion_and_a_version_not_kept_are_not_restored() {
    for (entry, version, expected) in [
        (
            kept(ChangeOp::Updated, None, DataType::Encrypted),
            7,
            "secret",
        ),
        (
            kept(ChangeOp::Deleted, None, DataType::String),
            7,
            "deletion",
        ),
        (
            kept(ChangeOp::Created, Some(json!(1)), DataType::Number),
            8,
            "not kept",
        ),
    ] {
        // No write is expected: the mock repository refuses any.
        let svc = TestService::default()
            .build()
            .with_history(history_with(entry));
        let error = svc
            .restore(user(), "ui.a", version, Precondition::Any)
            .await
            .unwrap_err();
        let reason = match error {
            SetSettingError::NotRestorable(NotRestorable::Secret) => "secret",
            SetSettingError::NotRestorable(NotRestorable::Deletion { .. }) => "deletion",
            SetSettingError::NotRestorable(NotRestorable::VersionNotFound { .. }) => "not kept",
            other => panic!("{other:?}"),
        };
        assert_eq!(reason, expected);
    }
}
