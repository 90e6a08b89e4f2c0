//! Key rotation: envelopes sealed under an old key open once it is configured as a
//! previous key, and new envelopes use the new current key.

// Marks the helpers below as test code too, where clippy allows `unwrap`.
#![cfg(test)]

use adapter_crypto::AesGcmKeyring;
use domain::{UserId, ports::SecretCipher, secrets::CipherError, settings::SettingKey};
use uuid::Uuid;

const K1: &str = "k1:1111111111111111111111111111111111111111111111111111111111111111";
const K2: &str = "k2:2222222222222222222222222222222222222222222222222222222222222222";
const K3: &str = "k3:3333333333333333333333333333333333333333333333333333333333333333";

fn user() -> UserId {
    UserId::new(Uuid::from_u128(42))
}

fn key() -> SettingKey {
    SettingKey::parse("integrations.lastfm.session_key").unwrap()
}

#[test]
fn envelope_sealed_under_old_current_key_opens_after_rotation() {
    let before = AesGcmKeyring::from_config(K1, "").unwrap();
    let envelope = before.seal(user(), &key(), b"secret").unwrap();
    assert_eq!(envelope.kid, "k1");

    let after = AesGcmKeyring::from_config(K2, K1).unwrap();
    let opened = after.open(user(), &key(), &envelope).unwrap();
    assert_eq!(opened.as_slice(), b"secret");
}

#[test]
fn new_seals_after_rotation_carry_the_new_kid() {
    let after = AesGcmKeyring::from_config(K2, K1).unwrap();
    assert_eq!(after.current_kid(), "k2");
    let envelope = after.seal(user(), &key(), b"secret").unwrap();
    assert_eq!(envelope.kid, "k2");
}

#[test]
fn envelope_of_a_dropped_key_is_unknown_kid() {
    let before = AesGcmKeyring::from_config(K1, "").unwrap();
    let envelope = before.seal(user(), &key(), b"secret").unwrap();

    let without_k1 = AesGcmKeyring::from_config(K2, K3).unwrap();
    assert_eq!(
        without_k1.open(user(), &key(), &envelope),
        Err(CipherError::UnknownKid { kid: "k1".into() })
    );
}

#[test]
fn kids_list_current_first_and_knows_kid_covers_every_configured_key() {
    let keyring = AesGcmKeyring::from_config(K2, &format!("{K1}, {K3}")).unwrap();
    assert_eq!(keyring.kids(), ["k2", "k1", "k3"]);
    for kid in ["k1", "k2", "k3"] {
        assert!(keyring.knows_kid(kid), "{kid}");
    }
    assert!(!keyring.knows_kid("k4"));
}
