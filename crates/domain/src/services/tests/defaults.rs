//! The deployment layer: enforcement refuses user writes before any store is touched, and
//! the layer holds no secrets.

use std::{collections::BTreeMap, sync::Arc};

use serde_json::json;
use time::OffsetDateTime;

use super::{admin, user};
use crate::{
    defaults::{DeploymentDefaults, DeploymentSetting},
    ports::{MockAuditLog, MockDefaultsRepository, MockSecretCipher, MockSettingsRepository},
    registry::KeyRegistry,
    services::{
        DefaultsError, DefaultsService, DeleteSettingError, SetSettingError, SettingInput,
        SettingsService, WritePipeline,
    },
    settings::{AllowedCategories, DataType, Limits, Precondition, SettingKey},
};

fn pipeline() -> WritePipeline<MockSecretCipher> {
    WritePipeline::new(
        MockSecretCipher::new(),
        Arc::new(KeyRegistry::builtin().unwrap()),
        Limits::default(),
        AllowedCategories::default(),
    )
}

/// A deployment layer that enforces `ui.a.b`.
fn enforcing() -> MockDefaultsRepository {
    let setting = DeploymentSetting {
        key: SettingKey::parse("ui.a.b").unwrap(),
        value: json!(1),
        data_type: DataType::Number,
        category: None,
        enforced: true,
        version: 9,
        updated_at: OffsetDateTime::UNIX_EPOCH,
    };
    let layer = Arc::new(DeploymentDefaults {
        settings: BTreeMap::from([("ui.a.b".to_owned(), setting)]),
        ..DeploymentDefaults::default()
    });
    let mut defaults = MockDefaultsRepository::new();
    defaults
        .expect_load()
        .returning(move || Ok(Arc::clone(&layer)));
    defaults
}

/// A settings service whose store must not be touched.
fn settings_service() -> SettingsService<MockSettingsRepository, MockSecretCipher, MockAuditLog> {
    SettingsService::new(
        MockSettingsRepository::new(),
        MockAuditLog::new(),
        pipeline(),
    )
    .with_defaults(Arc::new(enforcing()))
}

fn input(key: &str) -> SettingInput {
    SettingInput {
        key: key.into(),
        value: Some(serde_json::value::to_raw_value(&json!(2)).unwrap()),
        ..SettingInput::default()
    }
}

#[tokio::test]
async fn a_user_write_of_an_enforced_key_is_refused_before_the_store() {
    let svc = settings_service();
    let one = svc
        .set_setting(user(), input("ui.a.b"), Precondition::Any)
        .await;
    assert!(matches!(
        one,
        Err(SetSettingError::EnforcedByDeployment { .. })
    ));
    let bulk = svc
        .set_settings(user(), vec![input("ui.other.key"), input("ui.a.b")])
        .await;
    assert!(matches!(
        bulk,
        Err(SetSettingError::EnforcedByDeployment { .. })
    ));
    let delete = svc
        .delete_setting(user(), "ui.a.b", Precondition::Any)
        .await;
    assert!(matches!(
        delete,
        Err(DeleteSettingError::EnforcedByDeployment { .. })
    ));
}

#[tokio::test]
async fn a_secret_is_not_layerable_and_reaches_neither_cipher_nor_store() {
    let svc = DefaultsService::new(MockDefaultsRepository::new(), pipeline());
    let value = Some(serde_json::value::to_raw_value(&json!("s3cret")).unwrap());
    let result = svc
        .put_setting(&admin(), "sync.plex.api_key", value, false)
        .await;
    assert!(matches!(result, Err(DefaultsError::NotLayerable)));
}

#[tokio::test]
async fn a_default_obeys_the_rules_of_every_stored_setting() {
    let svc = DefaultsService::new(MockDefaultsRepository::new(), pipeline());
    let value = Some(serde_json::value::to_raw_value(&json!("not an object")).unwrap());
    let result = svc
        .put_setting(&admin(), "playback.quality.preferences", value, false)
        .await;
    assert!(matches!(result, Err(DefaultsError::Validation(_))));
}
