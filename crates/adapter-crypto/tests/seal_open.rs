//! Sealing and opening through the `SecretCipher` port: round trips, tampering, header
//! edits and the binding of a ciphertext to its cell.

// Marks the helpers below as test code too, where clippy allows `unwrap`.
#![cfg(test)]

use adapter_crypto::AesGcmKeyring;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use domain::{
    UserId,
    ports::SecretCipher,
    secrets::{CipherError, Envelope},
    settings::SettingKey,
};
use uuid::Uuid;

const K1: &str = "k1:1111111111111111111111111111111111111111111111111111111111111111";
const K2: &str = "k2:2222222222222222222222222222222222222222222222222222222222222222";
const PLAINTEXT: &[u8] = br#"{"access_token":"t0k3n","refresh_token":"r3fr3sh"}"#;

fn keyring() -> AesGcmKeyring {
    AesGcmKeyring::from_config(K1, K2).unwrap()
}

fn alice() -> UserId {
    UserId::new(Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef))
}

fn bob() -> UserId {
    UserId::new(Uuid::from_u128(0xfedc_ba98_7654_3210_fedc_ba98_7654_3210))
}

fn key(raw: &str) -> SettingKey {
    SettingKey::parse(raw).unwrap()
}

fn token_key() -> SettingKey {
    key("integrations.trakt.access_token")
}

fn sealed() -> (AesGcmKeyring, Envelope) {
    let keyring = keyring();
    let envelope = keyring.seal(alice(), &token_key(), PLAINTEXT).unwrap();
    (keyring, envelope)
}

fn decode(field: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(field).unwrap()
}

fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Opens a copy of `envelope` with every single byte of one decoded field flipped in turn,
/// asserting that each fails authentication.
fn assert_every_byte_flip_fails(field: fn(&mut Envelope) -> &mut String) {
    let (keyring, envelope) = sealed();
    let original = decode(field(&mut envelope.clone()));
    assert!(!original.is_empty());
    for position in 0..original.len() {
        let mut tampered = envelope.clone();
        let mut bytes = original.clone();
        bytes[position] ^= 0x01;
        *field(&mut tampered) = encode(&bytes);
        assert_eq!(
            keyring.open(alice(), &token_key(), &tampered),
            Err(CipherError::Integrity),
            "flipped byte {position}"
        );
    }
}

#[test]
fn sealed_plaintext_opens_to_the_same_bytes() {
    let (keyring, envelope) = sealed();
    let opened = keyring.open(alice(), &token_key(), &envelope).unwrap();
    assert_eq!(opened.as_slice(), PLAINTEXT);
}

#[test]
fn empty_plaintext_round_trips() {
    let keyring = keyring();
    let envelope = keyring.seal(alice(), &token_key(), b"").unwrap();
    assert_eq!(decode(&envelope.ciphertext).len(), 16);
    let opened = keyring.open(alice(), &token_key(), &envelope).unwrap();
    assert!(opened.is_empty());
}

#[test]
fn envelope_header_and_field_lengths_follow_the_format() {
    let (keyring, envelope) = sealed();
    assert_eq!(envelope.v, 1);
    assert_eq!(envelope.alg, "A256GCM-HKDF-SHA256");
    assert_eq!(envelope.kid, "k1");
    assert_eq!(keyring.current_kid(), "k1");
    assert_eq!(decode(&envelope.salt).len(), 32);
    assert_eq!(decode(&envelope.nonce).len(), 12);
    assert_eq!(decode(&envelope.ciphertext).len(), PLAINTEXT.len() + 16);
    for field in [&envelope.salt, &envelope.nonce, &envelope.ciphertext] {
        assert!(!field.contains(['=', '+', '/']), "{field}");
    }
}

#[test]
fn two_seals_of_the_same_plaintext_differ_in_salt_nonce_and_ciphertext() {
    let keyring = keyring();
    let first = keyring.seal(alice(), &token_key(), PLAINTEXT).unwrap();
    let second = keyring.seal(alice(), &token_key(), PLAINTEXT).unwrap();
    assert_ne!(first.salt, second.salt);
    assert_ne!(first.nonce, second.nonce);
    assert_ne!(first.ciphertext, second.ciphertext);
}

#[test]
fn flipping_any_salt_byte_fails_integrity() {
    assert_every_byte_flip_fails(|e| &mut e.salt);
}

#[test]
fn flipping_any_nonce_byte_fails_integrity() {
    assert_every_byte_flip_fails(|e| &mut e.nonce);
}

#[test]
fn flipping_any_ciphertext_or_tag_byte_fails_integrity() {
    // The decoded field is ciphertext body followed by the 16-byte tag: this covers both.
    assert_every_byte_flip_fails(|e| &mut e.ciphertext);
}

#[test]
fn truncated_tag_fails_integrity() {
    let (keyring, mut envelope) = sealed();
    let mut bytes = decode(&envelope.ciphertext);
    bytes.pop();
    envelope.ciphertext = encode(&bytes);
    assert_eq!(
        keyring.open(alice(), &token_key(), &envelope),
        Err(CipherError::Integrity)
    );
}

#[test]
fn ciphertext_shorter_than_the_tag_is_malformed() {
    let (keyring, mut envelope) = sealed();
    let original = decode(&envelope.ciphertext);
    for len in [0, 15] {
        envelope.ciphertext = encode(&original[..len]);
        assert_eq!(
            keyring.open(alice(), &token_key(), &envelope),
            Err(CipherError::Malformed),
            "length {len}"
        );
    }
}

#[test]
fn bad_base64_in_any_binary_field_is_malformed() {
    let (keyring, envelope) = sealed();
    let edits: [fn(&mut Envelope); 3] = [
        |e| e.salt.push('!'),
        |e| e.nonce = format!("{}=", e.nonce),
        |e| e.ciphertext.insert(0, '*'),
    ];
    for edit in edits {
        let mut tampered = envelope.clone();
        edit(&mut tampered);
        assert_eq!(
            keyring.open(alice(), &token_key(), &tampered),
            Err(CipherError::Malformed)
        );
    }
}

#[test]
fn salt_or_nonce_of_the_wrong_length_is_malformed() {
    let (keyring, envelope) = sealed();
    let mut short_salt = envelope.clone();
    short_salt.salt = encode(&decode(&envelope.salt)[..31]);
    let mut long_nonce = envelope.clone();
    long_nonce.nonce = encode(&[decode(&envelope.nonce), vec![0]].concat());
    for tampered in [short_salt, long_nonce] {
        assert_eq!(
            keyring.open(alice(), &token_key(), &tampered),
            Err(CipherError::Malformed)
        );
    }
}

#[test]
fn edited_version_is_malformed() {
    let (keyring, mut envelope) = sealed();
    envelope.v = 2;
    assert_eq!(
        keyring.open(alice(), &token_key(), &envelope),
        Err(CipherError::Malformed)
    );
}

#[test]
fn edited_algorithm_is_malformed() {
    let (keyring, mut envelope) = sealed();
    envelope.alg = "A256GCM".to_owned();
    assert_eq!(
        keyring.open(alice(), &token_key(), &envelope),
        Err(CipherError::Malformed)
    );
}

#[test]
fn kid_edited_to_another_configured_key_fails_integrity() {
    let (keyring, mut envelope) = sealed();
    envelope.kid = "k2".to_owned();
    assert_eq!(
        keyring.open(alice(), &token_key(), &envelope),
        Err(CipherError::Integrity)
    );
}

#[test]
fn kid_edited_to_an_unknown_key_is_unknown_kid() {
    let (keyring, mut envelope) = sealed();
    envelope.kid = "k9".to_owned();
    assert_eq!(
        keyring.open(alice(), &token_key(), &envelope),
        Err(CipherError::UnknownKid { kid: "k9".into() })
    );
}

#[test]
fn ciphertext_opened_as_another_user_fails_integrity() {
    let (keyring, envelope) = sealed();
    assert_eq!(
        keyring.open(bob(), &token_key(), &envelope),
        Err(CipherError::Integrity)
    );
}

#[test]
fn ciphertext_opened_as_another_setting_key_fails_integrity() {
    let (keyring, envelope) = sealed();
    let other = key("integrations.trakt.refresh_token");
    assert_eq!(
        keyring.open(alice(), &other, &envelope),
        Err(CipherError::Integrity)
    );
}

#[test]
fn envelope_survives_its_json_round_trip() {
    let (keyring, envelope) = sealed();
    let stored = Envelope::from_value(&envelope.to_value()).unwrap();
    let opened = keyring.open(alice(), &token_key(), &stored).unwrap();
    assert_eq!(opened.as_slice(), PLAINTEXT);
}
