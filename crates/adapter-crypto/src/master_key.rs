//! One master key: parsing a `[kid:]<64 hex>` entry, deriving its default id, and holding
//! the 32 key bytes where they are zeroed on drop and never printed.

use std::fmt;

use ring::{
    digest::{SHA256, digest},
    rand::{SecureRandom, SystemRandom},
};
use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};

use crate::error::{KeyPosition, KeyringError, RandomnessError};

/// Length of a master key in bytes.
pub(crate) const KEY_LEN: usize = 32;
/// Longest accepted key id.
const MAX_KID_LEN: usize = 64;

/// A named 32-byte master key. The bytes live on the heap (moves copy no key material) and
/// are zeroed on drop.
pub(crate) struct MasterKey {
    kid: String,
    material: SecretBox<[u8; KEY_LEN]>,
}

impl MasterKey {
    /// Parses one trimmed entry `[kid:]<64 hex chars>`.
    pub(crate) fn parse(entry: &str, which: KeyPosition) -> Result<Self, KeyringError> {
        let (kid, hex_part) = match entry.split_once(':') {
            Some((kid, hex_part)) => {
                check_kid(kid, which)?;
                (Some(kid), hex_part)
            }
            None => (None, entry),
        };
        let material = decode_key(hex_part, which)?;
        let kid = match kid {
            Some(kid) => kid.to_owned(),
            None => derive_kid(material.expose_secret()),
        };
        Ok(Self { kid, material })
    }

    /// The key id.
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The key bytes, for key derivation only.
    pub(crate) fn material(&self) -> &[u8; KEY_LEN] {
        self.material.expose_secret()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterKey")
            .field("kid", &self.kid)
            .field("material", &format_args!("[REDACTED]"))
            .finish()
    }
}

/// The default key id: first 8 hex characters (4 bytes) of SHA-256 of the key bytes. It
/// identifies the key without revealing it.
pub(crate) fn derive_kid(material: &[u8; KEY_LEN]) -> String {
    let hash = digest(&SHA256, material);
    hex::encode(&hash.as_ref()[..4])
}

/// A fresh random master key as 64 lowercase hex characters (`user-settings keys generate`).
///
/// # Errors
/// [`RandomnessError`] when the system random number generator fails.
pub fn generate_key_hex() -> Result<String, RandomnessError> {
    let mut material = SecretBox::new(Box::new([0u8; KEY_LEN]));
    SystemRandom::new()
        .fill(material.expose_secret_mut())
        .map_err(|_| RandomnessError)?;
    Ok(hex::encode(material.expose_secret()))
}

fn check_kid(kid: &str, which: KeyPosition) -> Result<(), KeyringError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    if kid.is_empty() || kid.len() > MAX_KID_LEN || !kid.bytes().all(allowed) {
        return Err(KeyringError::MalformedKid { which });
    }
    Ok(())
}

/// Decodes straight into the zeroizing heap buffer so no stray copy of the key remains.
/// Errors are our own: `hex`'s would quote the offending character.
fn decode_key(text: &str, which: KeyPosition) -> Result<SecretBox<[u8; KEY_LEN]>, KeyringError> {
    let found = text.chars().count();
    if found != 2 * KEY_LEN {
        return Err(KeyringError::KeyLength { which, found });
    }
    if let Some(index) = text.chars().position(|c| !c.is_ascii_hexdigit()) {
        return Err(KeyringError::KeyNotHex {
            which,
            position: index + 1,
        });
    }
    let mut material = SecretBox::new(Box::new([0u8; KEY_LEN]));
    // Cannot fail after the checks above; map it anyway rather than panic.
    hex::decode_to_slice(text, material.expose_secret_mut())
        .map_err(|_| KeyringError::KeyNotHex { which, position: 1 })?;
    Ok(material)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_HEX: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    // printf 000102...1e1f | xxd -r -p | sha256sum → 630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd
    const KEY_SHA256_PREFIX: &str = "630dcd29";

    #[test]
    fn unprefixed_kid_is_first_8_hex_of_sha256_of_key_bytes() {
        let key = MasterKey::parse(KEY_HEX, KeyPosition::Current).unwrap();
        assert_eq!(key.kid(), KEY_SHA256_PREFIX);
    }

    #[test]
    fn uppercase_hex_gives_the_same_key_and_kid() {
        let lower = MasterKey::parse(KEY_HEX, KeyPosition::Current).unwrap();
        let upper = MasterKey::parse(&KEY_HEX.to_uppercase(), KeyPosition::Current).unwrap();
        assert_eq!(lower.material(), upper.material());
        assert_eq!(upper.kid(), KEY_SHA256_PREFIX);
    }

    #[test]
    fn prefixed_entry_uses_the_given_kid_and_decodes_the_key() {
        let key = MasterKey::parse(&format!("k-2024_a:{KEY_HEX}"), KeyPosition::Current).unwrap();
        assert_eq!(key.kid(), "k-2024_a");
        let expected: Vec<u8> = (0u8..32).collect();
        assert_eq!(key.material().as_slice(), expected.as_slice());
    }

    #[test]
    fn kid_of_64_characters_is_accepted_and_65_is_not() {
        let ok = format!("{}:{KEY_HEX}", "a".repeat(64));
        assert!(MasterKey::parse(&ok, KeyPosition::Current).is_ok());
        let too_long = format!("{}:{KEY_HEX}", "a".repeat(65));
        assert_eq!(
            MasterKey::parse(&too_long, KeyPosition::Current).unwrap_err(),
            KeyringError::MalformedKid {
                which: KeyPosition::Current
            }
        );
    }

    #[test]
    fn empty_kid_or_kid_with_other_characters_is_malformed() {
        for kid in ["", "a b", "a.b", "ä", "a/b"] {
            let entry = format!("{kid}:{KEY_HEX}");
            assert_eq!(
                MasterKey::parse(&entry, KeyPosition::Previous(3)).unwrap_err(),
                KeyringError::MalformedKid {
                    which: KeyPosition::Previous(3)
                },
                "kid {kid:?}"
            );
        }
    }

    #[test]
    fn key_of_wrong_length_reports_its_length() {
        let err = MasterKey::parse(&KEY_HEX[..62], KeyPosition::Current).unwrap_err();
        assert_eq!(
            err,
            KeyringError::KeyLength {
                which: KeyPosition::Current,
                found: 62
            }
        );
    }

    #[test]
    fn key_with_non_hex_character_reports_its_position() {
        let bad = format!("{}g{}", &KEY_HEX[..9], &KEY_HEX[10..]);
        let err = MasterKey::parse(&bad, KeyPosition::Previous(1)).unwrap_err();
        assert_eq!(
            err,
            KeyringError::KeyNotHex {
                which: KeyPosition::Previous(1),
                position: 10
            }
        );
    }

    #[test]
    fn debug_redacts_the_key_material() {
        let key = MasterKey::parse(KEY_HEX, KeyPosition::Current).unwrap();
        let printed = format!("{key:?}");
        assert!(printed.contains("[REDACTED]"), "{printed}");
        assert!(printed.contains(KEY_SHA256_PREFIX), "{printed}");
        assert!(!printed.contains("0a0b0c"), "{printed}");
        assert!(!printed.contains("10, 11, 12"), "{printed}");
    }

    #[test]
    fn generated_key_is_64_lowercase_hex_and_parses() {
        let generated = generate_key_hex().unwrap();
        assert_eq!(generated.len(), 64);
        assert!(
            generated
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert!(MasterKey::parse(&generated, KeyPosition::Current).is_ok());
    }

    #[test]
    fn two_generated_keys_differ() {
        assert_ne!(generate_key_hex().unwrap(), generate_key_hex().unwrap());
    }
}
