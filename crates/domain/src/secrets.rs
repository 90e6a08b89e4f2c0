//! Secrets: the sealed-envelope format, plaintext holders that never print, and cipher errors.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use zeroize::Zeroizing;

/// Version of the envelope format written today.
pub const ENVELOPE_VERSION: u32 = 1;
/// Algorithm name written today: per-ciphertext key from HKDF-SHA256, then AES-256-GCM.
pub const ENVELOPE_ALG: &str = "A256GCM-HKDF-SHA256";

/// The JSON stored as the value of an encrypted setting (docs/design.md, "Secrets"). Binary fields are
/// unpadded base64url.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Format version.
    pub v: u32,
    /// Algorithm name.
    pub alg: String,
    /// Identifier of the master key that sealed it.
    pub kid: String,
    /// 32-byte HKDF salt.
    pub salt: String,
    /// 12-byte AES-GCM nonce.
    pub nonce: String,
    /// Ciphertext followed by the 16-byte tag.
    pub ciphertext: String,
}

impl Envelope {
    /// Reads an envelope from a stored JSON value.
    ///
    /// # Errors
    /// [`CipherError::Malformed`] when the value is not an envelope.
    pub fn from_value(value: &Value) -> Result<Self, CipherError> {
        Envelope::deserialize(value).map_err(|_| CipherError::Malformed)
    }

    /// The envelope as the JSON value to store.
    pub fn to_value(&self) -> Value {
        // Serializing a struct of strings and integers cannot fail.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Plaintext secret bytes (the JSON text of the secret value). Zeroed on drop; `Debug` and
/// `Display` print `[REDACTED]`.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    /// Wraps a JSON value as a secret.
    pub fn from_json(value: &Value) -> Self {
        Self(Zeroizing::new(value.to_string().into_bytes()))
    }

    /// Wraps plaintext bytes (as returned by a cipher).
    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }

    /// The plaintext bytes. Call only where the plaintext is meant to leave the service.
    pub fn expose_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The plaintext as a JSON value.
    ///
    /// # Errors
    /// [`CipherError::Malformed`] when the plaintext is not JSON.
    pub fn expose_json(&self) -> Result<Value, CipherError> {
        serde_json::from_slice(&self.0).map_err(|_| CipherError::Malformed)
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// Why a secret could not be sealed or opened. Carries no key material and no plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// The envelope names a key that is not configured.
    #[error("no configured encryption key has id {kid:?}")]
    UnknownKid {
        /// The key id found in the envelope.
        kid: String,
    },
    /// The stored value is not a well-formed envelope of a supported version/algorithm.
    #[error("the stored value is not a valid encryption envelope")]
    Malformed,
    /// Authentication failed: the ciphertext, its header or its cell binding was altered.
    #[error("the ciphertext failed authentication")]
    Integrity,
    /// The cipher itself failed (e.g. no randomness).
    #[error("encryption failed: {0}")]
    Internal(String),
}
