//! `/health/live` and `/health/ready`.

use actix_web::{HttpResponse, web::Data};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{error::ApiError, openapi::docs, state::ApiState};

/// The answer of both health routes.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` when live, `ready` when the database answers.
    status: HealthStatus,
}

/// What a health route found.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// The process serves HTTP.
    Ok,
    /// The database is reachable.
    Ready,
}

#[utoipa::path(get, path = "/health/live", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
/// Liveness: answers as long as the process serves HTTP.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: HealthStatus::Ok,
    })
}

#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses(
        (status = 200, description = "The database is reachable", body = Health),
        (status = 503, response = docs::Unavailable),
    ))]
/// Readiness: the database answers.
pub async fn ready(state: Data<ApiState>) -> Result<HttpResponse, ApiError> {
    state
        .readiness
        .check()
        .await
        .map_err(ApiError::Unavailable)?;
    Ok(HttpResponse::Ok().json(Health {
        status: HealthStatus::Ready,
    }))
}
