//! Export and import: `GET /api/v1/users/me/export` (and support's audited
//! `GET /api/v1/admin/users/{user_id}/export`), `POST /api/v1/users/me/import`.

use std::num::NonZeroU32;

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::{self, ContentDisposition, DispositionParam, DispositionType},
    web::{Data, Json, Query},
};
use domain::{
    UserId,
    portability::{ExportDocument, ExportedIntegration, ImportDocument, ImportMode, ImportPlan},
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    auth::{Admin, User},
    error::ApiError,
    openapi::docs,
    rate_limit::{AccessKind, count_more},
    state::ApiState,
};

/// How to import.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// `merge` (default): add and change only; `replace`: also remove what the document does
    /// not hold (never secrets, integrations or enforced keys).
    #[param(value_type = Option<String>, pattern = "^(merge|replace)$")]
    #[serde(default)]
    pub mode: ImportMode,
    /// `true`: answer the plan and change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// An export document (what `GET /api/v1/users/me/export` answers).
#[derive(ToSchema)]
#[schema(example = json!({
    "format": "user-settings-export", "format_version": 1,
    "exported_at": "2026-12-04T10:00:00Z", "user_id": "3f8e0c3a-52a4-4b4b-9c55-0c2b0f4f8b51",
    "preferences": {"theme": "dark"},
    "devices": {"living-room-tv": {"preferences": {"auto_play_videos": false},
        "settings": [{"key": "playback.volume", "value": 40, "category": null,
            "data_type": "number", "description": null, "updated_at": "2026-12-01T09:00:00Z"}]}},
    "settings": [{"key": "ui.layout", "value": {"columns": 3}, "category": "ui",
        "data_type": "json", "description": null, "updated_at": "2026-12-01T09:00:00Z"}],
    "secrets": [{"key": "music.apikey", "updated_at": "2026-11-30T08:00:00Z"}],
    "integrations": [{"provider": "trakt", "connected": true, "username": "sam",
        "connected_at": "2026-11-02T12:00:00Z"}]
}))]
pub struct ExportSchema {
    /// `user-settings-export`.
    pub format: String,
    /// `1`.
    pub format_version: u32,
    /// When it was made.
    #[schema(format = DateTime)]
    pub exported_at: String,
    /// Whose data it is.
    pub user_id: Uuid,
    /// The user's own preferences (the fields they set).
    pub preferences: serde_json::Value,
    /// Each device's `{"preferences", "settings"}`, by device id.
    pub devices: serde_json::Value,
    /// `[{"key", "value", "category", "data_type", "description", "updated_at"}]`.
    pub settings: Vec<serde_json::Value>,
    /// `[{"key", "updated_at"}]`: names only.
    pub secrets: Vec<serde_json::Value>,
    /// `[{"provider", "connected", "username", "connected_at"}]`: no tokens.
    pub integrations: Vec<serde_json::Value>,
}

/// A document to import: an export (the caller's own or another user's), or any document of
/// its shape. Only `format` and `format_version` are required; an absent or `null` member holds
/// nothing. Each item is checked by the rules of a normal write (see the settings routes).
#[derive(ToSchema)]
pub struct ImportSchema {
    /// `user-settings-export`.
    #[schema(pattern = "^user-settings-export$")]
    pub format: String,
    /// `1`.
    #[schema(minimum = 1, maximum = 1)]
    pub format_version: u32,
    /// Not read.
    pub exported_at: Option<String>,
    /// Not read: another user's export imports as well.
    pub user_id: Option<Uuid>,
    /// The preference fields to set, as in a full replace of the preferences.
    #[schema(value_type = Option<Object>)]
    pub preferences: Option<serde_json::Value>,
    /// Each device's `{"preferences", "settings"}`, by device id.
    #[schema(value_type = Option<Object>)]
    pub devices: Option<serde_json::Value>,
    /// `[{"key", "value", "category", "data_type", "description"}]`; `updated_at` is not read.
    #[schema(value_type = Option<Vec<Object>>)]
    pub settings: Option<Vec<serde_json::Value>>,
    /// Names only (`[{"key", "updated_at"}]`): never imported; a `value` is refused.
    #[schema(value_type = Option<Vec<Object>>)]
    pub secrets: Option<Vec<serde_json::Value>>,
    /// Not imported: a connection needs the user at the provider.
    #[schema(value_type = Option<Vec<Object>>)]
    pub integrations: Option<Vec<serde_json::Value>>,
}

/// What an import does (or, in a dry run, would do), item by item: `settings/{key}`,
/// `preferences`, `devices/{device_id}/settings/{key}`, `devices/{device_id}/preferences`.
#[derive(ToSchema)]
pub struct ImportPlanSchema {
    /// Items created.
    pub create: Vec<String>,
    /// Items changed.
    pub update: Vec<String>,
    /// Items removed (`mode=replace` only).
    pub delete: Vec<String>,
    /// Items already as the document holds them.
    pub unchanged: Vec<String>,
}

#[utoipa::path(
    get, path = "/api/v1/users/me/export", tag = "portability",
    responses(
        (status = 200, description = "Everything the caller stored, as a download; secrets and tokens by name only", body = ExportSchema,
            headers(("Content-Disposition" = String, description = "attachment; filename=\"user-settings-export.json\""))),
        docs::UserReadErrors,
    ),
    security(("bearer" = []))
)]
/// Exports everything the caller stored.
#[tracing::instrument(skip_all)]
pub async fn export(state: Data<ApiState>, User(user): User) -> Result<HttpResponse, ApiError> {
    let integrations = integrations(&state, user.user_id).await?;
    let document = state.portability.export(user.user_id, integrations).await?;
    Ok(download(&document))
}

#[utoipa::path(
    get, path = "/api/v1/admin/users/{user_id}/export", tag = "admin",
    params(("user_id" = Uuid, Path, description = "The user")),
    responses(
        (status = 200, description = "Everything the user stored (for an access request); secrets and tokens by name only", body = ExportSchema),
        docs::AdminErrors,
    ),
    security(("bearer" = []))
)]
/// Exports everything a user stored (role `admin`; audited).
#[tracing::instrument(skip_all)]
pub async fn admin_export(
    state: Data<ApiState>,
    Admin(actor): Admin,
    user_id: actix_web::web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let subject = UserId::new(*user_id);
    let integrations = integrations(&state, subject).await?;
    let document = state
        .portability
        .export_as_admin(&actor, subject, integrations)
        .await?;
    Ok(download(&document))
}

#[utoipa::path(
    post, path = "/api/v1/users/me/import", tag = "portability",
    params(ImportQuery),
    request_body(content = ImportSchema, content_type = "application/json",
        description = "An export document (the caller's own or another user's)"),
    responses(
        (status = 200, description = "The plan, done (or, with dry_run, only planned)", body = ImportPlanSchema),
        (status = 409, response = docs::Conflict),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Imports an export document: every item validated as a normal write (every problem listed
/// at once), then written in one transaction, all or nothing. Each changed item counts as one
/// write against the rate limit. Secrets in the document are refused.
#[tracing::instrument(skip_all)]
pub async fn import(
    req: HttpRequest,
    state: Data<ApiState>,
    User(user): User,
    query: Query<ImportQuery>,
    body: Json<ImportDocument>,
) -> Result<HttpResponse, ApiError> {
    let (plan, changes) = state
        .portability
        .plan(user.user_id, &body, query.mode)
        .await?;
    if !query.dry_run {
        charge(&req, user.user_id, &plan).await?;
        state.portability.apply(user.user_id, &changes).await?;
    }
    Ok(HttpResponse::Ok().json(&plan))
}

/// Counts the import's changed items beyond the one the request itself was counted as;
/// refuses the whole import when the caller has too few writes left.
async fn charge(req: &HttpRequest, user: UserId, plan: &ImportPlan) -> Result<(), ApiError> {
    let more = u32::try_from(plan.changes().saturating_sub(1)).unwrap_or(u32::MAX);
    match NonZeroU32::new(more) {
        Some(more) => count_more(req, user, AccessKind::Write, more).await,
        None => Ok(()),
    }
}

/// The connections of `user`, without tokens (none when integrations are off).
async fn integrations(
    state: &ApiState,
    user: UserId,
) -> Result<Vec<ExportedIntegration>, ApiError> {
    let Some(api) = &state.integrations else {
        return Ok(Vec::new());
    };
    let statuses = api
        .connections
        .list(user)
        .await
        .map_err(super::integrations::status_error)?;
    Ok(statuses
        .into_iter()
        .filter(|s| s.connected || s.username.is_some())
        .map(|s| ExportedIntegration {
            provider: s.provider.as_str().to_owned(),
            connected: s.connected,
            username: s.username,
            connected_at: s.connected_at,
        })
        .collect())
}

/// The document as a file to save.
fn download(document: &ExportDocument) -> HttpResponse {
    let filename = format!("user-settings-export-{}.json", document.user_id);
    HttpResponse::Ok()
        .insert_header(ContentDisposition {
            disposition: DispositionType::Attachment,
            parameters: vec![DispositionParam::Filename(filename)],
        })
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(document)
}
