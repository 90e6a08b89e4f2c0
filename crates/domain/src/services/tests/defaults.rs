//! The deployment layer: enforcement refuses user writes before any store is touched, and
//! the layer holds no secrets.

use std::sync::Arc;

use serde_json::json;

use super::{admin, enforcing, user};
use crate::{
    ports::{MockAuditLog, MockDefaultsRepository, MockSecretCipher, MockSettingsRepository},
    registry::KeyRegistry,
    services::{
        DefaultsError, DefaultsService, DeleteSettingError, SetSettingError, SettingInput,
        SettingsService, WritePipeline,
    },
    settings::{AllowedCategories, Limits, Precondition},
};

fn pipeline() -> WritePipeline<MockSecretCipher> {
    WritePipeline::new(
        MockSecretCipher::new(),
        Arc::new(KeyRegistry::builtin().unwrap()),
        Limits::default(),
        AllowedCategories::default(),
    )
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
