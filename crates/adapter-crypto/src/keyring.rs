//! The configured master keys: one current key (seals and opens) and any number of
//! previous keys (open only), looked up by key id.

use crate::{
    error::{KeyPosition, KeyringError},
    master_key::MasterKey,
};

/// The parsed `USER_SETTINGS_ENCRYPTION_KEY` and `USER_SETTINGS_ENCRYPTION_KEYS_PREVIOUS`.
#[derive(Debug)]
pub(crate) struct Keyring {
    current: MasterKey,
    previous: Vec<MasterKey>,
}

impl Keyring {
    /// Parses the current key and the comma-separated previous keys. Entries are trimmed;
    /// blank previous entries are ignored (so trailing commas are harmless).
    pub(crate) fn from_config(current: &str, previous: &str) -> Result<Self, KeyringError> {
        let current = current.trim();
        if current.is_empty() {
            return Err(KeyringError::MissingCurrentKey);
        }
        let current = MasterKey::parse(current, KeyPosition::Current)?;
        let mut keyring = Self {
            current,
            previous: Vec::new(),
        };
        let entries = previous.split(',').map(str::trim).filter(|e| !e.is_empty());
        for (index, entry) in entries.enumerate() {
            let key = MasterKey::parse(entry, KeyPosition::Previous(index + 1))?;
            // A repeated kid would make decryption ambiguous.
            if keyring.get(key.kid()).is_some() {
                return Err(KeyringError::DuplicateKid {
                    kid: key.kid().to_owned(),
                });
            }
            keyring.previous.push(key);
        }
        Ok(keyring)
    }

    /// The key new envelopes are sealed with.
    pub(crate) fn current(&self) -> &MasterKey {
        &self.current
    }

    /// The key with id `kid`, current or previous.
    pub(crate) fn get(&self, kid: &str) -> Option<&MasterKey> {
        self.keys().find(|key| key.kid() == kid)
    }

    /// Every key, current first, then previous keys in configured order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &MasterKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const K2: &str = "2222222222222222222222222222222222222222222222222222222222222222";
    const K3: &str = "3333333333333333333333333333333333333333333333333333333333333333";

    fn kids(keyring: &Keyring) -> Vec<&str> {
        keyring.keys().map(MasterKey::kid).collect()
    }

    #[test]
    fn keys_list_current_first_then_previous_in_order() {
        let keyring =
            Keyring::from_config(&format!("c:{K1}"), &format!("p1:{K2},p2:{K3}")).unwrap();
        assert_eq!(kids(&keyring), ["c", "p1", "p2"]);
        assert_eq!(keyring.current().kid(), "c");
    }

    #[test]
    fn whitespace_around_entries_and_blank_entries_are_ignored() {
        let keyring =
            Keyring::from_config(&format!("  c:{K1}\n"), &format!(" , p1:{K2} ,, \tp2:{K3},"))
                .unwrap();
        assert_eq!(kids(&keyring), ["c", "p1", "p2"]);
    }

    #[test]
    fn get_finds_current_and_previous_keys_by_kid() {
        let keyring = Keyring::from_config(&format!("c:{K1}"), &format!("p:{K2}")).unwrap();
        assert_eq!(keyring.get("c").map(MasterKey::kid), Some("c"));
        assert_eq!(keyring.get("p").map(MasterKey::kid), Some("p"));
        assert!(keyring.get("x").is_none());
    }

    #[test]
    fn previous_key_errors_count_non_blank_entries() {
        let err = Keyring::from_config(K1, &format!("{K2},,{}", &K3[..10])).unwrap_err();
        assert_eq!(
            err,
            KeyringError::KeyLength {
                which: KeyPosition::Previous(2),
                found: 10
            }
        );
    }

    #[test]
    fn duplicate_kid_between_previous_keys_is_rejected() {
        let err = Keyring::from_config(K1, &format!("p:{K2},p:{K3}")).unwrap_err();
        assert_eq!(err, KeyringError::DuplicateKid { kid: "p".into() });
    }
}
