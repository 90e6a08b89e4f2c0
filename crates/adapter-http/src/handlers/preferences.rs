//! `/api/v1/users/me/preferences`: read with defaults, full replace, JSON merge patch.

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::ETag,
    web::{Data, Json},
};
use domain::preferences::{Preferences, StoredPreferences};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::{
    auth::User,
    conditional::{etag, not_modified, precondition},
    error::ApiError,
    openapi::docs,
    state::ApiState,
};

/// The API representation: the document plus read-only `version` and timestamps, serialized
/// straight from the domain type (no intermediate JSON tree on this hot read path).
#[derive(Serialize)]
pub struct Representation<'a> {
    #[serde(flatten)]
    preferences: &'a Preferences,
    version: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    created_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    updated_at: Option<OffsetDateTime>,
}

/// The representation of stored (or default) preferences.
pub fn representation(stored: &StoredPreferences) -> Representation<'_> {
    Representation {
        preferences: &stored.preferences,
        version: stored.version,
        created_at: stored.created_at,
        updated_at: stored.updated_at,
    }
}

fn respond(stored: &StoredPreferences) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ETag(etag(stored.version)))
        .json(representation(stored))
}

#[utoipa::path(
    get, path = "/api/v1/users/me/preferences", tag = "preferences",
    responses(
        (status = 200, description = "The caller's preferences, or the defaults (version 0)", body = docs::Preferences,
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
    request_body(content = docs::PreferencesReplace, content_type = "application/json",
        description = "The full preferences; omitted fields take their defaults"),
    responses(
        (status = 200, description = "Stored", body = docs::Preferences),
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
    let expected = precondition(&req, state.options.require_if_match)?;
    let stored = state
        .preferences
        .replace(user.user_id, &body, expected)
        .await?;
    Ok(respond(&stored))
}

#[utoipa::path(
    patch, path = "/api/v1/users/me/preferences", tag = "preferences",
    request_body(content = docs::PreferencesPatch, content_type = "application/merge-patch+json",
        description = "An RFC 7396 merge patch; null resets a field to its default"),
    responses(
        (status = 200, description = "Stored", body = docs::Preferences),
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
    let expected = precondition(&req, state.options.require_if_match)?;
    let stored = state
        .preferences
        .patch(user.user_id, &body, expected)
        .await?;
    Ok(respond(&stored))
}
