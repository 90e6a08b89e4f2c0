//! Token service: skew, refresh and rotation, single-flight, version conflicts,
//! `invalid_grant`, audit.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration as StdDuration,
};

use secrecy::{ExposeSecret, SecretString};

use super::{
    NOW, Rows, clock, in_minutes, oauth_grant, repository, repository_with, service_actor, user,
    vault, vault_over,
};
use crate::{
    RepositoryError,
    audit::AuditAction,
    integrations::{
        ConnectionMetadata, MockClock, MockProviderGateway, ProviderError, ProviderId, TokenError,
        TokenService, TokenSet,
    },
    ports::{MockAuditLog, MockSecretCipher, MockSettingsRepository, SettingWriteError},
};

type Service = TokenService<
    MockSettingsRepository,
    MockSecretCipher,
    MockAuditLog,
    MockProviderGateway,
    MockClock,
>;

const SKEW: StdDuration = StdDuration::from_secs(300);

fn audit_ok() -> MockAuditLog {
    let mut audit = MockAuditLog::new();
    audit.expect_record().returning(|_| Ok(()));
    audit
}

fn service(rows: &Rows, audit: MockAuditLog, gateway: MockProviderGateway) -> Service {
    TokenService::new(vault(rows), audit, gateway, clock(), SKEW)
}

fn connected(
    rows: &Rows,
    provider: ProviderId,
    expires_in_minutes: Option<i64>,
    refresh: Option<&str>,
) {
    let grant = oauth_grant(
        "old-access",
        refresh,
        expires_in_minutes.and_then(in_minutes),
    );
    rows.put_grant(provider, &grant);
    rows.put_metadata(&ConnectionMetadata::connected(provider, &grant, NOW));
}

fn new_pair(access: &str, refresh: Option<&str>, expires_in_minutes: i64) -> TokenSet {
    TokenSet {
        access_token: SecretString::from(access),
        refresh_token: refresh.map(SecretString::from),
        expires_at: in_minutes(expires_in_minutes),
        scope: None,
    }
}

#[tokio::test]
async fn a_token_valid_beyond_the_skew_is_returned_without_refreshing() {
    let rows = Rows::default();
    connected(&rows, ProviderId::Trakt, Some(60), Some("old-refresh"));
    let mut gateway = MockProviderGateway::new();
    gateway.expect_refresh().never();
    let mut audit = MockAuditLog::new();
    audit
        .expect_record()
        .withf(|e| e.action == AuditAction::TokenRead && e.subject == user())
        .times(1)
        .returning(|_| Ok(()));

    let token = service(&rows, audit, gateway)
        .valid_access_token(&service_actor(), user(), ProviderId::Trakt)
        .await
        .unwrap();
    assert_eq!(token.access_token.expose_secret(), "old-access");
    assert_eq!(token.token_type, "Bearer");
}

#[tokio::test]
async fn a_token_expiring_within_the_skew_is_refreshed_and_the_rotated_pair_stored() {
    let rows = Rows::default();
    connected(&rows, ProviderId::Trakt, Some(4), Some("old-refresh"));
    let mut gateway = MockProviderGateway::new();
    gateway
        .expect_refresh()
        .withf(|p, t| *p == ProviderId::Trakt && t.expose_secret() == "old-refresh")
        .times(1)
        .returning(|_, _| Ok(new_pair("new-access", Some("new-refresh"), 1440)));

    let token = service(&rows, audit_ok(), gateway)
        .valid_access_token(&service_actor(), user(), ProviderId::Trakt)
        .await
        .unwrap();
    assert_eq!(token.access_token.expose_secret(), "new-access");
    let stored = rows.plaintext("scrobbling.trakt.oauth_tokens");
    assert_eq!(stored["access_token"], "new-access");
    assert_eq!(stored["refresh_token"], "new-refresh");
    assert_eq!(stored["user_slug"], "sean", "the account is kept");
    let metadata = rows.metadata(ProviderId::Trakt);
    assert_eq!(metadata.expires_at, in_minutes(1440));
    assert_eq!(metadata.refreshed_at, Some(NOW));
}

#[tokio::test]
async fn a_refresh_without_rotation_keeps_the_old_refresh_token() {
    let rows = Rows::default();
    connected(&rows, ProviderId::Spotify, Some(1), Some("keep-me"));
    let mut gateway = MockProviderGateway::new();
    gateway
        .expect_refresh()
        .times(1)
        .returning(|_, _| Ok(new_pair("new-access", None, 60)));

    service(&rows, audit_ok(), gateway)
        .valid_access_token(&service_actor(), user(), ProviderId::Spotify)
        .await
        .unwrap();
    let stored = rows.plaintext("music.spotify.oauth_tokens");
    assert_eq!(stored["refresh_token"], "keep-me");
}

#[tokio::test]
async fn concurrent_callers_for_one_connection_cause_one_refresh() {
    let rows = Rows::default();
    connected(
        &rows,
        ProviderId::Myanimelist,
        Some(-10),
        Some("old-refresh"),
    );
    let mut gateway = MockProviderGateway::new();
    gateway
        .expect_refresh()
        .times(1)
        .returning(|_, _| Ok(new_pair("new-access", Some("new-refresh"), 60)));
    let service = service(&rows, audit_ok(), gateway);

    // Hold the connection's flight lock so both callers find the token stale and queue up.
    let held = service
        .flights
        .lock(&(user(), ProviderId::Myanimelist))
        .await;
    let release = async {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        drop(held);
    };
    let actor = service_actor();
    let (first, second, ()) = tokio::join!(
        service.valid_access_token(&actor, user(), ProviderId::Myanimelist),
        service.valid_access_token(&actor, user(), ProviderId::Myanimelist),
        release,
    );
    assert_eq!(first.unwrap().access_token.expose_secret(), "new-access");
    assert_eq!(second.unwrap().access_token.expose_secret(), "new-access");
}

#[tokio::test]
async fn callers_queued_behind_a_failed_refresh_get_its_failure_without_asking_again() {
    let rows = Rows::default();
    connected(&rows, ProviderId::Spotify, Some(-1), Some("old-refresh"));
    let mut gateway = MockProviderGateway::new();
    gateway
        .expect_refresh()
        .times(1)
        .returning(|_, _| Err(ProviderError::Status { status: 500 }));
    let service = service(&rows, audit_ok(), gateway);

    // Hold the connection's flight lock so all three callers queue up.
    let held = service.flights.lock(&(user(), ProviderId::Spotify)).await;
    let release = async {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        drop(held);
    };
    let actor = service_actor();
    let (first, second, third, ()) = tokio::join!(
        service.valid_access_token(&actor, user(), ProviderId::Spotify),
        service.valid_access_token(&actor, user(), ProviderId::Spotify),
        service.valid_access_token(&actor, user(), ProviderId::Spotify),
        release,
    );
    for result in [first, second, third] {
        assert!(
            matches!(
                result,
                Err(TokenError::Provider {
                    provider: ProviderId::Spotify,
                    source: ProviderError::Status { status: 500 }
                })
            ),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn a_caller_that_waits_longer_than_the_bound_gets_a_timeout() {
    let rows = Rows::default();
    connected(&rows, ProviderId::Trakt, Some(-1), Some("r"));
    let mut gateway = MockProviderGateway::new();
    gateway.expect_refresh().never();
    let mut clock = MockClock::new();
    clock.expect_now().return_const(NOW);
    // The timer fires at once.
    clock
        .expect_sleep()
        .withf(|d| *d == StdDuration::from_secs(20))
        .times(1)
        .returning(|_| Box::pin(std::future::ready(())));
    let service = TokenService::new(vault(&rows), audit_ok(), gateway, clock, SKEW)
        .with_lock_wait(StdDuration::from_secs(20));

    let _held = service.flights.lock(&(user(), ProviderId::Trakt)).await;
    let err = service
        .valid_access_token(&service_actor(), user(), ProviderId::Trakt)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TokenError::Provider {
                provider: ProviderId::Trakt,
                source: ProviderError::Timeout
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_rotation_by_another_instance_is_seen_past_a_stale_cache() {
    let store = Rows::default();
    connected(&store, ProviderId::Trakt, Some(-1), Some("rotated-away"));
    // This instance's cache loaded the old pair; then another instance rotated it.
    let cache = store.snapshot();
    store.put_grant(
        ProviderId::Trakt,
        &oauth_grant("theirs", Some("their-refresh"), in_minutes(600)),
    );
    let mut gateway = MockProviderGateway::new();
    gateway.expect_refresh().never();
    let vault = vault_over(repository(&cache)).with_uncached_reads(repository(&store));

    let token = TokenService::new(Arc::new(vault), audit_ok(), gateway, clock(), SKEW)
        .valid_access_token(&service_actor(), user(), ProviderId::Trakt)
        .await
        .unwrap();
    assert_eq!(token.access_token.expose_secret(), "theirs");
    assert!(!store.metadata(ProviderId::Trakt).needs_reauth);
}

/// A repository over `rows` whose credential writes fail with `Unavailable` the first
/// `failures` times; counts the attempts.
fn flaky_store(rows: &Rows, failures: usize) -> (MockSettingsRepository, Arc<AtomicUsize>) {
    let attempts = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&attempts);
    let repo = repository_with(
        rows,
        Box::new(move |write, _| {
            if !write.key.as_str().ends_with(".oauth_tokens") {
                return None;
            }
            let attempt = counter.fetch_add(1, Ordering::SeqCst);
            (attempt < failures).then(|| {
                Err(SettingWriteError::Repository(RepositoryError::Unavailable(
                    "blip".into(),
                )))
            })
        }),
    );
    (repo, attempts)
}

#[tokio::test]
async fn a_rotated_pair_is_stored_despite_a_store_blip() {
    let rows = Rows::default();
    connected(&rows, ProviderId::Trakt, Some(-1), Some("old-refresh"));
    let (repo, attempts) = flaky_store(&rows, 2);
    let mut gateway = MockProviderGateway::new();
    gateway
        .expect_refresh()
        .times(1)
        .returning(|_, _| Ok(new_pair("new-access", Some("new-refresh"), 60)));

    let token = TokenService::new(
        Arc::new(vault_over(repo)),
        audit_ok(),
        gateway,
        clock(),
        SKEW,
    )
    .valid_access_token(&service_actor(), user(), ProviderId::Trakt)
    .await
    .unwrap();
    assert_eq!(token.access_token.expose_secret(), "new-access");
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
    assert_eq!(
        rows.plaintext("scrobbling.trakt.oauth_tokens")["refresh_token"],
        "new-refresh"
    );
}

#[tokio::test]
async fn storing_a_rotated_pair_is_given_up_after_a_few_attempts() {
    let rows = Rows::default();
    connected(&rows, ProviderId::Trakt, Some(-1), Some("old-refresh"));
    let (repo, attempts) = flaky_store(&rows, usize::MAX);
    let mut gateway = MockProviderGateway::new();
    gateway
        .expect_refresh()
        .times(1)
        .returning(|_, _| Ok(new_pair("new-access", Some("new-refresh"), 60)));

    let err = TokenService::new(
        Arc::new(vault_over(repo)),
        audit_ok(),
        gateway,
        clock(),
        SKEW,
    )
    .valid_access_token(&service_actor(), user(), ProviderId::Trakt)
    .await
    .unwrap_err();
    assert!(
        matches!(err, TokenError::Repository(RepositoryError::Unavailable(_))),
        "{err:?}"
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn invalid_grant_does_not_mark_a_connection_made_meanwhile() {
    let rows = Rows::default();
    connected(&rows, ProviderId::Trakt, Some(-1), Some("revoked"));
    let user_reconnects = rows.clone();
    let mut gateway = MockProviderGateway::new();
    gateway.expect_refresh().times(1).returning(move |_, _| {
        // The user connects again while the refresh is refused (with a token that is
        // itself close to expiry, so it is not taken for a rotation).
        let grant = oauth_grant("reconnected", Some("new-refresh"), in_minutes(1));
        user_reconnects.put_grant(ProviderId::Trakt, &grant);
        user_reconnects.put_metadata(&ConnectionMetadata::connected(
            ProviderId::Trakt,
            &grant,
            NOW,
        ));
        Err(ProviderError::InvalidGrant)
    });

    let err = service(&rows, audit_ok(), gateway)
        .valid_access_token(&service_actor(), user(), ProviderId::Trakt)
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::NeedsReauth(ProviderId::Trakt)));
    assert!(
        !rows.metadata(ProviderId::Trakt).needs_reauth,
        "the new connection is not marked"
    );
}

#[tokio::test]
async fn invalid_grant_marks_the_connection_and_later_calls_do_not_ask_again() {
    let rows = Rows::default();
    connected(&rows, ProviderId::Trakt, Some(-1), Some("revoked"));
    let mut gateway = MockProviderGateway::new();
    gateway
        .expect_refresh()
        .times(1)
        .returning(|_, _| Err(ProviderError::InvalidGrant));
    let service = service(&rows, audit_ok(), gateway);

    for _ in 0..2 {
        let err = service
            .valid_access_token(&service_actor(), user(), ProviderId::Trakt)
            .await
            .unwrap_err();
        assert!(
            matches!(err, TokenError::NeedsReauth(ProviderId::Trakt)),
            "{err:?}"
        );
    }
    assert!(rows.metadata(ProviderId::Trakt).needs_reauth);
}

#[tokio::test]
async fn invalid_grant_after_another_instance_rotated_uses_its_token() {
    let rows = Rows::default();
    connected(&rows, ProviderId::Trakt, Some(-1), Some("rotated-away"));
    let other_instance = rows.clone();
    let mut gateway = MockProviderGateway::new();
    gateway.expect_refresh().times(1).returning(move |_, _| {
        // Meanwhile, another instance refreshed and stored a new pair.
        other_instance.put_grant(
            ProviderId::Trakt,
            &oauth_grant("theirs", Some("their-refresh"), in_minutes(600)),
        );
        Err(ProviderError::InvalidGrant)
    });

    let token = service(&rows, audit_ok(), gateway)
        .valid_access_token(&service_actor(), user(), ProviderId::Trakt)
        .await
        .unwrap();
    assert_eq!(token.access_token.expose_secret(), "theirs");
    assert!(!rows.metadata(ProviderId::Trakt).needs_reauth);
}

#[tokio::test]
async fn a_refresh_that_loses_the_version_race_returns_the_winners_token() {
    let rows = Rows::default();
    connected(&rows, ProviderId::Myanimelist, Some(2), Some("r1"));
    let other_instance = rows.clone();
    let mut gateway = MockProviderGateway::new();
    gateway.expect_refresh().times(1).returning(move |_, _| {
        other_instance.put_grant(
            ProviderId::Myanimelist,
            &oauth_grant("winner", Some("r2"), in_minutes(600)),
        );
        Ok(new_pair("loser", Some("r3"), 600))
    });

    let token = service(&rows, audit_ok(), gateway)
        .valid_access_token(&service_actor(), user(), ProviderId::Myanimelist)
        .await
        .unwrap();
    assert_eq!(token.access_token.expose_secret(), "winner");
    assert_eq!(
        rows.plaintext("anime.myanimelist.oauth_tokens")["access_token"],
        "winner"
    );
}

#[tokio::test]
async fn an_unrefreshable_token_is_used_until_it_expires_then_needs_reauth() {
    let rows = Rows::default();
    connected(&rows, ProviderId::Anilist, Some(2), None);
    let mut gateway = MockProviderGateway::new();
    gateway.expect_refresh().never();
    let service = service(&rows, audit_ok(), gateway);
    let token = service
        .valid_access_token(&service_actor(), user(), ProviderId::Anilist)
        .await
        .unwrap();
    assert_eq!(token.access_token.expose_secret(), "old-access");

    connected(&rows, ProviderId::Anilist, Some(-1), None);
    let err = service
        .valid_access_token(&service_actor(), user(), ProviderId::Anilist)
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::NeedsReauth(ProviderId::Anilist)));
    assert!(rows.metadata(ProviderId::Anilist).needs_reauth);
}

#[tokio::test]
async fn a_provider_failure_while_refreshing_is_reported_with_the_provider() {
    let rows = Rows::default();
    connected(&rows, ProviderId::Spotify, Some(-1), Some("r"));
    let mut gateway = MockProviderGateway::new();
    gateway
        .expect_refresh()
        .returning(|_, _| Err(ProviderError::Timeout));
    let err = service(&rows, audit_ok(), gateway)
        .valid_access_token(&service_actor(), user(), ProviderId::Spotify)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        TokenError::Provider {
            provider: ProviderId::Spotify,
            source: ProviderError::Timeout
        }
    ));
    assert_eq!(
        rows.plaintext("music.spotify.oauth_tokens")["access_token"],
        "old-access",
        "nothing changes"
    );
}

#[tokio::test]
async fn no_audit_record_means_no_token() {
    let rows = Rows::default();
    connected(&rows, ProviderId::Trakt, Some(60), Some("r"));
    let mut audit = MockAuditLog::new();
    audit
        .expect_record()
        .returning(|_| Err(RepositoryError::Unavailable("down".into())));
    let err = service(&rows, audit, MockProviderGateway::new())
        .valid_access_token(&service_actor(), user(), ProviderId::Trakt)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        TokenError::Repository(RepositoryError::Unavailable(_))
    ));
}

#[tokio::test]
async fn session_keys_and_user_tokens_are_returned_as_is() {
    let rows = Rows::default();
    rows.put_grant(
        ProviderId::Lastfm,
        &crate::integrations::Grant {
            credentials: crate::integrations::Credentials::LastfmSession {
                session_key: SecretString::from("sk-1"),
            },
            account: crate::integrations::RemoteAccount {
                username: Some("rj".into()),
                ..Default::default()
            },
        },
    );
    let token = service(&rows, audit_ok(), MockProviderGateway::new())
        .valid_access_token(&service_actor(), user(), ProviderId::Lastfm)
        .await
        .unwrap();
    assert_eq!(token.access_token.expose_secret(), "sk-1");
    assert_eq!(token.token_type, "lastfm_session");
    assert_eq!(token.expires_at, None);
}

#[tokio::test]
async fn letterboxd_and_unconnected_providers_have_no_token() {
    let rows = Rows::default();
    let service = service(&rows, audit_ok(), MockProviderGateway::new());
    let err = service
        .valid_access_token(&service_actor(), user(), ProviderId::Letterboxd)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        TokenError::NoAccessToken(ProviderId::Letterboxd)
    ));
    let err = service
        .valid_access_token(&service_actor(), user(), ProviderId::Simkl)
        .await
        .unwrap_err();
    assert!(matches!(err, TokenError::NotConnected(ProviderId::Simkl)));
}

#[test]
fn a_token_never_prints_its_secret() {
    let token = crate::integrations::ProviderToken {
        provider: ProviderId::Trakt,
        access_token: SecretString::from("do-not-print"),
        token_type: "Bearer",
        expires_at: None,
        username: None,
    };
    assert!(!format!("{token:?}").contains("do-not-print"));
}
