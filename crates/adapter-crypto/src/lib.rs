//! Cryptography adapter: the AES-256-GCM keyring behind the `SecretCipher` port.
//!
//! [`AesGcmKeyring`] is built from the configured master keys
//! ([`AesGcmKeyring::from_config`]) and seals each secret under a per-ciphertext key derived
//! with HKDF-SHA256 from the current master key and a random salt. The additional
//! authenticated data binds every ciphertext to its envelope header and to its cell
//! `(user, setting key)` (docs/design.md, "Secrets"). This is the only crate that knows `ring`.

mod aad;
mod cipher;
mod envelope;
mod error;
mod kdf;
mod keyring;
mod master_key;

pub use cipher::AesGcmKeyring;
pub use error::{KeyPosition, KeyringError, RandomnessError};
pub use master_key::generate_key_hex;
