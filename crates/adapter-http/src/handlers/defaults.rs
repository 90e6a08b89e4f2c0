//! `/api/v1/defaults`: the deployment layer (values an operator sets for every user) and
//! `/api/v1/users/me/effective/settings/{key}`: a key's value in effect, with its source.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::{
    HttpResponse,
    web::{Data, Json, Path, Query},
};
use domain::{
    ValidationErrors,
    defaults::{DeploymentDefaults, DeploymentSetting, EffectiveSetting},
    preferences::PreferenceField,
    settings::SettingKey,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, value::RawValue};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{
    auth::{Operator, User},
    error::ApiError,
    handlers::effective::DeviceQuery,
    openapi::docs,
    state::ApiState,
};

/// Body of `PUT /api/v1/defaults/settings/{key}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DefaultBody {
    /// Any JSON value except null, valid for the key as a user's value would be.
    #[serde(default)]
    #[schema(value_type = Value)]
    value: Option<Box<RawValue>>,
    /// Whether the value wins over every user's and device's own.
    #[serde(default)]
    enforced: bool,
}

/// The deployment's value of one key.
#[derive(Serialize, ToSchema)]
pub struct DefaultSetting {
    /// The value every user inherits.
    #[schema(value_type = Value)]
    value: Value,
    /// Whether it wins over every user's own value.
    enforced: bool,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: OffsetDateTime,
}

impl From<&DeploymentSetting> for DefaultSetting {
    fn from(setting: &DeploymentSetting) -> Self {
        Self {
            value: setting.value.clone(),
            enforced: setting.enforced,
            updated_at: setting.updated_at,
        }
    }
}

/// The whole deployment layer.
#[derive(Serialize, ToSchema)]
pub struct Defaults {
    /// The preference fields the deployment sets, with their values.
    #[schema(value_type = Object)]
    preferences: Value,
    /// The preference fields the deployment enforces (an enforced field it does not set
    /// enforces the builtin default).
    #[schema(value_type = Vec<String>)]
    enforced_preferences: BTreeSet<PreferenceField>,
    /// The settings the deployment sets, by key.
    settings: BTreeMap<String, DefaultSetting>,
}

impl From<&DeploymentDefaults> for Defaults {
    fn from(defaults: &DeploymentDefaults) -> Self {
        Self {
            preferences: defaults.preferences.values.to_document(),
            enforced_preferences: defaults.preferences.enforced.clone(),
            settings: defaults
                .settings
                .iter()
                .map(|(key, setting)| (key.clone(), setting.into()))
                .collect(),
        }
    }
}

/// A key's value in effect for the caller.
#[derive(Serialize, ToSchema)]
pub struct EffectiveSettingRepresentation {
    /// The key.
    key: String,
    /// The value; `null` when redacted.
    #[schema(value_type = Value)]
    value: Value,
    /// True when the value is a secret and was withheld.
    redacted: bool,
    /// The layer the value comes from: `builtin`, `deployment`, `user` or `device`.
    source: String,
    /// The declared type.
    data_type: String,
    category: Option<String>,
    /// The version of the value in its layer (0 for a builtin default).
    version: i64,
    /// Whether the deployment enforces the key (a write of the caller's own is refused).
    enforced: bool,
}

impl From<EffectiveSetting> for EffectiveSettingRepresentation {
    fn from(e: EffectiveSetting) -> Self {
        Self {
            key: e.key.as_str().to_owned(),
            value: e.value,
            redacted: e.redacted,
            source: e.source.as_str().to_owned(),
            data_type: e.data_type.as_str().to_owned(),
            category: e.category.map(|c| c.as_str().to_owned()),
            version: e.version,
            enforced: e.enforced,
        }
    }
}

#[utoipa::path(
    get, path = "/api/v1/defaults", tag = "defaults",
    responses(
        (status = 200, description = "The deployment layer", body = Defaults),
        docs::UserReadErrors,
    ),
    security(("bearer" = []))
)]
/// Reads the deployment layer (any valid token).
#[tracing::instrument(skip_all)]
pub async fn get(state: Data<ApiState>, _caller: User) -> Result<HttpResponse, ApiError> {
    let defaults = state.defaults.get().await?;
    Ok(HttpResponse::Ok().json(Defaults::from(defaults.as_ref())))
}

/// Body of `PATCH /api/v1/defaults/preferences`: an object (never an array, which serde
/// would otherwise read member by member).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, try_from = "serde_json::Map<String, Value>")]
pub struct DefaultPreferencesBody {
    /// A merge patch of the preference fields the deployment sets: a value sets a field for
    /// every user who did not choose it, `null` stops setting it.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    values: Option<Value>,
    /// The fields the deployment enforces, replacing the list (absent: unchanged).
    #[serde(default)]
    enforced: Option<Vec<String>>,
}

/// The members of [`DefaultPreferencesBody`], read from an object only.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefaultPreferencesMembers {
    #[serde(default)]
    values: Option<Value>,
    #[serde(default)]
    enforced: Option<Vec<String>>,
}

impl TryFrom<serde_json::Map<String, Value>> for DefaultPreferencesBody {
    type Error = serde_json::Error;

    fn try_from(members: serde_json::Map<String, Value>) -> Result<Self, Self::Error> {
        let DefaultPreferencesMembers { values, enforced } =
            serde_json::from_value(Value::Object(members))?;
        Ok(Self { values, enforced })
    }
}

#[utoipa::path(
    patch, path = "/api/v1/defaults/preferences", tag = "defaults",
    request_body(content = DefaultPreferencesBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The deployment layer after the change", body = Defaults),
        docs::OperatorWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Changes the preferences of the deployment layer (role `operator`; audited as
/// `defaults_write`). Users who never chose a field read the deployment's value at once.
#[tracing::instrument(skip_all)]
pub async fn patch_preferences(
    state: Data<ApiState>,
    Operator(actor): Operator,
    body: Json<DefaultPreferencesBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let layer = state
        .defaults
        .patch_preferences(&actor, body.values.as_ref(), body.enforced.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(Defaults::from(layer.as_ref())))
}

#[utoipa::path(
    put, path = "/api/v1/defaults/settings/{key}", tag = "defaults",
    params(("key" = String, Path, description = "Setting key")),
    request_body(content = DefaultBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Updated", body = DefaultSetting),
        (status = 201, description = "Created", body = DefaultSetting),
        docs::OperatorWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Sets the deployment's value of a key for every user (role `operator`; audited as
/// `defaults_write`). Secrets are refused (422 `not_layerable`).
#[tracing::instrument(skip_all)]
pub async fn put_setting(
    state: Data<ApiState>,
    Operator(actor): Operator,
    key: Path<String>,
    body: Json<DefaultBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let (setting, created) = state
        .defaults
        .put_setting(&actor, &key, body.value, body.enforced)
        .await?;
    let mut answer = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(answer.json(DefaultSetting::from(&setting)))
}

#[utoipa::path(
    delete, path = "/api/v1/defaults/settings/{key}", tag = "defaults",
    params(("key" = String, Path, description = "Setting key")),
    responses(
        (status = 204, description = "Removed: users inherit the builtin default again"),
        docs::OperatorWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Removes the deployment's value of a key (role `operator`; audited as `defaults_write`).
#[tracing::instrument(skip_all)]
pub async fn delete_setting(
    state: Data<ApiState>,
    Operator(actor): Operator,
    key: Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.defaults.delete_setting(&actor, &key).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get, path = "/api/v1/users/me/effective/settings/{key}", tag = "settings",
    params(("key" = String, Path, description = "Setting key"), DeviceQuery),
    responses(
        (status = 200, description = "The value in effect and its source; secrets redacted", body = EffectiveSettingRepresentation),
        (status = 404, response = docs::NotFound),
        docs::UserReadErrors,
    ),
    security(("bearer" = []))
)]
/// Reads the value of a key in effect for the caller (on `device`, when named): the device's,
/// else their own, else the deployment's, else the registry's default; an enforced deployment
/// value wins. 404 only when no layer has one.
#[tracing::instrument(skip_all)]
pub async fn effective_setting(
    state: Data<ApiState>,
    User(user): User,
    key: Path<String>,
    query: Query<DeviceQuery>,
) -> Result<HttpResponse, ApiError> {
    let device = query.device()?;
    let key =
        SettingKey::parse(&key).map_err(|e| ApiError::Validation(ValidationErrors::single(e)))?;
    let effective = state
        .effective
        .setting(user.user_id, &key, device.as_ref())
        .await?
        .ok_or_else(|| {
            ApiError::NotFound(
                "setting_not_found",
                "no layer has a value of this key".into(),
            )
        })?;
    Ok(HttpResponse::Ok().json(EffectiveSettingRepresentation::from(effective)))
}
