//! `AesGcmKeyring`: seals and opens secret envelopes, implementing the `SecretCipher` port.

use std::fmt;

use domain::{
    UserId,
    ports::SecretCipher,
    secrets::{CipherError, ENVELOPE_ALG, ENVELOPE_VERSION, Envelope},
    settings::SettingKey,
};
use ring::{
    aead::{Aad, NONCE_LEN, Nonce},
    rand::{SecureRandom, SystemRandom},
};
use zeroize::Zeroizing;

use crate::{
    aad::{self, Header},
    envelope::{self, SALT_LEN, TAG_LEN},
    error::KeyringError,
    kdf,
    keyring::Keyring,
    master_key::MasterKey,
};

/// The configured master keys plus the random source for salts and nonces. Share it with
/// `Arc`; it holds key material and is deliberately not `Clone`.
pub struct AesGcmKeyring {
    keys: Keyring,
    rng: SystemRandom,
}

impl AesGcmKeyring {
    /// Builds the keyring from `USER_SETTINGS_ENCRYPTION_KEY` (`current`) and
    /// `USER_SETTINGS_ENCRYPTION_KEYS_PREVIOUS` (`previous`, comma-separated, may be empty).
    /// Each entry is `[kid:]<64 hex chars>`; without a prefix the kid is the first 8 hex
    /// characters of SHA-256 of the key bytes.
    ///
    /// # Errors
    /// [`KeyringError`] for a missing current key, a malformed key or kid, or a duplicate kid.
    /// Messages never contain key material.
    pub fn from_config(current: &str, previous: &str) -> Result<Self, KeyringError> {
        Ok(Self {
            keys: Keyring::from_config(current, previous)?,
            rng: SystemRandom::new(),
        })
    }

    /// Whether a key with id `kid` is configured (current or previous).
    pub fn knows_kid(&self, kid: &str) -> bool {
        self.keys.get(kid).is_some()
    }

    /// The configured key ids, current first.
    pub fn kids(&self) -> Vec<String> {
        self.keys.keys().map(|key| key.kid().to_owned()).collect()
    }

    /// Seals with a caller-chosen salt and nonce. [`SecretCipher::seal`] draws them at random
    /// and calls this, so there is one sealing path. Only for known-answer tests: reusing a
    /// salt/nonce pair breaks confidentiality.
    ///
    /// # Errors
    /// [`CipherError::Internal`] when key derivation or encryption fails.
    #[doc(hidden)]
    pub fn seal_with(
        &self,
        user: UserId,
        key: &SettingKey,
        plaintext: &[u8],
        salt: [u8; SALT_LEN],
        nonce: [u8; NONCE_LEN],
    ) -> Result<Envelope, CipherError> {
        let master = self.keys.current();
        let header = Header {
            v: ENVELOPE_VERSION,
            alg: ENVELOPE_ALG,
            kid: master.kid(),
        };
        let aad = aad::build(&header, user, key);
        let aead_key = kdf::derive(master, &salt)?;
        // Room for the tag up front, so no reallocation leaves plaintext behind; the buffer
        // is zeroed on drop in case sealing fails with plaintext still in it.
        let mut in_out = Zeroizing::new(Vec::with_capacity(plaintext.len() + TAG_LEN));
        in_out.extend_from_slice(plaintext);
        aead_key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut *in_out,
            )
            .map_err(|_| CipherError::Internal("encryption failed".to_owned()))?;
        Ok(Envelope {
            v: ENVELOPE_VERSION,
            alg: ENVELOPE_ALG.to_owned(),
            kid: master.kid().to_owned(),
            salt: envelope::encode(&salt),
            nonce: envelope::encode(&nonce),
            ciphertext: envelope::encode(&in_out),
        })
    }

    fn random<const N: usize>(&self) -> Result<[u8; N], CipherError> {
        let mut bytes = [0u8; N];
        self.rng.fill(&mut bytes).map_err(|_| {
            CipherError::Internal("the system random number generator failed".to_owned())
        })?;
        Ok(bytes)
    }

    fn key_for(&self, kid: &str) -> Result<&MasterKey, CipherError> {
        self.keys.get(kid).ok_or_else(|| CipherError::UnknownKid {
            kid: kid.to_owned(),
        })
    }
}

impl SecretCipher for AesGcmKeyring {
    fn seal(
        &self,
        user: UserId,
        key: &SettingKey,
        plaintext: &[u8],
    ) -> Result<Envelope, CipherError> {
        let salt = self.random()?;
        let nonce = self.random()?;
        self.seal_with(user, key, plaintext, salt, nonce)
    }

    fn open(
        &self,
        user: UserId,
        key: &SettingKey,
        sealed: &Envelope,
    ) -> Result<Zeroizing<Vec<u8>>, CipherError> {
        // The AAD binds these too, so an edited header would fail authentication anyway;
        // checking first gives the clearer error.
        if sealed.v != ENVELOPE_VERSION || sealed.alg != ENVELOPE_ALG {
            return Err(CipherError::Malformed);
        }
        let master = self.key_for(&sealed.kid)?;
        let decoded = envelope::decode(&sealed.salt, &sealed.nonce, &sealed.ciphertext)?;
        let header = Header {
            v: sealed.v,
            alg: &sealed.alg,
            kid: &sealed.kid,
        };
        let aad = aad::build(&header, user, key);
        let aead_key = kdf::derive(master, &decoded.salt)?;
        let mut in_out = Zeroizing::new(decoded.ciphertext);
        let plaintext_len = aead_key
            .open_in_place(
                Nonce::assume_unique_for_key(decoded.nonce),
                Aad::from(aad),
                &mut in_out,
            )
            .map_err(|_| CipherError::Integrity)?
            .len();
        in_out.truncate(plaintext_len);
        Ok(in_out)
    }

    fn current_kid(&self) -> String {
        self.keys.current().kid().to_owned()
    }
}

impl fmt::Debug for AesGcmKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Keyring` and `MasterKey` print kids and `[REDACTED]` for the key material.
        f.debug_struct("AesGcmKeyring")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}
