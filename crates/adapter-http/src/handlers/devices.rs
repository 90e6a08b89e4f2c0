//! `/api/v1/users/me/devices`: the caller's devices and each device's own overrides of their
//! settings and preferences (the device layer). A device's setting has the bodies, ETags, preconditions and
//! answers of the caller's own setting (`handlers::settings`); it is never a secret.

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::ETag,
    web::{Data, Json, Path},
};
use domain::{
    devices::DeviceSummary, preferences::PreferenceField, preferences::StoredPreferences,
};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::settings::{SettingBody, read_answer, write_answer};
use crate::{
    auth::User,
    conditional::{etag, precondition},
    error::ApiError,
    openapi::docs,
    state::ApiState,
    write_permits::WritePermit,
};

/// One of the caller's devices that overrides anything. Each layered kind of value has its
/// own member (`settings` today).
#[derive(Serialize, ToSchema)]
pub struct DeviceEntry {
    /// The id the device gave itself.
    device_id: String,
    /// How many settings it overrides.
    settings: u64,
    /// The preference fields it overrides.
    #[schema(value_type = Vec<String>)]
    preferences: Vec<PreferenceField>,
    /// The last change of any of its overrides.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: OffsetDateTime,
}

impl From<DeviceSummary> for DeviceEntry {
    fn from(device: DeviceSummary) -> Self {
        Self {
            device_id: device.device_id.as_str().to_owned(),
            settings: device.settings,
            preferences: device.preferences,
            updated_at: device.updated_at,
        }
    }
}

/// The caller's devices that override anything.
#[derive(Serialize, ToSchema)]
pub struct DeviceList {
    /// Ordered by `device_id`.
    devices: Vec<DeviceEntry>,
}

impl From<Vec<DeviceSummary>> for DeviceList {
    fn from(devices: Vec<DeviceSummary>) -> Self {
        Self {
            devices: devices.into_iter().map(Into::into).collect(),
        }
    }
}

#[utoipa::path(
    get, path = "/api/v1/users/me/devices", tag = "devices",
    responses(
        (status = 200, description = "The caller's devices that override anything, ordered by id", body = DeviceList),
        docs::UserReadErrors,
    ),
    security(("bearer" = []))
)]
/// Lists the caller's devices that override anything.
#[tracing::instrument(skip_all)]
pub async fn list(state: Data<ApiState>, User(user): User) -> Result<HttpResponse, ApiError> {
    let devices = state.devices.devices(user.user_id).await?;
    Ok(HttpResponse::Ok().json(DeviceList::from(devices)))
}

#[utoipa::path(
    delete, path = "/api/v1/users/me/devices/{device_id}", tag = "devices",
    params(("device_id" = String, Path, description = "The device's id")),
    responses(
        (status = 204, description = "Every override of the device deleted"),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Forgets one of the caller's devices: every override it holds is deleted (404
/// `device_not_found` when it has none).
#[tracing::instrument(skip_all)]
pub async fn delete(
    state: Data<ApiState>,
    _permit: WritePermit,
    User(user): User,
    device: Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.devices.delete_device(user.user_id, &device).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get, path = "/api/v1/users/me/devices/{device_id}/settings/{key}", tag = "devices",
    params(
        ("device_id" = String, Path, description = "The device's id"),
        ("key" = String, Path, description = "Setting key"),
    ),
    responses(
        (status = 200, description = "The device's own override (not the value in effect)", body = super::settings::SettingRepresentation,
            headers(("ETag" = String, description = "Strong ETag of the version"))),
        (status = 304, description = "Not modified (If-None-Match matched)"),
        (status = 404, response = docs::NotFound),
        docs::UserReadErrors,
    ),
    security(("bearer" = []))
)]
/// Reads a device's own override of one of the caller's settings (404 when it has none).
#[tracing::instrument(skip_all)]
pub async fn get_setting(
    req: HttpRequest,
    state: Data<ApiState>,
    User(user): User,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (device, key) = path.into_inner();
    let setting = state
        .devices
        .get_setting(user.user_id, &device, &key)
        .await?;
    Ok(read_answer(&req, setting))
}

#[utoipa::path(
    put, path = "/api/v1/users/me/devices/{device_id}/settings/{key}", tag = "devices",
    params(
        ("device_id" = String, Path, description = "The device's id"),
        ("key" = String, Path, description = "Setting key"),
    ),
    request_body(content = SettingBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Updated", body = super::settings::SettingRepresentation),
        (status = 201, description = "Created", body = super::settings::SettingRepresentation,
            headers(("Location" = String, description = "The override's own URL"))),
        (status = 409, response = docs::Conflict),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Creates or replaces a device's override of one of the caller's settings. Validated as any
/// stored setting; a secret answers 422 `not_layerable`, an enforced key 409.
#[tracing::instrument(skip_all)]
pub async fn put_setting(
    req: HttpRequest,
    state: Data<ApiState>,
    _permit: WritePermit,
    User(user): User,
    path: Path<(String, String)>,
    body: Json<SettingBody>,
) -> Result<HttpResponse, ApiError> {
    let (device, key) = path.into_inner();
    let expected = precondition(&req, state.options.require_if_match)?;
    let input = body.into_inner().into_input(key);
    let (setting, created) = state
        .devices
        .set_setting(user.user_id, &device, input, expected)
        .await?;
    let location =
        created.then(|| format!("/api/v1/users/me/devices/{device}/settings/{}", setting.key));
    Ok(write_answer(setting, location))
}

#[utoipa::path(
    delete, path = "/api/v1/users/me/devices/{device_id}/settings/{key}", tag = "devices",
    params(
        ("device_id" = String, Path, description = "The device's id"),
        ("key" = String, Path, description = "Setting key"),
    ),
    responses(
        (status = 204, description = "Deleted: the device inherits the caller's value again"),
        (status = 409, response = docs::Conflict),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Deletes a device's override of one of the caller's settings.
#[tracing::instrument(skip_all)]
pub async fn delete_setting(
    req: HttpRequest,
    state: Data<ApiState>,
    _permit: WritePermit,
    User(user): User,
    path: Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (device, key) = path.into_inner();
    let expected = precondition(&req, state.options.require_if_match)?;
    state
        .devices
        .delete_setting(user.user_id, &device, &key, expected)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A device's overrides of the preferences, with the ETag of their version (`"0"` when it
/// overrides nothing).
fn preferences_answer(stored: &StoredPreferences) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ETag(etag(stored.version)))
        .json(&stored.overrides)
}

#[utoipa::path(
    get, path = "/api/v1/users/me/devices/{device_id}/preferences", tag = "devices",
    params(("device_id" = String, Path, description = "The device's id")),
    responses(
        (status = 200, description = "What the device overrides of the caller's preferences ({} when nothing)", body = docs::PreferencesReplace,
            headers(("ETag" = String, description = "Strong ETag of the overrides' version (\"0\" when none)"))),
        docs::UserReadErrors,
    ),
    security(("bearer" = []))
)]
/// Reads what one of the caller's devices overrides of their preferences.
#[tracing::instrument(skip_all)]
pub async fn get_preferences(
    state: Data<ApiState>,
    User(user): User,
    device: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let stored = state
        .preferences
        .device_preferences(user.user_id, &device)
        .await?;
    Ok(preferences_answer(&stored))
}

#[utoipa::path(
    patch, path = "/api/v1/users/me/devices/{device_id}/preferences", tag = "devices",
    params(("device_id" = String, Path, description = "The device's id")),
    request_body(content = docs::PreferencesPatch, content_type = "application/merge-patch+json",
        description = "An RFC 7396 merge patch of the device's overrides; null removes an override"),
    responses(
        (status = 200, description = "The device's overrides after the change", body = docs::PreferencesReplace),
        (status = 409, response = docs::Conflict),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Merge-patches what one of the caller's devices overrides of their preferences.
#[tracing::instrument(skip_all)]
pub async fn patch_preferences(
    req: HttpRequest,
    state: Data<ApiState>,
    _permit: WritePermit,
    User(user): User,
    device: Path<String>,
    body: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let expected = precondition(&req, state.options.require_if_match)?;
    let stored = state
        .preferences
        .patch_device(user.user_id, &device, &body, expected)
        .await?;
    Ok(preferences_answer(&stored))
}

#[utoipa::path(
    delete, path = "/api/v1/users/me/devices/{device_id}/preferences", tag = "devices",
    params(("device_id" = String, Path, description = "The device's id")),
    responses(
        (status = 204, description = "The device overrides none of the preferences now"),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Removes every override of the preferences one of the caller's devices holds.
#[tracing::instrument(skip_all)]
pub async fn delete_preferences(
    req: HttpRequest,
    state: Data<ApiState>,
    _permit: WritePermit,
    User(user): User,
    device: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let expected = precondition(&req, state.options.require_if_match)?;
    state
        .preferences
        .delete_device(user.user_id, &device, expected)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
