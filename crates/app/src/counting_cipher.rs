//! `CountingCipher`: the cipher port, counting seals and opens and their failures (for the
//! metrics; no label says whose or which secret).

use domain::{
    UserId,
    ports::SecretCipher,
    secrets::{CipherError, Envelope},
    settings::SettingKey,
};
use prometheus::{IntCounter, IntCounterVec};
use zeroize::Zeroizing;

/// The counters of the four outcomes.
#[derive(Clone)]
pub struct CipherCounters {
    seal_ok: IntCounter,
    seal_error: IntCounter,
    open_ok: IntCounter,
    open_error: IntCounter,
}

impl CipherCounters {
    /// The counters of `operations` (labels `operation`, `outcome`).
    pub fn new(operations: &IntCounterVec) -> Self {
        let counter = |operation, outcome| operations.with_label_values(&[operation, outcome]);
        Self {
            seal_ok: counter("seal", "ok"),
            seal_error: counter("seal", "error"),
            open_ok: counter("open", "ok"),
            open_error: counter("open", "error"),
        }
    }
}

fn count<T, E>(result: Result<T, E>, ok: &IntCounter, error: &IntCounter) -> Result<T, E> {
    match &result {
        Ok(_) => ok.inc(),
        Err(_) => error.inc(),
    }
    result
}

/// The cipher `C`, counted.
pub struct CountingCipher<C> {
    inner: C,
    counters: CipherCounters,
}

impl<C> CountingCipher<C> {
    /// Counts the operations of `inner`.
    pub fn new(inner: C, counters: CipherCounters) -> Self {
        Self { inner, counters }
    }
}

impl<C: SecretCipher> SecretCipher for CountingCipher<C> {
    fn seal(
        &self,
        user: UserId,
        key: &SettingKey,
        plaintext: &[u8],
    ) -> Result<Envelope, CipherError> {
        let c = &self.counters;
        count(
            self.inner.seal(user, key, plaintext),
            &c.seal_ok,
            &c.seal_error,
        )
    }

    fn open(
        &self,
        user: UserId,
        key: &SettingKey,
        envelope: &Envelope,
    ) -> Result<Zeroizing<Vec<u8>>, CipherError> {
        let c = &self.counters;
        count(
            self.inner.open(user, key, envelope),
            &c.open_ok,
            &c.open_error,
        )
    }

    fn current_kid(&self) -> String {
        self.inner.current_kid()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use domain::ports::MockSecretCipher;
    use prometheus::Opts;
    use uuid::Uuid;

    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            v: 1,
            alg: "A256GCM-HKDF-SHA256".into(),
            kid: "k1".into(),
            salt: String::new(),
            nonce: String::new(),
            ciphertext: String::new(),
        }
    }

    #[test]
    fn seals_and_opens_are_counted_by_outcome() {
        let operations =
            IntCounterVec::new(Opts::new("ops", "ops"), &["operation", "outcome"]).unwrap();
        let mut mock = MockSecretCipher::new();
        mock.expect_seal().returning(|_, _, _| Ok(envelope()));
        mock.expect_open()
            .returning(|_, _, _| Err(CipherError::Integrity));
        let cipher = CountingCipher::new(mock, CipherCounters::new(&operations));
        let (user, key) = (
            UserId::new(Uuid::new_v4()),
            SettingKey::parse("a.b").unwrap(),
        );

        cipher.seal(user, &key, b"x").unwrap();
        cipher.seal(user, &key, b"y").unwrap();
        assert!(cipher.open(user, &key, &envelope()).is_err());

        let count = |op, outcome| operations.with_label_values(&[op, outcome]).get();
        assert_eq!(count("seal", "ok"), 2);
        assert_eq!(count("open", "error"), 1);
        assert_eq!(count("open", "ok"), 0);
    }
}
