//! The device layer: what is refused before the store is touched (a malformed device id, a
//! secret, a managed key, an enforced key), and what reaches it (the user's whole quota).

use std::sync::Arc;

use serde_json::{Value, json};

use super::{created, enforcing, user};
use crate::{
    devices::DeviceId,
    error::FieldError,
    ports::{MockDeviceSettingsRepository, MockSecretCipher, SettingDeleteError},
    registry::KeyRegistry,
    services::{
        DeleteDeviceError, DeleteSettingError, DevicesService, GetSettingError, SetSettingError,
        SettingInput, WritePipeline,
    },
    settings::{AllowedCategories, Limits, Precondition, UserQuota},
};

const LIMITS: Limits = Limits {
    max_value_bytes: 100 * 1024,
    max_json_depth: 32,
    max_description_chars: 1024,
    max_settings_per_user: 7,
    max_bytes_per_user: 4096,
    max_bulk_items: 100,
    max_devices_per_user: 3,
};

fn service(
    repo: MockDeviceSettingsRepository,
) -> DevicesService<MockDeviceSettingsRepository, MockSecretCipher> {
    let pipeline = WritePipeline::new(
        MockSecretCipher::new(),
        Arc::new(KeyRegistry::builtin().unwrap()),
        LIMITS,
        AllowedCategories::default(),
    );
    DevicesService::new(repo, pipeline, Arc::new(enforcing()))
}

/// A service whose store must not be touched: any call fails the test.
fn untouched() -> DevicesService<MockDeviceSettingsRepository, MockSecretCipher> {
    service(MockDeviceSettingsRepository::new())
}

fn input(key: &str, value: Value) -> SettingInput {
    SettingInput {
        key: key.into(),
        value: Some(serde_json::value::to_raw_value(&value).unwrap()),
        ..SettingInput::default()
    }
}

fn fields(errors: &crate::ValidationErrors) -> Vec<(&str, &'static str)> {
    errors
        .errors()
        .iter()
        .map(|e: &FieldError| (e.field.as_str(), e.code))
        .collect()
}

#[tokio::test]
async fn a_malformed_device_id_is_refused_on_the_device_id_field_before_the_store() {
    let svc = untouched();
    let Err(SetSettingError::Validation(errors)) = svc
        .set_setting(
            user(),
            "my phone",
            input("ui.x", json!(1)),
            Precondition::Any,
        )
        .await
    else {
        panic!("a device id with a space was accepted");
    };
    assert_eq!(fields(&errors), [("device_id", "invalid_device_id")]);
}

#[tokio::test]
async fn a_read_reports_a_bad_device_id_and_a_bad_key_together() {
    let Err(GetSettingError::Validation(errors)) =
        untouched().get_setting(user(), "a/b", "Not.A.Key").await
    else {
        panic!("a bad device id and key were accepted");
    };
    let codes: Vec<&str> = fields(&errors).into_iter().map(|(f, _)| f).collect();
    assert_eq!(codes, ["device_id", "key"]);
}

#[tokio::test]
async fn a_secret_is_not_layerable_and_reaches_neither_cipher_nor_store() {
    let svc = untouched();
    let sensitive = svc
        .set_setting(
            user(),
            "phone",
            input("sync.plex.api_key", json!("s3cret")),
            Precondition::Any,
        )
        .await;
    assert!(matches!(sensitive, Err(SetSettingError::NotLayerable)));
    let declared = SettingInput {
        data_type: Some("encrypted".into()),
        ..input("ui.private.note", json!("s3cret"))
    };
    let encrypted = svc
        .set_setting(user(), "phone", declared, Precondition::Any)
        .await;
    assert!(matches!(encrypted, Err(SetSettingError::NotLayerable)));
}

#[tokio::test]
async fn an_enforced_key_is_refused_on_put_and_delete_before_the_store() {
    let svc = untouched();
    let put = svc
        .set_setting(
            user(),
            "phone",
            input("ui.a.b", json!(2)),
            Precondition::Any,
        )
        .await;
    assert!(
        matches!(&put, Err(SetSettingError::EnforcedByDeployment { key }) if key.as_str() == "ui.a.b"),
        "{put:?}"
    );
    let delete = svc
        .delete_setting(user(), "phone", "ui.a.b", Precondition::Any)
        .await;
    assert!(matches!(
        delete,
        Err(DeleteSettingError::EnforcedByDeployment { .. })
    ));
}

#[tokio::test]
async fn a_key_an_integration_manages_is_refused_on_put_and_delete_before_the_store() {
    let svc = untouched();
    for key in [
        "scrobbling.trakt.oauth_tokens",
        "integrations.trakt.connection",
    ] {
        let put = svc
            .set_setting(
                user(),
                "phone",
                input(key, json!({"access_token": "forged"})),
                Precondition::Any,
            )
            .await;
        assert!(
            matches!(put, Err(SetSettingError::ManagedByIntegration { .. })),
            "{key}"
        );
        let delete = svc
            .delete_setting(user(), "phone", key, Precondition::Any)
            .await;
        assert!(
            matches!(delete, Err(DeleteSettingError::ManagedByIntegration { .. })),
            "{key}"
        );
    }
}

#[tokio::test]
async fn a_write_reaches_the_store_with_the_device_and_the_users_whole_quota() {
    let mut repo = MockDeviceSettingsRepository::new();
    repo.expect_upsert()
        .withf(|_, device, write, expected, quota| {
            device.as_str() == "phone"
                && write.value == json!("dark")
                && *expected == Precondition::Absent
                && *quota
                    == UserQuota {
                        max_settings: 7,
                        max_bytes: 4096,
                        max_devices: 3,
                    }
        })
        .times(1)
        .returning(|_, _, write, _, _| Ok(created(write)));
    let (view, was_created) = service(repo)
        .set_setting(
            user(),
            "phone",
            input("ui.theme.mode", json!("dark")),
            Precondition::Absent,
        )
        .await
        .unwrap();
    assert!(was_created);
    assert_eq!((view.value, view.redacted), (json!("dark"), false));
}

#[tokio::test]
async fn a_conditional_delete_of_an_absent_override_is_a_failed_condition() {
    let mut repo = MockDeviceSettingsRepository::new();
    repo.expect_delete()
        .returning(|_, _, _, _| Err(SettingDeleteError::NotFound));
    let svc = service(repo);
    let must_exist = svc
        .delete_setting(user(), "phone", "ui.x", Precondition::Exists)
        .await;
    assert!(matches!(
        must_exist,
        Err(DeleteSettingError::VersionConflict { current: None })
    ));
    let plain = svc
        .delete_setting(user(), "phone", "ui.x", Precondition::Any)
        .await;
    assert!(matches!(plain, Err(DeleteSettingError::NotFound)));
}

#[tokio::test]
async fn forgetting_a_device_without_overrides_is_not_found() {
    let mut repo = MockDeviceSettingsRepository::new();
    repo.expect_delete_device()
        .withf(|_, device| *device == DeviceId::parse("tv").unwrap())
        .returning(|_, _| Ok(false));
    let svc = service(repo);
    assert!(matches!(
        svc.delete_device(user(), "tv").await,
        Err(DeleteDeviceError::NotFound)
    ));
    assert!(matches!(
        svc.delete_device(user(), "").await,
        Err(DeleteDeviceError::Validation(_))
    ));
}
