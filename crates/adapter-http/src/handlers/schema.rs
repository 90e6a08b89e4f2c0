//! `/api/v1/settings/schema`: the known-key registry, categories, data types and limits.

use actix_web::{HttpResponse, web::Data};
use domain::{registry::KnownKeySpec, settings::DataType};
use serde_json::json;

use crate::{openapi::docs, state::ApiState};

#[utoipa::path(
    get, path = "/api/v1/settings/schema", tag = "settings",
    responses((status = 200, description = "The known-key registry", body = docs::RegistryDoc))
)]
/// Serves the registry of known keys with their JSON Schemas.
pub async fn registry(state: Data<ApiState>) -> HttpResponse {
    let settings = &state.settings;
    let keys: Vec<&KnownKeySpec> = settings.registry().entries().map(|e| e.spec()).collect();
    let data_types: Vec<&str> = DataType::ALL.iter().map(|t| t.as_str()).collect();
    HttpResponse::Ok().json(json!({
        "keys": keys,
        "categories": settings.categories().names(),
        "data_types": data_types,
        "limits": settings.limits(),
    }))
}
