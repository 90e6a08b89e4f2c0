//! Unit tests of the integration use cases against mockall mocks of the ports. The settings
//! repository mock is backed by a shared map, so the tests observe what was stored.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod catalogue;
mod connections;
mod tokens;
mod vault;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use secrecy::SecretString;
use serde_json::Value;
use time::{Duration, OffsetDateTime, macros::datetime};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::{
    ConnectionMetadata, CredentialVault, Credentials, Grant, MockClock, ProviderId, RemoteAccount,
    RemoteUserId, TokenSet, metadata_key,
};
use crate::{
    UserId,
    audit::{Actor, Role},
    ports::{MockSecretCipher, MockSettingsRepository, SettingDeleteError, SettingWriteError},
    registry::KeyRegistry,
    secrets::Envelope,
    services::WritePipeline,
    settings::{AllowedCategories, Limits, Precondition, Setting, SettingWrite, UpsertOutcome},
};

/// The instant every test runs at.
const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

fn user() -> UserId {
    UserId::new(Uuid::from_u128(0x42))
}

fn service_actor() -> Actor {
    Actor {
        id: UserId::new(Uuid::from_u128(0x5e)),
        role: Role::Service,
        request_id: Some("req-7".into()),
        client_request_id: None,
    }
}

fn clock() -> MockClock {
    let mut clock = MockClock::new();
    clock.expect_now().return_const(NOW);
    clock
}

/// The rows of one user, by key, as the repository mock stores them.
#[derive(Clone, Default)]
struct Rows(Arc<Mutex<HashMap<String, Setting>>>);

impl Rows {
    fn get(&self, key: &str) -> Option<Setting> {
        self.0.lock().unwrap().get(key).cloned()
    }

    fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.0.lock().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }

    fn upsert(
        &self,
        write: &SettingWrite,
        expected: Precondition,
    ) -> Result<UpsertOutcome, SettingWriteError> {
        let mut rows = self.0.lock().unwrap();
        let current = rows.get(write.key.as_str());
        match (expected, current) {
            (Precondition::Version(v), Some(row)) if row.version != v => {
                return Err(SettingWriteError::VersionConflict {
                    current: Some(row.version),
                });
            }
            (Precondition::Version(_), None) => {
                return Err(SettingWriteError::VersionConflict { current: None });
            }
            (Precondition::Absent, Some(row)) => {
                return Err(SettingWriteError::VersionConflict {
                    current: Some(row.version),
                });
            }
            _ => {}
        }
        let version = current.map_or(1, |r| r.version + 1);
        let setting = Setting {
            user_id: user(),
            key: write.key.clone(),
            value: write.value.clone(),
            description: write.description.clone(),
            category: write.category.clone(),
            data_type: write.data_type,
            version,
            created_at: NOW,
            updated_at: NOW,
        };
        rows.insert(write.key.as_str().to_owned(), setting.clone());
        Ok(UpsertOutcome {
            setting,
            created: version == 1,
        })
    }

    /// The decrypted value stored under `key` (see [`cipher`]).
    fn plaintext(&self, key: &str) -> Value {
        let row = self.get(key).expect("row exists");
        let envelope = row.value.sealed().expect("a sealed row");
        serde_json::from_str(&envelope.ciphertext).unwrap()
    }

    /// Stores credentials as the vault would, bypassing it.
    fn put_grant(&self, provider: ProviderId, grant: &Grant) {
        let write = SettingWrite {
            key: crate::settings::SettingKey::parse(provider.spec().storage_key).unwrap(),
            value: seal(&grant.to_stored_json()).into(),
            description: None,
            category: None,
            data_type: crate::settings::DataType::Encrypted,
            origin: Default::default(),
        };
        self.upsert(&write, Precondition::Any).unwrap();
    }

    fn put_metadata(&self, metadata: &ConnectionMetadata) {
        let write = SettingWrite {
            key: crate::settings::SettingKey::parse(&metadata_key(metadata.provider)).unwrap(),
            value: metadata.to_json().into(),
            description: None,
            category: None,
            data_type: crate::settings::DataType::Json,
            origin: Default::default(),
        };
        self.upsert(&write, Precondition::Any).unwrap();
    }

    fn metadata(&self, provider: ProviderId) -> ConnectionMetadata {
        let row = self.get(&metadata_key(provider)).expect("metadata row");
        row.value
            .plain()
            .and_then(ConnectionMetadata::from_json)
            .expect("readable metadata")
    }

    fn version(&self, key: &str) -> i64 {
        self.get(key).expect("row exists").version
    }

    fn remove(&self, key: &str) {
        self.0.lock().unwrap().remove(key);
    }

    /// An independent copy, as a cache holding what it loaded earlier would see it.
    fn snapshot(&self) -> Rows {
        Rows(Arc::new(Mutex::new(self.0.lock().unwrap().clone())))
    }

    fn delete(&self, key: &str, expected: Precondition) -> Result<(), SettingDeleteError> {
        let mut rows = self.0.lock().unwrap();
        match (rows.get(key), expected) {
            (None, _) => Err(SettingDeleteError::NotFound),
            (Some(row), Precondition::Version(v)) if row.version != v => {
                Err(SettingDeleteError::VersionConflict {
                    current: row.version,
                })
            }
            _ => {
                rows.remove(key);
                Ok(())
            }
        }
    }
}

/// What a test does before (or instead of) a repository upsert: `None` lets the upsert
/// proceed.
type UpsertHook = Box<
    dyn FnMut(&SettingWrite, Precondition) -> Option<Result<UpsertOutcome, SettingWriteError>>
        + Send,
>;

/// A repository mock whose calls read and write `rows`.
fn repository(rows: &Rows) -> MockSettingsRepository {
    repository_with(rows, Box::new(|_, _| None))
}

/// As [`repository`], with `hook` run before every single-row upsert.
fn repository_with(rows: &Rows, mut hook: UpsertHook) -> MockSettingsRepository {
    let mut repo = MockSettingsRepository::new();
    let r = rows.clone();
    repo.expect_get()
        .returning(move |_, key| Ok(r.get(key.as_str())));
    let r = rows.clone();
    repo.expect_list().returning(move |_, _, _| {
        let mut all: Vec<Setting> = r.0.lock().unwrap().values().cloned().collect();
        all.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(all)
    });
    let r = rows.clone();
    repo.expect_upsert()
        .returning(move |_, write, expected, _| {
            hook(write, expected.clone()).unwrap_or_else(|| r.upsert(write, expected))
        });
    let r = rows.clone();
    repo.expect_upsert_many().returning(move |_, writes, _| {
        writes
            .iter()
            .map(|w| r.upsert(w, Precondition::Any))
            .collect()
    });
    let r = rows.clone();
    repo.expect_delete()
        .returning(move |_, key, expected, _| r.delete(key.as_str(), expected));
    repo
}

/// A see-through "envelope": the ciphertext is the plaintext. Lets tests read what was sealed.
fn seal(plaintext: &Value) -> Envelope {
    seal_bytes(plaintext.to_string().as_bytes())
}

fn seal_bytes(plaintext: &[u8]) -> Envelope {
    Envelope {
        v: 1,
        alg: "test".into(),
        kid: "k".into(),
        salt: "s".into(),
        nonce: "n".into(),
        ciphertext: String::from_utf8(plaintext.to_vec()).unwrap(),
    }
}

fn cipher() -> MockSecretCipher {
    let mut cipher = MockSecretCipher::new();
    cipher
        .expect_seal()
        .returning(|_, _, plaintext| Ok(seal_bytes(plaintext)));
    cipher
        .expect_open()
        .returning(|_, _, envelope| Ok(Zeroizing::new(envelope.ciphertext.clone().into_bytes())));
    cipher.expect_current_kid().return_const("k".to_owned());
    cipher
}

type Vault = CredentialVault<MockSettingsRepository, MockSecretCipher>;

/// The write pipeline with the built-in registry, default limits and categories.
fn pipeline(cipher: MockSecretCipher) -> WritePipeline<MockSecretCipher> {
    WritePipeline::new(
        cipher,
        Arc::new(KeyRegistry::builtin().unwrap()),
        Limits::default(),
        AllowedCategories::default(),
    )
}

fn vault(rows: &Rows) -> Arc<Vault> {
    Arc::new(vault_over(repository(rows)))
}

fn vault_over(repo: MockSettingsRepository) -> Vault {
    CredentialVault::new(repo, pipeline(cipher()))
}

fn oauth_grant(access: &str, refresh: Option<&str>, expires_at: Option<OffsetDateTime>) -> Grant {
    Grant {
        credentials: Credentials::OAuth(TokenSet {
            access_token: SecretString::from(access),
            refresh_token: refresh.map(SecretString::from),
            expires_at,
            scope: None,
        }),
        account: RemoteAccount {
            id: Some(RemoteUserId::Text("uuid-1".into())),
            username: Some("sean".into()),
            slug: Some("sean".into()),
            email: None,
        },
    }
}

fn in_minutes(minutes: i64) -> Option<OffsetDateTime> {
    Some(NOW + Duration::minutes(minutes))
}
