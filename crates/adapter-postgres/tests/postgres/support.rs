//! Helpers shared by the tests: ids, writes and repositories.

use adapter_postgres::{
    PgPreferencesRepository, PgSettingsRepository, Provisioning, testing::TestDatabase,
};
use domain::{
    UserId,
    history::ChangeOrigin,
    ports::{PreferencesRepository, SettingsRepository},
    preferences::{PreferenceOverrides, StoredPreferences},
    secrets::Envelope,
    settings::{
        Category, DataType, Description, Page, Precondition, SettingKey, SettingWrite, StoredValue,
        UpsertOutcome, UserQuota,
    },
};
use serde_json::{Value, json};

/// A user id nobody else uses.
pub fn new_user() -> UserId {
    UserId::new(uuid::Uuid::new_v4())
}

pub fn key(raw: &str) -> SettingKey {
    SettingKey::parse(raw).expect("test keys are valid")
}

/// A write of `value` under `key`, with the data type inferred as the domain does.
pub fn write(raw_key: &str, value: Value) -> SettingWrite {
    let data_type = DataType::infer(&value).expect("test values are not null");
    SettingWrite {
        key: key(raw_key),
        value: value.into(),
        description: None,
        category: None,
        data_type,
        origin: ChangeOrigin::User,
    }
}

/// A write of a secret sealed as `envelope` (JSON members of an envelope).
pub fn sealed(raw_key: &str, envelope: Value) -> SettingWrite {
    SettingWrite {
        key: key(raw_key),
        value: StoredValue::Sealed(Envelope::from_value(&envelope).expect("an envelope")),
        description: None,
        category: None,
        data_type: DataType::Encrypted,
        origin: ChangeOrigin::User,
    }
}

/// A write in `category`.
pub fn write_in(raw_key: &str, value: Value, category: &str) -> SettingWrite {
    SettingWrite {
        category: Some(Category::from_stored(category.to_owned())),
        ..write(raw_key, value)
    }
}

/// A write with a description.
pub fn described(mut write: SettingWrite, description: &str) -> SettingWrite {
    write.description = Some(Description::parse(description, 1024).expect("short description"));
    write
}

/// A well-formed encrypted envelope (its contents are never decrypted here).
pub fn envelope() -> Value {
    json!({
        "v": 1,
        "alg": "A256GCM-HKDF-SHA256",
        "kid": "k1",
        "salt": "c2FsdHNhbHRzYWx0c2FsdHNhbHRzYWx0c2FsdHNhbHQ",
        "nonce": "bm9uY2Vub25jZW5v",
        "ciphertext": "Y2lwaGVydGV4dA"
    })
}

pub fn settings_repo(db: &TestDatabase) -> PgSettingsRepository {
    PgSettingsRepository::new(db.pool().clone(), Provisioning::Auto)
}

pub fn preferences_repo(db: &TestDatabase) -> PgPreferencesRepository {
    PgPreferencesRepository::new(db.pool().clone(), Provisioning::Auto)
}

/// Inserts a `shared.users` row directly.
pub async fn insert_user(db: &TestDatabase, user: UserId) {
    let client = db.pool().get().await.expect("pooled connection");
    client
        .execute(
            "INSERT INTO shared.users (id) VALUES ($1)",
            &[&user.as_uuid()],
        )
        .await
        .expect("insert user");
}

/// A quota of `max_settings` settings and no byte or device limit.
pub fn quota(max_settings: u32) -> UserQuota {
    UserQuota {
        max_settings,
        max_bytes: u64::MAX,
        max_devices: u32::MAX,
    }
}

/// The first page of the largest size.
pub fn first_page() -> Page {
    Page::first(Page::MAX_LIMIT)
}

/// A quota no test reaches: for writes that only set a test up.
const ROOMY: u32 = 10_000;

/// The settings writes most tests only set up: unconditional (`Precondition::Any`), within
/// a roomy quota, and expected to succeed.
pub trait PutSetting {
    /// Writes `value` under `key` (data type inferred).
    async fn put(&self, user: UserId, key: &str, value: Value) -> UpsertOutcome;

    /// Writes `write` as given (category, description, data type).
    async fn put_write(&self, user: UserId, write: &SettingWrite) -> UpsertOutcome;
}

impl PutSetting for PgSettingsRepository {
    async fn put(&self, user: UserId, raw_key: &str, value: Value) -> UpsertOutcome {
        self.put_write(user, &write(raw_key, value)).await
    }

    async fn put_write(&self, user: UserId, write: &SettingWrite) -> UpsertOutcome {
        self.upsert(user, write, Precondition::Any, quota(ROOMY))
            .await
            .expect("unconditional write")
    }
}

/// The preferences write most tests only set up: unconditional and expected to succeed.
pub trait PutPreferences {
    /// Stores `preferences` whatever the current version.
    async fn put(&self, user: UserId, overrides: &PreferenceOverrides) -> StoredPreferences;
}

impl PutPreferences for PgPreferencesRepository {
    async fn put(&self, user: UserId, overrides: &PreferenceOverrides) -> StoredPreferences {
        self.upsert(
            user,
            overrides,
            Precondition::Any,
            domain::history::ChangeOrigin::User,
        )
        .await
        .expect("unconditional write")
    }
}
