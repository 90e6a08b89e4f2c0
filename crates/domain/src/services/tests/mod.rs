//! Unit tests of the services against mockall mocks of the ports.

mod defaults;
mod devices;
mod preferences;
mod rotation;
mod settings;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::{
    UserId,
    audit::{Actor, Role},
    settings::{Setting, SettingWrite, UpsertOutcome},
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
