//! `/api/v1/users/me/preferences`: read with defaults, full replace, JSON merge patch.

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::ETag,
    web::{Data, Json},
};
use domain::{preferences::StoredPreferences, settings::Precondition};
use serde_json::Value;

use crate::{
    auth::User,
    conditional::{WriteCondition, etag, not_modified, write_condition},
    error::ApiError,
    openapi::docs,
    state::ApiState,
};

/// The API representation: the document plus read-only `version` and timestamps.
pub fn representation(stored: &StoredPreferences) -> Value {
    let mut document = stored.preferences.to_document();
    if let Value::Object(map) = &mut document {
        map.insert("version".into(), stored.version.into());
        let format = |t: Option<time::OffsetDateTime>| {
            t.and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .map_or(Value::Null, Value::String)
        };
        map.insert("created_at".into(), format(stored.created_at));
        map.insert("updated_at".into(), format(stored.updated_at));
    }
    document
}

fn respond(stored: &StoredPreferences) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ETag(etag(stored.version)))
        .json(representation(stored))
}

fn precondition(req: &HttpRequest, state: &ApiState) -> Result<Precondition, ApiError> {
    Ok(
        match write_condition(req, state.options.require_if_match)? {
            // Preferences always exist (as defaults), so `If-Match: *` always holds.
            WriteCondition::None | WriteCondition::Exists => Precondition::Any,
            WriteCondition::Version(v) => Precondition::Version(v),
            WriteCondition::Absent => Precondition::Absent,
        },
    )
}

#[utoipa::path(
    get, path = "/api/v1/users/me/preferences", tag = "preferences",
    responses(
        (status = 200, description = "The caller's preferences, or the defaults (version 0)", body = docs::PreferencesDoc,
            headers(("ETag" = String, description = "Strong ETag of the version"))),
        (status = 304, description = "Not modified"),
        docs::UserReadErrors,
    ),
    security(("bearer" = []))
)]
/// Reads the caller's preferences.
#[tracing::instrument(skip_all)]
pub async fn get(
    req: HttpRequest,
    state: Data<ApiState>,
    User(user): User,
) -> Result<HttpResponse, ApiError> {
    let stored = state.preferences.get(user.user_id).await?;
    if not_modified(&req, stored.version) {
        return Ok(HttpResponse::NotModified()
            .insert_header(ETag(etag(stored.version)))
            .finish());
    }
    Ok(respond(&stored))
}

#[utoipa::path(
    put, path = "/api/v1/users/me/preferences", tag = "preferences",
    request_body(content = docs::PreferencesDoc, content_type = "application/json",
        description = "The full preferences; omitted fields take their defaults"),
    responses(
        (status = 200, description = "Stored", body = docs::PreferencesDoc),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Replaces the caller's preferences.
#[tracing::instrument(skip_all)]
pub async fn put(
    req: HttpRequest,
    state: Data<ApiState>,
    User(user): User,
    body: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let expected = precondition(&req, &state)?;
    let stored = state
        .preferences
        .replace(user.user_id, &body, expected)
        .await?;
    Ok(respond(&stored))
}

#[utoipa::path(
    patch, path = "/api/v1/users/me/preferences", tag = "preferences",
    request_body(content = docs::PreferencesDoc, content_type = "application/merge-patch+json",
        description = "An RFC 7396 merge patch; null resets a field to its default"),
    responses(
        (status = 200, description = "Stored", body = docs::PreferencesDoc),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Merge-patches the caller's preferences.
#[tracing::instrument(skip_all)]
pub async fn patch(
    req: HttpRequest,
    state: Data<ApiState>,
    User(user): User,
    body: Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let expected = precondition(&req, &state)?;
    let stored = state
        .preferences
        .patch(user.user_id, &body, expected)
        .await?;
    Ok(respond(&stored))
}
