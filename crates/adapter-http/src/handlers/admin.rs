//! `/api/v1/admin/users/{user_id}/...`: read-only support access to any user, audited.

use actix_web::{
    HttpResponse,
    web::{Data, Path, Query},
};
use domain::UserId;
use uuid::Uuid;

use super::{
    preferences::representation,
    settings::{ListQuery, SettingList},
};
use crate::{auth::Admin, error::ApiError, openapi::docs, state::ApiState};

#[utoipa::path(
    get, path = "/api/v1/admin/users/{user_id}/settings", tag = "admin",
    params(("user_id" = Uuid, Path, description = "The user"), ListQuery),
    responses(
        (status = 200, description = "The user's settings; secrets redacted", body = docs::SettingListDoc),
        docs::AdminErrors,
    ),
    security(("bearer" = []))
)]
/// Lists any user's settings (role `admin`; audited).
#[tracing::instrument(skip_all)]
pub async fn settings(
    state: Data<ApiState>,
    Admin(actor): Admin,
    user_id: Path<Uuid>,
    query: Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let settings = state
        .settings
        .list_settings_as_admin(&actor, UserId::new(*user_id), query.category.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(SettingList { settings }))
}

#[utoipa::path(
    get, path = "/api/v1/admin/users/{user_id}/preferences", tag = "admin",
    params(("user_id" = Uuid, Path, description = "The user")),
    responses(
        (status = 200, description = "The user's preferences", body = docs::PreferencesDoc),
        docs::AdminErrors,
    ),
    security(("bearer" = []))
)]
/// Reads any user's preferences (role `admin`; audited).
#[tracing::instrument(skip_all)]
pub async fn preferences(
    state: Data<ApiState>,
    Admin(actor): Admin,
    user_id: Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let stored = state
        .preferences
        .get_as_admin(&actor, UserId::new(*user_id))
        .await?;
    Ok(HttpResponse::Ok().json(representation(&stored)))
}
