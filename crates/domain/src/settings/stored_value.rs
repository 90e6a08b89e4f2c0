//! `StoredValue`: what a settings row holds, a plain JSON value or a sealed envelope, as a
//! type rather than a convention on `data_type`; and [`seal`], the one way a plaintext
//! becomes a stored secret.

use serde_json::Value;

use super::SettingKey;
use crate::{
    ids::UserId,
    ports::SecretCipher,
    secrets::{CipherError, Envelope, SecretValue},
};

/// The value of a stored setting. A secret can only be `Sealed`: there is no way to hold a
/// plaintext where an envelope belongs, and redaction is a `match`.
#[derive(Clone, Debug, PartialEq)]
pub enum StoredValue {
    /// A clear JSON value (every data type but `encrypted`).
    Plain(Value),
    /// A secret, sealed for its cell `(user, key)`.
    Sealed(Envelope),
}

impl StoredValue {
    /// Whether the value is a sealed secret.
    pub fn is_sealed(&self) -> bool {
        matches!(self, StoredValue::Sealed(_))
    }

    /// The clear value; `None` for a secret.
    pub fn plain(&self) -> Option<&Value> {
        match self {
            StoredValue::Plain(value) => Some(value),
            StoredValue::Sealed(_) => None,
        }
    }

    /// The envelope of a secret; `None` for a clear value.
    pub fn sealed(&self) -> Option<&Envelope> {
        match self {
            StoredValue::Plain(_) => None,
            StoredValue::Sealed(envelope) => Some(envelope),
        }
    }

    /// The JSON the store keeps: the value itself, or the envelope's members.
    pub fn to_json(&self) -> Value {
        match self {
            StoredValue::Plain(value) => value.clone(),
            StoredValue::Sealed(envelope) => envelope.to_value(),
        }
    }
}

impl From<Value> for StoredValue {
    fn from(value: Value) -> Self {
        StoredValue::Plain(value)
    }
}

impl From<Envelope> for StoredValue {
    fn from(envelope: Envelope) -> Self {
        StoredValue::Sealed(envelope)
    }
}

/// A clear value equals the same JSON; a sealed one equals no plain JSON.
impl PartialEq<Value> for StoredValue {
    fn eq(&self, other: &Value) -> bool {
        self.plain() == Some(other)
    }
}

/// Seals `plaintext` for the cell `(user, key)`: the single step by which every path that
/// stores a secret (a client's write, an integration's credentials, key rotation) turns a
/// plaintext into what the store keeps.
///
/// # Errors
/// When the cipher fails.
pub fn seal<C: SecretCipher + ?Sized>(
    cipher: &C,
    user: UserId,
    key: &SettingKey,
    plaintext: &SecretValue,
) -> Result<Envelope, CipherError> {
    cipher.seal(user, key, plaintext.expose_bytes())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            v: 1,
            alg: "A256GCM-HKDF-SHA256".to_owned(),
            kid: "k1".to_owned(),
            salt: "s".to_owned(),
            nonce: "n".to_owned(),
            ciphertext: "c".to_owned(),
        }
    }

    #[test]
    fn a_sealed_value_equals_no_plain_json_not_even_its_own_members() {
        let sealed = StoredValue::Sealed(envelope());
        assert_ne!(sealed, envelope().to_value());
        assert!(sealed.plain().is_none());
    }

    #[test]
    fn the_store_keeps_the_envelope_members_of_a_secret() {
        assert_eq!(
            StoredValue::Sealed(envelope()).to_json(),
            envelope().to_value()
        );
        assert_eq!(StoredValue::Plain(json!([1])).to_json(), json!([1]));
    }
}
