//! Known answers: a pinned envelope so the stored format can never drift silently, and
//! published test vectors for the two primitives (AES-256-GCM, HKDF-SHA256) through `ring`.

// Marks the helpers below as test code too, where clippy allows `unwrap`.
#![cfg(test)]

use adapter_crypto::AesGcmKeyring;
use domain::{
    UserId,
    ports::SecretCipher,
    secrets::{CipherError, Envelope},
    settings::SettingKey,
};
use ring::{
    aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey},
    hkdf::{HKDF_SHA256, KeyType, Salt},
};
use uuid::Uuid;

const KAT_MASTER_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const KAT_USER: &str = "00112233-4455-6677-8899-aabbccddeeff";
const KAT_SETTING_KEY: &str = "integrations.trakt.access_token";
const KAT_PLAINTEXT: &[u8] = br#""s3cr3t-t0k3n""#;
// Computed once with this crate and cross-checked with an independent implementation
// (Python `cryptography`: HKDF, AESGCM and the AAD layout written out by hand).
const KAT_ENVELOPE: &str = concat!(
    r#"{"v":1,"alg":"A256GCM-HKDF-SHA256","kid":"630dcd29","#,
    r#""salt":"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8","nonce":"QEFCQ0RFRkdISUpL","#,
    r#""ciphertext":"v4uYk0s6uhIV8Ga2U-Hcayj63xrWPY5WQ0joDmNK"}"#,
);

fn kat_keyring() -> AesGcmKeyring {
    AesGcmKeyring::from_config(KAT_MASTER_KEY, "").unwrap()
}

fn kat_user() -> UserId {
    UserId::new(Uuid::parse_str(KAT_USER).unwrap())
}

fn kat_setting_key() -> SettingKey {
    SettingKey::parse(KAT_SETTING_KEY).unwrap()
}

fn kat_salt() -> [u8; 32] {
    std::array::from_fn(|i| 0x20 + i as u8)
}

fn kat_nonce() -> [u8; 12] {
    std::array::from_fn(|i| 0x40 + i as u8)
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

#[test]
fn fixed_inputs_seal_to_the_pinned_envelope() {
    let envelope = kat_keyring()
        .seal_with(
            kat_user(),
            &kat_setting_key(),
            KAT_PLAINTEXT,
            kat_salt(),
            kat_nonce(),
        )
        .unwrap();
    assert_eq!(serde_json::to_string(&envelope).unwrap(), KAT_ENVELOPE);
}

#[test]
fn pinned_envelope_opens_to_the_fixed_plaintext() {
    let envelope: Envelope = serde_json::from_str(KAT_ENVELOPE).unwrap();
    let opened = kat_keyring()
        .open(kat_user(), &kat_setting_key(), &envelope)
        .unwrap();
    assert_eq!(opened.as_slice(), KAT_PLAINTEXT);
}

#[test]
fn pinned_envelope_does_not_open_for_another_cell() {
    let envelope: Envelope = serde_json::from_str(KAT_ENVELOPE).unwrap();
    let other_key = SettingKey::parse("integrations.trakt.refresh_token").unwrap();
    assert_eq!(
        kat_keyring().open(kat_user(), &other_key, &envelope),
        Err(CipherError::Integrity)
    );
}

// McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", test case 16.
const GCM_KEY: &str = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
const GCM_IV: &str = "cafebabefacedbaddecaf888";
const GCM_PT: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
                      1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39";
const GCM_AAD: &str = "feedfacedeadbeeffeedfacedeadbeefabaddad2";
const GCM_CT: &str = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
                      8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662";
const GCM_TAG: &str = "76fc6ece0f4e1768cddf8853bb2d551b";

fn gcm_key() -> LessSafeKey {
    LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &unhex(GCM_KEY)).unwrap())
}

fn gcm_nonce() -> Nonce {
    Nonce::try_assume_unique_for_key(&unhex(GCM_IV)).unwrap()
}

#[test]
fn aes_256_gcm_encrypts_the_published_vector() {
    let mut in_out = unhex(GCM_PT);
    gcm_key()
        .seal_in_place_append_tag(gcm_nonce(), Aad::from(unhex(GCM_AAD)), &mut in_out)
        .unwrap();
    assert_eq!(hex::encode(in_out), format!("{GCM_CT}{GCM_TAG}"));
}

#[test]
fn aes_256_gcm_decrypts_the_published_vector() {
    let mut in_out = unhex(&format!("{GCM_CT}{GCM_TAG}"));
    let plaintext = gcm_key()
        .open_in_place(gcm_nonce(), Aad::from(unhex(GCM_AAD)), &mut in_out)
        .unwrap();
    assert_eq!(hex::encode(plaintext), GCM_PT);
}

/// An output length for `Prk::expand`: ring only fills lengths named by a `KeyType`.
struct Len(usize);

impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

#[test]
fn hkdf_sha256_matches_rfc_5869_test_case_1() {
    let ikm = [0x0b; 22];
    let salt = unhex("000102030405060708090a0b0c");
    let info = unhex("f0f1f2f3f4f5f6f7f8f9");
    let mut okm = [0u8; 42];
    Salt::new(HKDF_SHA256, &salt)
        .extract(&ikm)
        .expand(&[&info], Len(42))
        .unwrap()
        .fill(&mut okm)
        .unwrap();
    assert_eq!(
        hex::encode(okm),
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    );
}
