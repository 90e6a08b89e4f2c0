//! `/api/v1/settings/schema`: the known-key registry, categories, data types and limits.

use actix_web::{HttpResponse, web::Data};
use domain::{
    registry::KnownKeySpec,
    settings::{DataType, Limits},
};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::state::ApiState;

/// The answer of the registry route.
#[derive(Serialize, ToSchema)]
pub struct Registry<'a> {
    /// The known keys, in the registry's order.
    keys: Vec<RegistryKey<'a>>,
    /// The configured categories.
    categories: &'a [String],
    /// Every `data_type`.
    data_types: Vec<&'static str>,
    /// The bounds every write is checked against.
    limits: RegistryLimits,
}

/// One known key: what the registry's data file declares for it.
#[derive(Serialize, ToSchema)]
pub struct RegistryKey<'a> {
    /// An exact key or a pattern whose `{name}` segments match any one segment.
    pattern: &'a str,
    /// Category given to the setting.
    #[schema(required = true)]
    category: Option<&'a str>,
    /// Required data type.
    data_type: &'static str,
    /// Sensitive keys are always stored encrypted and never shown in clear.
    sensitive: bool,
    /// What the setting is for.
    description: &'a str,
    /// Value a client may assume when the setting is absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Value)]
    default: Option<&'a Value>,
    /// JSON Schema (draft 2020-12) of the value (the plaintext, for sensitive keys).
    #[schema(value_type = Value)]
    schema: &'a Value,
}

impl<'a> From<&'a KnownKeySpec> for RegistryKey<'a> {
    fn from(spec: &'a KnownKeySpec) -> Self {
        Self {
            pattern: &spec.pattern,
            category: spec.category.as_deref(),
            data_type: spec.data_type.as_str(),
            sensitive: spec.sensitive,
            description: &spec.description,
            default: spec.default.as_ref(),
            schema: &spec.schema,
        }
    }
}

/// The deployment's bounds on settings.
#[derive(Serialize, ToSchema)]
pub struct RegistryLimits {
    /// Largest value, in bytes of its JSON text without the whitespace between tokens.
    max_value_bytes: usize,
    /// Deepest nesting of arrays and objects in a value.
    max_json_depth: usize,
    /// Longest description, in characters.
    max_description_chars: usize,
    /// Most settings one user may hold.
    max_settings_per_user: u32,
    /// Most bytes of values one user may hold, as the store measures them.
    max_bytes_per_user: u64,
    /// Most items in one bulk write.
    max_bulk_items: usize,
    /// Most devices of one user that hold overrides.
    max_devices_per_user: u32,
}

impl From<&Limits> for RegistryLimits {
    fn from(limits: &Limits) -> Self {
        Self {
            max_value_bytes: limits.max_value_bytes,
            max_json_depth: limits.max_json_depth,
            max_description_chars: limits.max_description_chars,
            max_settings_per_user: limits.max_settings_per_user,
            max_bytes_per_user: limits.max_bytes_per_user,
            max_bulk_items: limits.max_bulk_items,
            max_devices_per_user: limits.max_devices_per_user,
        }
    }
}

#[utoipa::path(
    get, path = "/api/v1/settings/schema", tag = "settings",
    responses((status = 200, description = "The known-key registry", body = Registry))
)]
/// Serves the registry of known keys with their JSON Schemas.
pub async fn registry(state: Data<ApiState>) -> HttpResponse {
    let settings = &state.settings;
    HttpResponse::Ok().json(Registry {
        keys: settings
            .registry()
            .entries()
            .map(|e| e.spec().into())
            .collect(),
        categories: settings.categories().names(),
        data_types: DataType::ALL.iter().map(|t| t.as_str()).collect(),
        limits: settings.limits().into(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(default: Option<Value>) -> KnownKeySpec {
        KnownKeySpec {
            pattern: "ui.{name}.theme".into(),
            category: None,
            data_type: DataType::String,
            sensitive: false,
            description: "The theme".into(),
            default,
            schema: json!({"type": "string"}),
        }
    }

    #[test]
    fn a_registry_key_renders_as_the_registry_declares_it() {
        for spec in [spec(None), spec(Some(json!("dark")))] {
            let rendered = serde_json::to_value(RegistryKey::from(&spec)).ok();
            assert_eq!(rendered, serde_json::to_value(&spec).ok());
        }
    }

    #[test]
    fn the_limits_render_as_configured() {
        let limits = Limits::default();
        let rendered = serde_json::to_value(RegistryLimits::from(&limits)).ok();
        assert_eq!(rendered, serde_json::to_value(limits).ok());
    }
}
