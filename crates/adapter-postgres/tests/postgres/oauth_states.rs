//! `PgOAuthStateStore`: a state is taken once, only by its user and provider, expired rows
//! are purged on insert.

use adapter_postgres::{PgOAuthStateStore, testing::TestDatabase};
use domain::{
    integrations::{OAuthStateStore, PendingAuthorization, ProviderId},
    secrets::Envelope,
};
use time::{Duration, OffsetDateTime};

use crate::support::new_user;

fn pending(state: &str, expires_in: Duration) -> PendingAuthorization {
    PendingAuthorization {
        state: state.to_owned(),
        user: new_user(),
        provider: ProviderId::Myanimelist,
        redirect_uri: "https://app.example/cb".into(),
        pkce_verifier: Some(Envelope {
            v: 1,
            alg: "A256GCM-HKDF-SHA256".into(),
            kid: "k1".into(),
            salt: "c2FsdA".into(),
            nonce: "bm9uY2U".into(),
            ciphertext: "Y3Q".into(),
        }),
        expires_at: OffsetDateTime::now_utc() + expires_in,
    }
}

#[tokio::test]
async fn a_state_is_taken_once_with_its_verifier() {
    let db = TestDatabase::create().await;
    let store = PgOAuthStateStore::new(db.pool().clone());
    let saved = pending("state-0123456789abcdef", Duration::minutes(10));
    store.save(&saved).await.unwrap();

    let (first, second) = tokio::join!(
        store.take(&saved.state, saved.user, saved.provider),
        store.take(&saved.state, saved.user, saved.provider),
    );
    let taken: Vec<PendingAuthorization> = [first.unwrap(), second.unwrap()]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(taken.len(), 1, "exactly one concurrent take wins");
    assert_eq!(taken[0].pkce_verifier, saved.pkce_verifier);
    assert_eq!(taken[0].redirect_uri, saved.redirect_uri);
    assert_eq!(
        taken[0].expires_at.unix_timestamp(),
        saved.expires_at.unix_timestamp()
    );
}

#[tokio::test]
async fn another_user_or_provider_cannot_take_or_burn_a_state() {
    let db = TestDatabase::create().await;
    let store = PgOAuthStateStore::new(db.pool().clone());
    let saved = pending("state-0123456789abcdef", Duration::minutes(10));
    store.save(&saved).await.unwrap();

    assert!(
        store
            .take(&saved.state, new_user(), saved.provider)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .take(&saved.state, saved.user, ProviderId::Trakt)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .take(&saved.state, saved.user, saved.provider)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn expired_states_are_purged_when_a_new_one_is_saved() {
    let db = TestDatabase::create().await;
    let store = PgOAuthStateStore::new(db.pool().clone());
    let old = pending("state-expired-000000000", -Duration::minutes(1));
    store.save(&old).await.unwrap();
    store
        .save(&pending("state-fresh-0000000000", Duration::minutes(10)))
        .await
        .unwrap();
    assert!(
        store
            .take(&old.state, old.user, old.provider)
            .await
            .unwrap()
            .is_none()
    );
}
