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
        (status = 200, description = "One page of the user's settings, ordered by key; secrets redacted", body = SettingList),
        docs::AdminErrors,
    ),
    security(("bearer" = []))
)]
/// Lists any user's settings, a page at a time (role `admin`; audited).
#[tracing::instrument(skip_all)]
pub async fn settings(
    state: Data<ApiState>,
    Admin(actor): Admin,
    user_id: Path<Uuid>,
    query: Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let after = query.after()?;
    let page = state
        .settings
        .list_settings_as_admin(
            &actor,
            UserId::new(*user_id),
            query.category.as_deref(),
            after.as_deref(),
            query.limit,
        )
        .await?;
    Ok(HttpResponse::Ok().json(SettingList::from(page)))
}

#[utoipa::path(
    get, path = "/api/v1/admin/users/{user_id}/preferences", tag = "admin",
    params(("user_id" = Uuid, Path, description = "The user")),
    responses(
        (status = 200, description = "The user's preferences", body = docs::Preferences),
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
