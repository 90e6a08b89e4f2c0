//! Credential vault: metadata writes race neither a new connection nor a disconnect, and
//! the PKCE verifier is sealed for its own purpose.

use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use super::{
    NOW, Rows, in_minutes, oauth_grant, repository, repository_with, seal_bytes, user, vault,
    vault_over,
};
use crate::{
    integrations::{ConnectionMetadata, CredentialVault, MetadataUpdate, ProviderId, metadata_key},
    ports::{MockSecretCipher, MockSettingsRepository},
    settings::{Precondition, SettingKey},
};

const TOKENS: &str = "scrobbling.trakt.oauth_tokens";

fn connected(rows: &Rows) -> i64 {
    let grant = oauth_grant("acc", Some("ref"), in_minutes(60));
    rows.put_grant(ProviderId::Trakt, &grant);
    rows.put_metadata(&ConnectionMetadata::connected(
        ProviderId::Trakt,
        &grant,
        NOW,
    ));
    rows.version(TOKENS)
}

fn needs_reauth(stored: Option<ConnectionMetadata>) -> ConnectionMetadata {
    let mut metadata = stored.expect("the metadata is passed in");
    metadata.needs_reauth = true;
    metadata
}

#[tokio::test]
async fn metadata_is_written_while_the_credentials_are_unchanged() {
    let rows = Rows::default();
    let version = connected(&rows);
    let outcome = vault(&rows)
        .update_metadata(user(), ProviderId::Trakt, version, needs_reauth)
        .await
        .unwrap();
    assert_eq!(outcome, MetadataUpdate::Written);
    assert!(rows.metadata(ProviderId::Trakt).needs_reauth);
}

#[tokio::test]
async fn metadata_is_not_written_over_a_new_connection() {
    let rows = Rows::default();
    let read_at = connected(&rows);
    // The user connects again after the credentials were read.
    connected(&rows);
    let outcome = vault(&rows)
        .update_metadata(user(), ProviderId::Trakt, read_at, needs_reauth)
        .await
        .unwrap();
    assert_eq!(outcome, MetadataUpdate::Skipped);
    assert!(!rows.metadata(ProviderId::Trakt).needs_reauth);
}

#[tokio::test]
async fn a_connection_made_right_after_the_credentials_check_is_not_marked() {
    let rows = Rows::default();
    let read_at = connected(&rows);
    // The user connects again just after the credentials' version was read (and checked).
    let mut repo = MockSettingsRepository::new();
    let r = rows.clone();
    let mut reconnected = false;
    repo.expect_get().returning(move |_, key| {
        let found = r.get(key.as_str());
        if key.as_str() == TOKENS && !std::mem::replace(&mut reconnected, true) {
            connected(&r);
        }
        Ok(found)
    });
    let r = rows.clone();
    repo.expect_upsert()
        .returning(move |_, write, expected, _| r.upsert(write, expected));
    let outcome = vault_over(repo)
        .update_metadata(user(), ProviderId::Trakt, read_at, needs_reauth)
        .await
        .unwrap();
    assert_eq!(outcome, MetadataUpdate::Skipped);
    assert!(!rows.metadata(ProviderId::Trakt).needs_reauth);
}

#[tokio::test]
async fn metadata_of_a_removed_connection_is_not_recreated() {
    let rows = Rows::default();
    let read_at = connected(&rows);
    rows.remove(TOKENS);
    rows.remove(&metadata_key(ProviderId::Trakt));
    let outcome = vault(&rows)
        .update_metadata(user(), ProviderId::Trakt, read_at, needs_reauth)
        .await
        .unwrap();
    assert_eq!(outcome, MetadataUpdate::Skipped);
    assert!(rows.keys().is_empty());
}

#[tokio::test]
async fn a_metadata_row_changed_under_the_write_is_read_again() {
    let rows = Rows::default();
    let version = connected(&rows);
    let concurrent = rows.clone();
    let mut first = true;
    let repo = repository_with(
        &rows,
        Box::new(move |write, expected| {
            assert!(
                matches!(expected, Precondition::Version(_)),
                "the write carries the row's version"
            );
            if std::mem::take(&mut first) {
                // Another writer renames the account between the read and the write.
                let mut other = concurrent.metadata(ProviderId::Trakt);
                other.username = Some("renamed".into());
                concurrent.put_metadata(&other);
            }
            assert!(write.key.as_str().ends_with(".connection"));
            None
        }),
    );
    let outcome = vault_over(repo)
        .update_metadata(user(), ProviderId::Trakt, version, needs_reauth)
        .await
        .unwrap();
    assert_eq!(outcome, MetadataUpdate::Written);
    let metadata = rows.metadata(ProviderId::Trakt);
    assert!(metadata.needs_reauth);
    assert_eq!(
        metadata.username.as_deref(),
        Some("renamed"),
        "built on the other writer's row"
    );
}

#[tokio::test]
async fn metadata_inserted_as_a_disconnect_removes_the_credentials_is_taken_back() {
    let rows = Rows::default();
    let version = connected(&rows);
    rows.remove(&metadata_key(ProviderId::Trakt));
    let disconnect = rows.clone();
    let repo = repository_with(
        &rows,
        Box::new(move |_, _| {
            // The disconnect removes the credentials (and the not yet written metadata)
            // between the check and the insert.
            disconnect.remove(TOKENS);
            None
        }),
    );
    let outcome = vault_over(repo)
        .update_metadata(user(), ProviderId::Trakt, version, |stored| {
            assert!(stored.is_none());
            let grant = oauth_grant("acc", Some("ref"), in_minutes(60));
            let mut metadata = ConnectionMetadata::connected(ProviderId::Trakt, &grant, NOW);
            metadata.needs_reauth = true;
            metadata
        })
        .await
        .unwrap();
    assert_eq!(outcome, MetadataUpdate::Skipped);
    assert!(rows.keys().is_empty(), "{:?}", rows.keys());
}

#[test]
fn the_pkce_verifier_is_sealed_for_its_own_key_and_opens_back() {
    let rows = Rows::default();
    let is_pkce_key = |key: &SettingKey| key.as_str() == "integrations.myanimelist.pkce_verifier";
    let mut cipher = MockSecretCipher::new();
    cipher
        .expect_seal()
        .withf(move |u, key, _| *u == user() && is_pkce_key(key))
        .times(1)
        .returning(|_, _, plaintext| Ok(seal_bytes(plaintext)));
    cipher
        .expect_open()
        .withf(move |u, key, _| *u == user() && is_pkce_key(key))
        .times(1)
        .returning(|_, _, envelope| Ok(Zeroizing::new(envelope.ciphertext.clone().into_bytes())));
    let vault = CredentialVault::new(repository(&rows), super::pipeline(cipher));
    let sealed = vault
        .seal_pkce(
            user(),
            ProviderId::Myanimelist,
            &SecretString::from("the-verifier"),
        )
        .unwrap();
    let opened = vault
        .open_pkce(user(), ProviderId::Myanimelist, &sealed)
        .unwrap();
    assert_eq!(opened.expose_secret(), "the-verifier");
    assert!(rows.keys().is_empty(), "nothing is stored as a setting");
}
