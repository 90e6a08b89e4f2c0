//! `/internal/v1/...`: plaintext secrets for integration services (role `service`; audited).

use actix_web::{
    HttpResponse,
    http::header::{CacheControl, CacheDirective},
    web::{Data, Path},
};
use domain::UserId;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{auth::Service, error::ApiError, openapi::docs, state::ApiState};

/// A secret's plaintext, as integration services read it.
#[derive(Serialize, ToSchema)]
pub struct SecretPlaintext {
    /// The encrypted setting's key.
    key: String,
    /// The decrypted value.
    #[schema(value_type = Value)]
    value: Value,
}

#[utoipa::path(
    get, path = "/internal/v1/users/{user_id}/secrets/{key}", tag = "internal",
    params(("user_id" = Uuid, Path, description = "The user"), ("key" = String, Path, description = "An encrypted setting's key")),
    responses(
        (status = 200, description = "The plaintext value", body = SecretPlaintext),
        (status = 401, response = docs::Unauthorized),
        (status = 403, response = docs::Forbidden),
        (status = 404, response = docs::NotFound),
        (status = 422, response = docs::Unprocessable),
        (status = 503, response = docs::Unavailable),
    ),
    security(("bearer" = []))
)]
/// Reads the plaintext of a user's secret (role `service`; audited).
#[tracing::instrument(skip_all)]
pub async fn secret(
    state: Data<ApiState>,
    Service(actor): Service,
    path: Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, key) = path.into_inner();
    let secret = state
        .settings
        .get_secret(&actor, UserId::new(user_id), &key)
        .await?;
    let value = secret.expose_json().map_err(|e| {
        ApiError::Internal(anyhow::Error::new(e).context("stored secret is not JSON"))
    })?;
    Ok(HttpResponse::Ok()
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .json(SecretPlaintext { key, value }))
}
