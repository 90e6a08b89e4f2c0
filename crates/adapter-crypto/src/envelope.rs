//! The binary fields of an envelope: unpadded base64url text in storage, checked
//! fixed-length bytes in memory.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use domain::secrets::CipherError;
use ring::aead::NONCE_LEN;

/// Length of the HKDF salt in bytes.
pub(crate) const SALT_LEN: usize = 32;
/// Length of the AES-GCM tag in bytes (`ring` does not export its constant).
pub(crate) const TAG_LEN: usize = 16;

/// Salt, nonce and ciphertext of an envelope, decoded and length-checked.
pub(crate) struct Decoded {
    pub(crate) salt: [u8; SALT_LEN],
    pub(crate) nonce: [u8; NONCE_LEN],
    /// Ciphertext followed by the tag; at least [`TAG_LEN`] bytes.
    pub(crate) ciphertext: Vec<u8>,
}

/// Decodes the three binary fields; any bad encoding or length is [`CipherError::Malformed`].
pub(crate) fn decode(salt: &str, nonce: &str, ciphertext: &str) -> Result<Decoded, CipherError> {
    let salt = decode_field(salt)?
        .try_into()
        .map_err(|_| CipherError::Malformed)?;
    let nonce = decode_field(nonce)?
        .try_into()
        .map_err(|_| CipherError::Malformed)?;
    let ciphertext = decode_field(ciphertext)?;
    if ciphertext.len() < TAG_LEN {
        return Err(CipherError::Malformed);
    }
    Ok(Decoded {
        salt,
        nonce,
        ciphertext,
    })
}

/// Unpadded base64url text of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn decode_field(text: &str) -> Result<Vec<u8>, CipherError> {
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| CipherError::Malformed)
}

#[cfg(test)]
mod tests {
    use ring::aead::AES_256_GCM;

    use super::*;

    #[test]
    fn tag_length_matches_ring() {
        assert_eq!(TAG_LEN, AES_256_GCM.tag_len());
    }

    fn fields(salt: usize, nonce: usize, ciphertext: usize) -> [String; 3] {
        [
            encode(&vec![1; salt]),
            encode(&vec![2; nonce]),
            encode(&vec![3; ciphertext]),
        ]
    }

    fn decode_fields([salt, nonce, ct]: &[String; 3]) -> Result<Decoded, CipherError> {
        decode(salt, nonce, ct)
    }

    #[test]
    fn well_formed_fields_decode_to_their_bytes() {
        let decoded = decode_fields(&fields(32, 12, 16)).unwrap();
        assert_eq!(decoded.salt, [1; 32]);
        assert_eq!(decoded.nonce, [2; 12]);
        assert_eq!(decoded.ciphertext, vec![3; 16]);
    }

    #[test]
    fn salt_of_other_than_32_bytes_is_malformed() {
        for len in [0, 31, 33] {
            assert_eq!(
                decode_fields(&fields(len, 12, 16)).err(),
                Some(CipherError::Malformed)
            );
        }
    }

    #[test]
    fn nonce_of_other_than_12_bytes_is_malformed() {
        for len in [0, 11, 13] {
            assert_eq!(
                decode_fields(&fields(32, len, 16)).err(),
                Some(CipherError::Malformed)
            );
        }
    }

    #[test]
    fn ciphertext_shorter_than_the_tag_is_malformed() {
        for len in [0, 15] {
            assert_eq!(
                decode_fields(&fields(32, 12, len)).err(),
                Some(CipherError::Malformed)
            );
        }
    }

    #[test]
    fn padded_standard_or_invalid_base64_is_malformed() {
        let [salt, nonce, _] = fields(32, 12, 16);
        let bytes = [0xfb_u8; 17]; // encodes with '-'/'_' in url-safe, '+'/'/' in standard
        for ct in [
            format!("{}=", encode(&bytes)),
            encode(&bytes).replace('-', "+").replace('_', "/"),
            "not base64!".to_owned(),
        ] {
            assert_eq!(
                decode(&salt, &nonce, &ct).err(),
                Some(CipherError::Malformed),
                "{ct}"
            );
        }
    }
}
