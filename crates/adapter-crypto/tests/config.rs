//! Building the keyring from configuration: the errors an operator sees, which must name the
//! faulty entry without revealing any key material, and the redacted `Debug` output.

// Marks the helpers below as test code too, where clippy allows `unwrap`.
#![cfg(test)]

use adapter_crypto::{AesGcmKeyring, KeyPosition, KeyringError};
use domain::ports::SecretCipher;

const KEY_A: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const KEY_B: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";
// printf a1b2...8f90 | xxd -r -p | sha256sum → 6685009530c3e0f4488b95aae1639525...
const KEY_A_KID: &str = "66850095";

fn error(current: &str, previous: &str) -> KeyringError {
    AesGcmKeyring::from_config(current, previous).unwrap_err()
}

/// No chunk of 8 or more characters of `key` appears in `message`.
fn assert_no_key_text(message: &str, key: &str) {
    let key = key.to_lowercase();
    let message = message.to_lowercase();
    for start in 0..=key.len().saturating_sub(8) {
        let chunk = &key[start..(start + 8).min(key.len())];
        assert!(!message.contains(chunk), "{message:?} contains {chunk:?}");
    }
}

#[test]
fn unprefixed_kid_is_derived_from_the_key_bytes() {
    let keyring = AesGcmKeyring::from_config(KEY_A, "").unwrap();
    assert_eq!(keyring.current_kid(), KEY_A_KID);
}

#[test]
fn empty_or_blank_current_key_is_missing() {
    assert_eq!(error("", KEY_B), KeyringError::MissingCurrentKey);
    assert_eq!(error(" \t\n", ""), KeyringError::MissingCurrentKey);
}

#[test]
fn previous_keys_may_be_empty_or_blank() {
    for previous in ["", "  ", ",", " , ,"] {
        let keyring = AesGcmKeyring::from_config(KEY_A, previous).unwrap();
        assert_eq!(keyring.kids(), [KEY_A_KID], "{previous:?}");
    }
}

#[test]
fn current_key_of_wrong_length_is_rejected_without_quoting_it() {
    let short = &KEY_A[..63];
    let err = error(short, "");
    assert_eq!(
        err,
        KeyringError::KeyLength {
            which: KeyPosition::Current,
            found: 63
        }
    );
    let message = err.to_string();
    assert!(message.contains("the current key"), "{message}");
    assert!(message.contains("64 hex characters"), "{message}");
    assert_no_key_text(&message, short);
}

#[test]
fn previous_key_with_non_hex_character_is_rejected_without_quoting_it() {
    let bad = format!("k:{}x", &KEY_B[..63]);
    let err = error(KEY_A, &format!("{KEY_B}, {bad}"));
    assert_eq!(
        err,
        KeyringError::KeyNotHex {
            which: KeyPosition::Previous(2),
            position: 64
        }
    );
    let message = err.to_string();
    assert!(message.contains("previous key #2"), "{message}");
    assert!(message.contains("not a hex digit"), "{message}");
    assert_no_key_text(&message, &bad);
}

#[test]
fn malformed_kid_is_rejected_without_quoting_the_entry() {
    // A misplaced separator can put key material where the kid should be.
    let entry = format!("{}:{KEY_B}", &KEY_A[..40]).replacen('a', ".", 1);
    let err = error(&entry, "");
    assert_eq!(
        err,
        KeyringError::MalformedKid {
            which: KeyPosition::Current
        }
    );
    let message = err.to_string();
    assert!(message.contains("key id of the current key"), "{message}");
    assert_no_key_text(&message, &entry);
}

#[test]
fn duplicate_explicit_kid_is_rejected_naming_the_kid() {
    let err = error(&format!("main:{KEY_A}"), &format!("main:{KEY_B}"));
    assert_eq!(err, KeyringError::DuplicateKid { kid: "main".into() });
    assert!(err.to_string().contains("\"main\""), "{err}");
}

#[test]
fn same_key_given_twice_without_prefix_is_a_duplicate_kid() {
    let err = error(KEY_A, &format!("{KEY_B},{KEY_A}"));
    assert_eq!(
        err,
        KeyringError::DuplicateKid {
            kid: KEY_A_KID.into()
        }
    );
    assert_no_key_text(&err.to_string(), KEY_A);
}

#[test]
fn debug_output_redacts_key_material_but_shows_kids() {
    let keyring = AesGcmKeyring::from_config(&format!("cur:{KEY_A}"), KEY_B).unwrap();
    let printed = format!("{keyring:?}");
    assert!(printed.contains("[REDACTED]"), "{printed}");
    assert!(printed.contains("cur"), "{printed}");
    assert_no_key_text(&printed, KEY_A);
    assert_no_key_text(&printed, KEY_B);
    // Nor the bytes in decimal, as a derived `Debug` of `[u8; 32]` would print them.
    assert!(!printed.contains("161, 178, 195"), "{printed}");
}
