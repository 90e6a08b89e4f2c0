//! Unit tests of the services against mockall mocks of the ports.

mod defaults;
mod devices;
mod preferences;
mod rotation;
mod settings;
mod support;

use time::OffsetDateTime;
use uuid::Uuid;

use std::{collections::BTreeMap, sync::Arc};

use serde_json::json;

use crate::{
    UserId,
    audit::{Actor, Role},
    defaults::{DeploymentDefaults, DeploymentSetting},
    ports::MockDefaultsRepository,
    settings::{DataType, Setting, SettingKey, SettingWrite, UpsertOutcome},
};

fn user() -> UserId {
    UserId::new(Uuid::from_u128(0x1111))
}

fn admin() -> Actor {
    Actor {
        id: UserId::new(Uuid::from_u128(0xad)),
        role: Role::Admin,
        request_id: Some("req-1".into()),
        client_request_id: None,
    }
}

fn stored(write: &SettingWrite, version: i64) -> Setting {
    Setting {
        user_id: user(),
        key: write.key.clone(),
        value: write.value.clone(),
        description: write.description.clone(),
        category: write.category.clone(),
        data_type: write.data_type,
        version,
        created_at: OffsetDateTime::UNIX_EPOCH,
        updated_at: OffsetDateTime::UNIX_EPOCH,
    }
}

fn created(write: &SettingWrite) -> UpsertOutcome {
    UpsertOutcome {
        setting: stored(write, 1),
        created: true,
    }
}

/// A deployment layer that enforces `ui.a.b` (shared by the defaults and devices tests).
pub(super) fn enforcing() -> MockDefaultsRepository {
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
