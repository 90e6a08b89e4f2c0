//! Cryptography adapter: the AES-256-GCM keyring behind the `SecretCipher` port.
