//! `/api/v1/users/me/settings`: the caller's own key/value settings.

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::{self, ETag},
    web::{Data, Json, Path, Query},
};
use domain::{
    UserId,
    services::{GetSettingError, SettingInput},
    settings::{Precondition, SettingView},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    auth::User,
    conditional::{WriteCondition, etag, not_modified, write_condition},
    error::ApiError,
    openapi::docs,
    state::ApiState,
};

/// Query of the list route.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only settings of this category.
    pub category: Option<String>,
}

/// Body of `PUT .../settings/{key}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutSettingBody {
    #[serde(default)]
    value: Value,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    data_type: Option<String>,
}

/// Body of the bulk write.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    settings: Vec<SettingInput>,
}

/// A list of settings.
#[derive(Serialize)]
pub struct SettingList {
    /// The settings, ordered by key.
    pub settings: Vec<SettingView>,
}

#[utoipa::path(
    get, path = "/api/v1/users/me/settings", tag = "settings",
    params(ListQuery),
    responses(
        (status = 200, description = "The caller's settings, ordered by key; secrets redacted", body = docs::SettingListDoc),
        docs::UserReadErrors,
    ),
    security(("bearer" = []))
)]
/// Lists the caller's settings.
#[tracing::instrument(skip_all)]
pub async fn list(
    state: Data<ApiState>,
    User(user): User,
    query: Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let settings = state
        .settings
        .list_settings(user.user_id, query.category.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(SettingList { settings }))
}

#[utoipa::path(
    get, path = "/api/v1/users/me/settings/{key}", tag = "settings",
    params(("key" = String, Path, description = "Setting key, e.g. playback.subtitles.defaults")),
    responses(
        (status = 200, description = "The setting; secrets redacted", body = docs::SettingDoc,
            headers(("ETag" = String, description = "Strong ETag of the version"))),
        (status = 304, description = "Not modified (If-None-Match matched)"),
        (status = 404, response = docs::NotFound),
        docs::UserReadErrors,
    ),
    security(("bearer" = []))
)]
/// Reads one of the caller's settings.
#[tracing::instrument(skip_all)]
pub async fn get(
    req: HttpRequest,
    state: Data<ApiState>,
    User(user): User,
    key: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let setting = state.settings.get_setting(user.user_id, &key).await?;
    if not_modified(&req, setting.version) {
        return Ok(HttpResponse::NotModified()
            .insert_header(ETag(etag(setting.version)))
            .finish());
    }
    Ok(HttpResponse::Ok()
        .insert_header(ETag(etag(setting.version)))
        .json(setting))
}

#[utoipa::path(
    put, path = "/api/v1/users/me/settings/{key}", tag = "settings",
    params(("key" = String, Path, description = "Setting key")),
    request_body(content = docs::PutSettingDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "Updated", body = docs::SettingDoc),
        (status = 201, description = "Created", body = docs::SettingDoc),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Creates or replaces one of the caller's settings. Sensitive keys and
/// `data_type: encrypted` are stored encrypted and never returned.
#[tracing::instrument(skip_all)]
pub async fn put(
    req: HttpRequest,
    state: Data<ApiState>,
    User(user): User,
    key: Path<String>,
    body: Json<PutSettingBody>,
) -> Result<HttpResponse, ApiError> {
    let condition = write_condition(&req, state.options.require_if_match)?;
    let expected = resolve_condition(&state, user.user_id, &key, condition).await?;
    let body = body.into_inner();
    let input = SettingInput {
        key: key.into_inner(),
        value: body.value,
        description: body.description,
        category: body.category,
        data_type: body.data_type,
    };
    let (setting, created) = state
        .settings
        .set_setting(user.user_id, input, expected)
        .await?;
    let mut response = if created {
        let mut r = HttpResponse::Created();
        r.insert_header((
            header::LOCATION,
            format!("/api/v1/users/me/settings/{}", setting.key),
        ));
        r
    } else {
        HttpResponse::Ok()
    };
    Ok(response
        .insert_header(ETag(etag(setting.version)))
        .json(setting))
}

#[utoipa::path(
    delete, path = "/api/v1/users/me/settings/{key}", tag = "settings",
    params(("key" = String, Path, description = "Setting key")),
    responses(
        (status = 204, description = "Deleted"),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Deletes one of the caller's settings.
#[tracing::instrument(skip_all)]
pub async fn delete(
    req: HttpRequest,
    state: Data<ApiState>,
    User(user): User,
    key: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let expected = match write_condition(&req, state.options.require_if_match)? {
        WriteCondition::None | WriteCondition::Exists => Precondition::Any,
        WriteCondition::Matches(expected) => expected,
        WriteCondition::Absent => return Err(ApiError::PreconditionFailed),
    };
    state
        .settings
        .delete_setting(user.user_id, &key, expected)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    put, path = "/api/v1/users/me/settings", tag = "settings",
    request_body(content = docs::BulkDoc, content_type = "application/json"),
    responses(
        (status = 200, description = "Every setting written, in one transaction", body = docs::SettingListDoc),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Writes many settings at once: all or nothing; every bad item is reported.
#[tracing::instrument(skip_all)]
pub async fn bulk(
    state: Data<ApiState>,
    User(user): User,
    body: Json<BulkBody>,
) -> Result<HttpResponse, ApiError> {
    let written = state
        .settings
        .set_settings(user.user_id, body.into_inner().settings)
        .await?;
    Ok(HttpResponse::Ok().json(SettingList {
        settings: written.into_iter().map(|(s, _)| s).collect(),
    }))
}

/// Turns an HTTP write condition into the domain's precondition; `If-Match: *` needs the
/// current version.
async fn resolve_condition(
    state: &ApiState,
    user: UserId,
    key: &str,
    condition: WriteCondition,
) -> Result<Precondition, ApiError> {
    Ok(match condition {
        WriteCondition::None => Precondition::Any,
        WriteCondition::Matches(expected) => expected,
        WriteCondition::Absent => Precondition::Absent,
        WriteCondition::Exists => match state.settings.get_setting(user, key).await {
            Ok(current) => Precondition::Version(current.version),
            Err(GetSettingError::NotFound) => return Err(ApiError::PreconditionFailed),
            Err(e) => return Err(e.into()),
        },
    })
}
