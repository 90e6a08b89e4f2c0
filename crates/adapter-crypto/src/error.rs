//! Errors of key configuration and key generation. None of them carries key material.

use std::fmt;

/// Which configured key an error is about, as the operator would count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPosition {
    /// `USER_SETTINGS_ENCRYPTION_KEY`.
    Current,
    /// The n-th (1-based, blanks not counted) entry of `USER_SETTINGS_ENCRYPTION_KEYS_PREVIOUS`.
    Previous(usize),
}

impl fmt::Display for KeyPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Current => f.write_str("the current key"),
            Self::Previous(n) => write!(f, "previous key #{n}"),
        }
    }
}

/// Why the configured keys cannot form a keyring. Messages name the key by position and
/// never quote it: the text of a key entry may be key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    /// No current key is configured.
    #[error("the current encryption key is missing or empty")]
    MissingCurrentKey,
    /// The key part is not 64 characters long.
    #[error("{which} must be 64 hex characters (32 bytes), but it has {found} characters")]
    KeyLength {
        /// The offending key.
        which: KeyPosition,
        /// How many characters the key part has.
        found: usize,
    },
    /// The key part contains a character that is not a hex digit.
    #[error("{which} contains a character that is not a hex digit (at position {position})")]
    KeyNotHex {
        /// The offending key.
        which: KeyPosition,
        /// 1-based character position within the key part.
        position: usize,
    },
    /// The `kid:` prefix is not 1 to 64 characters of `[A-Za-z0-9_-]`.
    #[error("the key id of {which} must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")]
    MalformedKid {
        /// The offending key.
        which: KeyPosition,
    },
    /// Two configured keys have the same id (explicit, or derived from the same key bytes).
    #[error("two configured encryption keys have the same key id {kid:?}")]
    DuplicateKid {
        /// The repeated id (ids are not secret: every envelope carries one).
        kid: String,
    },
}

/// The system's random number generator failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomnessError;
