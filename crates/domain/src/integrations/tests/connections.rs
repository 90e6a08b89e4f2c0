//! Connection service: authorize (state + sealed PKCE verifier), connect (state checks,
//! nothing stored on failure, one transaction), disconnect (revocation best effort).

use std::time::Duration as StdDuration;

use mockall::predicate::eq;
use secrecy::{ExposeSecret, SecretString};
use time::Duration;

use super::{NOW, Rows, clock, in_minutes, oauth_grant, user, vault};
use crate::{
    UserId,
    integrations::{
        AuthorizationRequest, AuthorizeError, ConnectError, ConnectProof, ConnectRequest,
        ConnectionService, DisconnectError, MockClock, MockOAuthStateStore, MockProviderGateway,
        PendingAuthorization, ProviderError, ProviderId, Revocation, RevocationOutcome,
        StateProblem,
    },
    ports::{MockSecretCipher, MockSettingsRepository},
};

type Service = ConnectionService<
    MockSettingsRepository,
    MockSecretCipher,
    MockProviderGateway,
    MockOAuthStateStore,
    MockClock,
>;

const TTL: StdDuration = StdDuration::from_secs(600);

fn service(rows: &Rows, gateway: MockProviderGateway, states: MockOAuthStateStore) -> Service {
    ConnectionService::new(vault(rows), gateway, states, clock(), TTL)
}

fn configured() -> MockProviderGateway {
    let mut gateway = MockProviderGateway::new();
    gateway.expect_is_configured().return_const(true);
    gateway
}

fn pending(provider: ProviderId, expires_at: time::OffsetDateTime) -> PendingAuthorization {
    PendingAuthorization {
        state: "st".into(),
        user: user(),
        provider,
        redirect_uri: "https://app.example/cb".into(),
        pkce_verifier: Some(super::seal_bytes(b"the-verifier")),
        expires_at,
    }
}

fn code_request(state: Option<&str>) -> ConnectRequest {
    ConnectRequest {
        code: Some(SecretString::from("the-code")),
        state: state.map(str::to_owned),
        ..ConnectRequest::default()
    }
}

#[tokio::test]
async fn authorize_stores_the_state_for_ten_minutes_with_the_sealed_verifier() {
    let rows = Rows::default();
    let mut gateway = configured();
    gateway
        .expect_authorization_request()
        .with(eq(ProviderId::Myanimelist), eq(None))
        .returning(|_, _| {
            Ok(AuthorizationRequest {
                url: "https://mal.example/authorize?state=st".into(),
                state: "st".into(),
                pkce_verifier: Some(SecretString::from("the-verifier")),
                redirect_uri: "https://app.example/cb".into(),
            })
        });
    let mut states = MockOAuthStateStore::new();
    states
        .expect_save()
        .withf(|p| {
            p.state == "st"
                && p.user == user()
                && p.provider == ProviderId::Myanimelist
                && p.expires_at == NOW + Duration::minutes(10)
                && p.pkce_verifier
                    .as_ref()
                    .is_some_and(|e| e.ciphertext == "the-verifier")
        })
        .times(1)
        .returning(|_| Ok(()));

    let start = service(&rows, gateway, states)
        .authorize(user(), ProviderId::Myanimelist, None)
        .await
        .unwrap();
    assert_eq!(start.state, "st");
    assert_eq!(start.expires_at, NOW + Duration::minutes(10));
}

#[tokio::test]
async fn authorize_refuses_providers_without_a_redirect_and_unconfigured_ones() {
    let rows = Rows::default();
    let err = service(&rows, configured(), MockOAuthStateStore::new())
        .authorize(user(), ProviderId::Listenbrainz, None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AuthorizeError::NotARedirectFlow(ProviderId::Listenbrainz)
    ));

    let mut gateway = MockProviderGateway::new();
    gateway.expect_is_configured().return_const(false);
    let err = service(&rows, gateway, MockOAuthStateStore::new())
        .authorize(user(), ProviderId::Trakt, None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        AuthorizeError::NotConfigured(ProviderId::Trakt)
    ));
}

#[tokio::test]
async fn connect_exchanges_the_code_with_the_verifier_and_stores_both_rows() {
    let rows = Rows::default();
    let mut gateway = configured();
    gateway
        .expect_connect()
        .withf(|p, proof| {
            *p == ProviderId::Myanimelist
                && matches!(proof, ConnectProof::AuthorizationCode { code, redirect_uri, pkce_verifier }
                    if code.expose_secret() == "the-code"
                        && redirect_uri == "https://app.example/cb"
                        && pkce_verifier.as_ref().is_some_and(|v| v.expose_secret() == "the-verifier"))
        })
        .times(1)
        .returning(|_, _| Ok(oauth_grant("acc", Some("ref"), in_minutes(60))));
    let mut states = MockOAuthStateStore::new();
    states
        .expect_take()
        .with(eq("st"), eq(user()), eq(ProviderId::Myanimelist))
        .times(1)
        .returning(|_, _, p| Ok(Some(pending(p, NOW + Duration::minutes(5)))));

    let status = service(&rows, gateway, states)
        .connect(user(), ProviderId::Myanimelist, code_request(Some("st")))
        .await
        .unwrap();
    assert!(status.connected);
    assert_eq!(status.username.as_deref(), Some("sean"));
    assert_eq!(
        rows.keys(),
        [
            "anime.myanimelist.oauth_tokens",
            "integrations.myanimelist.connection"
        ]
    );
    assert_eq!(
        rows.plaintext("anime.myanimelist.oauth_tokens")["refresh_token"],
        "ref"
    );
    assert!(
        !rows
            .metadata(ProviderId::Myanimelist)
            .to_json()
            .to_string()
            .contains("acc")
    );
}

#[tokio::test]
async fn connect_without_state_or_with_an_unknown_or_expired_one_stores_nothing() {
    let cases: [(Option<&str>, Option<PendingAuthorization>, StateProblem); 3] = [
        (None, None, StateProblem::Missing),
        (Some("st"), None, StateProblem::Invalid),
        (
            Some("st"),
            Some(pending(ProviderId::Trakt, NOW - Duration::seconds(1))),
            StateProblem::Expired,
        ),
    ];
    for (state, found, problem) in cases {
        let rows = Rows::default();
        let mut gateway = configured();
        gateway.expect_connect().never();
        let mut states = MockOAuthStateStore::new();
        states
            .expect_take()
            .returning(move |_, _, _| Ok(found.clone()));
        let err = service(&rows, gateway, states)
            .connect(user(), ProviderId::Trakt, code_request(state))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ConnectError::State(p) if p == problem),
            "{err:?}"
        );
        assert!(rows.keys().is_empty());
    }
}

#[tokio::test]
async fn connect_with_a_different_redirect_uri_is_refused() {
    let rows = Rows::default();
    let mut gateway = configured();
    gateway.expect_connect().never();
    let mut states = MockOAuthStateStore::new();
    states
        .expect_take()
        .returning(|_, _, p| Ok(Some(pending(p, NOW + Duration::minutes(5)))));
    let mut request = code_request(Some("st"));
    request.redirect_uri = Some("https://evil.example/cb".into());
    let err = service(&rows, gateway, states)
        .connect(user(), ProviderId::Trakt, request)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ConnectError::State(StateProblem::RedirectUriMismatch)
    ));
}

#[tokio::test]
async fn a_bad_body_is_refused_before_the_state_is_consumed() {
    let rows = Rows::default();
    let mut states = MockOAuthStateStore::new();
    states.expect_take().never();
    let request = ConnectRequest {
        state: Some("st".into()),
        password: Some(SecretString::from("x")),
        ..ConnectRequest::default()
    };
    let err = service(&rows, configured(), states)
        .connect(user(), ProviderId::Trakt, request)
        .await
        .unwrap_err();
    let ConnectError::Validation(errors) = err else {
        panic!("expected a validation error, got {err:?}");
    };
    let codes: Vec<_> = errors
        .errors()
        .iter()
        .map(|e| (e.field.as_str(), e.code))
        .collect();
    assert_eq!(
        codes,
        [("code", "required"), ("password", "not_applicable")]
    );
}

#[tokio::test]
async fn a_provider_failure_stores_nothing_and_names_the_provider() {
    let rows = Rows::default();
    let mut gateway = configured();
    gateway
        .expect_connect()
        .returning(|_, _| Err(ProviderError::Status { status: 500 }));
    let request = ConnectRequest {
        token: Some(SecretString::from("lb-token")),
        ..ConnectRequest::default()
    };
    let err = service(&rows, gateway, MockOAuthStateStore::new())
        .connect(user(), ProviderId::Listenbrainz, request)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ConnectError::Provider {
            provider: ProviderId::Listenbrainz,
            source: ProviderError::Status { status: 500 }
        }
    ));
    assert!(rows.keys().is_empty());
}

#[tokio::test]
async fn letterboxd_credentials_are_stored_without_a_provider_call() {
    let rows = Rows::default();
    let mut gateway = configured();
    gateway.expect_connect().never();
    let request = ConnectRequest {
        username: Some(" filmfan ".into()),
        password: Some(SecretString::from("pw-123")),
        ..ConnectRequest::default()
    };
    let status = service(&rows, gateway, MockOAuthStateStore::new())
        .connect(user(), ProviderId::Letterboxd, request)
        .await
        .unwrap();
    assert_eq!(status.username.as_deref(), Some("filmfan"));
    let stored = rows.plaintext("scrobbling.letterboxd.credentials");
    assert_eq!(stored["username"], "filmfan");
    assert_eq!(stored["password"], "pw-123");
}

#[tokio::test]
async fn an_incomplete_provider_answer_is_not_stored() {
    let rows = Rows::default();
    let mut gateway = configured();
    // Trakt's key requires a refresh token.
    gateway
        .expect_connect()
        .returning(|_, _| Ok(oauth_grant("acc", None, in_minutes(60))));
    let mut states = MockOAuthStateStore::new();
    states
        .expect_take()
        .returning(|_, _, p| Ok(Some(pending(p, NOW + Duration::minutes(5)))));
    let err = service(&rows, gateway, states)
        .connect(user(), ProviderId::Trakt, code_request(Some("st")))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ConnectError::IncompleteAnswer {
            provider: ProviderId::Trakt,
            ..
        }
    ));
    assert!(rows.keys().is_empty());
}

#[tokio::test]
async fn disconnect_revokes_then_removes_every_row_of_the_connection() {
    let rows = Rows::default();
    let grant = oauth_grant("acc", Some("ref"), in_minutes(60));
    rows.put_grant(ProviderId::Trakt, &grant);
    rows.put_metadata(&crate::integrations::ConnectionMetadata::connected(
        ProviderId::Trakt,
        &grant,
        NOW,
    ));
    let mut gateway = configured();
    gateway
        .expect_revoke()
        .withf(|p, _| *p == ProviderId::Trakt)
        .times(1)
        .returning(|_, _| Ok(Revocation::Revoked));
    let service = service(&rows, gateway, MockOAuthStateStore::new());
    let outcome = service.disconnect(user(), ProviderId::Trakt).await.unwrap();
    assert!(matches!(outcome, RevocationOutcome::Revoked));
    assert!(rows.keys().is_empty());

    let err = service
        .disconnect(user(), ProviderId::Trakt)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        DisconnectError::NotConnected(ProviderId::Trakt)
    ));
}

#[tokio::test]
async fn a_failed_revocation_does_not_keep_the_connection() {
    let rows = Rows::default();
    rows.put_grant(
        ProviderId::Kitsu,
        &oauth_grant("acc", Some("ref"), in_minutes(60)),
    );
    let mut gateway = configured();
    gateway
        .expect_revoke()
        .returning(|_, _| Err(ProviderError::Timeout));
    let outcome = service(&rows, gateway, MockOAuthStateStore::new())
        .disconnect(user(), ProviderId::Kitsu)
        .await
        .unwrap();
    assert!(matches!(outcome, RevocationOutcome::Failed(_)));
    assert!(rows.keys().is_empty());
}

#[tokio::test]
async fn disconnect_also_removes_the_legacy_music_copy() {
    let rows = Rows::default();
    let grant = crate::integrations::Grant {
        credentials: crate::integrations::Credentials::UserToken {
            user_token: SecretString::from("t"),
        },
        account: crate::integrations::RemoteAccount::default(),
    };
    rows.put_grant(ProviderId::Listenbrainz, &grant);
    let legacy = crate::settings::SettingWrite {
        key: crate::settings::SettingKey::parse("music.listenbrainz.token").unwrap(),
        value: super::seal(&grant.to_stored_json()).into(),
        description: None,
        category: None,
        data_type: crate::settings::DataType::Encrypted,
        origin: Default::default(),
    };
    rows.upsert(&legacy, crate::settings::Precondition::Any)
        .unwrap();
    let mut gateway = configured();
    // The gateway knows ListenBrainz offers no revocation.
    gateway
        .expect_revoke()
        .times(1)
        .returning(|_, _| Ok(Revocation::NotSupported));
    service(&rows, gateway, MockOAuthStateStore::new())
        .disconnect(user(), ProviderId::Listenbrainz)
        .await
        .unwrap();
    assert!(rows.keys().is_empty());
}

#[tokio::test]
async fn unreadable_credentials_are_removed_without_revocation() {
    let rows = Rows::default();
    let garbage = crate::settings::SettingWrite {
        key: crate::settings::SettingKey::parse("scrobbling.trakt.oauth_tokens").unwrap(),
        value: super::seal_bytes(b"not json").into(),
        description: None,
        category: None,
        data_type: crate::settings::DataType::Encrypted,
        origin: Default::default(),
    };
    rows.upsert(&garbage, crate::settings::Precondition::Any)
        .unwrap();
    let mut gateway = configured();
    gateway.expect_revoke().never();
    let outcome = service(&rows, gateway, MockOAuthStateStore::new())
        .disconnect(user(), ProviderId::Trakt)
        .await
        .unwrap();
    assert!(
        matches!(outcome, RevocationOutcome::Skipped(_)),
        "{outcome:?}"
    );
    assert!(rows.keys().is_empty());
}

#[tokio::test]
async fn disconnect_with_the_store_unavailable_fails_and_removes_nothing() {
    let mut repo = MockSettingsRepository::new();
    repo.expect_get()
        .returning(|_, _| Err(crate::RepositoryError::Unavailable("down".into())));
    repo.expect_delete().never();
    let vault = std::sync::Arc::new(super::vault_over(repo));
    let mut gateway = configured();
    gateway.expect_revoke().never();
    let err = ConnectionService::new(vault, gateway, MockOAuthStateStore::new(), clock(), TTL)
        .disconnect(user(), ProviderId::Trakt)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DisconnectError::Repository(crate::RepositoryError::Unavailable(_))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_authorization_expiry_beyond_the_calendar_is_an_error_not_a_panic() {
    let rows = Rows::default();
    let mut gateway = configured();
    gateway.expect_authorization_request().returning(|_, _| {
        Ok(AuthorizationRequest {
            url: "https://trakt.example/authorize?state=st".into(),
            state: "st".into(),
            pkce_verifier: None,
            redirect_uri: "https://app.example/cb".into(),
        })
    });
    let mut states = MockOAuthStateStore::new();
    states.expect_save().never();
    let ttl = StdDuration::from_secs(i64::MAX.unsigned_abs());
    let err = ConnectionService::new(vault(&rows), gateway, states, clock(), ttl)
        .authorize(user(), ProviderId::Trakt, None)
        .await
        .unwrap_err();
    assert!(matches!(err, AuthorizeError::Unknown(_)), "{err:?}");
}

#[tokio::test]
async fn list_reports_every_provider_with_configured_and_connected() {
    let rows = Rows::default();
    rows.put_grant(
        ProviderId::Spotify,
        &oauth_grant("a", Some("r"), in_minutes(60)),
    );
    let mut gateway = MockProviderGateway::new();
    gateway
        .expect_is_configured()
        .returning(|p| p == ProviderId::Spotify);
    let list = service(&rows, gateway, MockOAuthStateStore::new())
        .list(UserId::new(uuid::Uuid::from_u128(0x42)))
        .await
        .unwrap();
    assert_eq!(list.len(), 9);
    let spotify = list
        .iter()
        .find(|s| s.provider == ProviderId::Spotify)
        .unwrap();
    assert!(spotify.configured && spotify.connected);
    let trakt = list
        .iter()
        .find(|s| s.provider == ProviderId::Trakt)
        .unwrap();
    assert!(!trakt.configured && !trakt.connected);
}
