//! `/api/v1/users/me/preferences`: read with defaults, full replace, JSON merge patch.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::{ETag, EntityTag},
    web::{Data, Json},
};
use domain::{
    layers::Layer,
    preferences::{PreferenceField, Preferences},
    services::EffectivePreferences,
};
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::{
    auth::User,
    conditional::{etag, not_modified_since, precondition},
    error::ApiError,
    openapi::docs,
    state::ApiState,
};

/// The API representation: the values in effect, the source of each, the enforced fields,
/// plus the user layer's read-only `version` and timestamps, serialized straight from the
/// domain types (no intermediate JSON tree on this hot read path).
#[derive(Serialize)]
pub struct Representation<'a> {
    #[serde(flatten)]
    preferences: &'a Preferences,
    sources: &'a BTreeMap<PreferenceField, Layer>,
    enforced: &'a BTreeSet<PreferenceField>,
    version: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    created_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    updated_at: Option<OffsetDateTime>,
}

/// The representation of effective preferences.
pub fn representation(effective: &EffectivePreferences) -> Representation<'_> {
    Representation {
        preferences: &effective.resolved.preferences,
        sources: &effective.resolved.sources,
        enforced: &effective.enforced,
        version: effective.version,
        created_at: effective.created_at,
        updated_at: effective.updated_at,
    }
}

/// The ETag of a representation: the user layer's version, which conditions writes, and,
/// once the deployment sets preferences, that layer's version too (`"7.12"`), so a cached
/// copy is stale when either changes.
pub fn preferences_etag(effective: &EffectivePreferences) -> EntityTag {
    match effective.deployment_version {
        0 => etag(effective.version),
        deployment => EntityTag::new_strong(format!("{}.{deployment}", effective.version)),
    }
}

pub(crate) fn respond(effective: &EffectivePreferences) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(ETag(preferences_etag(effective)))
        .json(representation(effective))
}

#[utoipa::path(
    get, path = "/api/v1/users/me/preferences", tag = "preferences",
    responses(
        (status = 200, description = "The caller's preferences in effect, with the source of each field", body = docs::Preferences,
            headers(("ETag" = String, description = "Strong ETag: the user layer's version, and the deployment's when it sets preferences"))),
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
    let tag = preferences_etag(&stored);
    if not_modified_since(&req, &tag) {
        return Ok(HttpResponse::NotModified()
            .insert_header(ETag(tag))
            .finish());
    }
    Ok(respond(&stored))
}

#[utoipa::path(
    put, path = "/api/v1/users/me/preferences", tag = "preferences",
    request_body(content = docs::PreferencesReplace, content_type = "application/json",
        description = "The user's own values; omitted fields inherit"),
    responses(
        (status = 200, description = "Stored", body = docs::Preferences),
        (status = 409, response = docs::Conflict),
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
        description = "An RFC 7396 merge patch; null makes a field inherit again"),
    responses(
        (status = 200, description = "Stored", body = docs::Preferences),
        (status = 409, response = docs::Conflict),
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
