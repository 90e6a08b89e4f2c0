//! Per-ciphertext key derivation: HKDF-SHA256(master key, salt, info) → AES-256-GCM key.
//!
//! A fresh 32-byte salt per envelope gives every ciphertext its own AES key, so the
//! 2^32-messages bound of random 96-bit nonces under one key never applies.

use domain::secrets::CipherError;
use ring::{
    aead::{AES_256_GCM, LessSafeKey, UnboundKey},
    hkdf::{HKDF_SHA256, Salt},
};
use zeroize::Zeroizing;

use crate::{envelope::SALT_LEN, master_key::MasterKey};

/// HKDF info: names this service and envelope format, so the same master key used
/// elsewhere could never yield the same derived keys.
const INFO: &[u8] = b"user-settings/v1";

/// The AES-256-GCM key for the envelope salted with `salt` under `master`.
pub(crate) fn derive(
    master: &MasterKey,
    salt: &[u8; SALT_LEN],
) -> Result<LessSafeKey, CipherError> {
    let prk = Salt::new(HKDF_SHA256, salt).extract(master.material());
    let mut key_bytes = Zeroizing::new([0u8; 32]);
    prk.expand(&[INFO], &AES_256_GCM)
        .and_then(|okm| okm.fill(key_bytes.as_mut_slice()))
        .map_err(|_| CipherError::Internal("key derivation failed".to_owned()))?;
    let key = UnboundKey::new(&AES_256_GCM, key_bytes.as_slice())
        .map_err(|_| CipherError::Internal("key derivation failed".to_owned()))?;
    Ok(LessSafeKey::new(key))
}
