//! `/health/live` and `/health/ready`.

use actix_web::{HttpResponse, web::Data};
use serde_json::json;

use crate::{error::ApiError, openapi::docs, state::ApiState};

#[utoipa::path(get, path = "/health/live", tag = "operations",
    responses((status = 200, description = "The process is up", body = docs::HealthDoc)))]
/// Liveness: answers as long as the process serves HTTP.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

#[utoipa::path(get, path = "/health/ready", tag = "operations",
    responses(
        (status = 200, description = "The database is reachable", body = docs::HealthDoc),
        (status = 503, response = docs::Unavailable),
    ))]
/// Readiness: the database answers.
pub async fn ready(state: Data<ApiState>) -> Result<HttpResponse, ApiError> {
    state
        .readiness
        .check()
        .await
        .map_err(ApiError::Unavailable)?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}
