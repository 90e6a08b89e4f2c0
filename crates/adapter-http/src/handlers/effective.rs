//! `/api/v1/users/me/effective`: the client's start-up read, every preference and setting in
//! effect with its source, in one answer with an ETag of its bytes (so `If-None-Match` gives
//! 304 until anything in any layer changes); and support's audited read of the same view.

use std::{
    collections::BTreeMap,
    hash::{DefaultHasher, Hasher},
    sync::Arc,
};

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::{ContentType, ETag, EntityTag},
    web::{Data, Path, Query},
};
use domain::{
    UserId, ValidationErrors, defaults::EffectiveSetting, devices::DeviceId, layers::Layer,
    preferences::PreferenceField, services::EffectiveView,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::{Admin, User},
    conditional::not_modified_since,
    error::ApiError,
    openapi::docs,
    state::ApiState,
    views::RenderedView,
};

/// One setting of the view.
#[derive(Serialize, ToSchema)]
pub struct EffectiveEntry<'a> {
    /// The value in effect; `null` when redacted.
    #[schema(value_type = Value)]
    value: &'a Value,
    /// True when the value is a secret and was withheld.
    redacted: bool,
    /// The layer the value comes from.
    #[schema(value_type = String, example = "deployment")]
    source: Layer,
    /// The declared type.
    data_type: &'a str,
    category: Option<&'a str>,
    /// The version of the value in its layer (0 for a builtin default).
    version: i64,
    /// Whether the deployment enforces the key.
    enforced: bool,
}

impl<'a> From<&'a EffectiveSetting> for EffectiveEntry<'a> {
    fn from(e: &'a EffectiveSetting) -> Self {
        Self {
            value: &e.value,
            redacted: e.redacted,
            source: e.source,
            data_type: e.data_type.as_str(),
            category: e.category.as_ref().map(|c| c.as_str()),
            version: e.version,
            enforced: e.enforced,
        }
    }
}

/// Everything in effect for the caller, serialized straight from the domain's view.
#[derive(Serialize, ToSchema)]
pub struct EffectiveRepresentation<'a> {
    /// Every preference field in effect.
    #[schema(value_type = Object)]
    preferences: &'a domain::preferences::Preferences,
    /// The layer each preference field comes from.
    #[schema(value_type = BTreeMap<String, String>)]
    preference_sources: &'a BTreeMap<PreferenceField, Layer>,
    /// Every setting some layer has, by key.
    #[schema(value_type = BTreeMap<String, EffectiveEntry>)]
    settings: BTreeMap<&'a str, EffectiveEntry<'a>>,
}

impl<'a> From<&'a EffectiveView> for EffectiveRepresentation<'a> {
    fn from(view: &'a EffectiveView) -> Self {
        Self {
            preferences: &view.preferences.preferences,
            preference_sources: &view.preferences.sources,
            settings: view
                .settings
                .iter()
                .map(|(key, e)| (key.as_str(), e.into()))
                .collect(),
        }
    }
}

/// The view's bytes and their ETag: a hash of the bytes, so it changes exactly when the
/// answer does, whichever layer changed.
fn render(view: &EffectiveView) -> Result<RenderedView, ApiError> {
    let body = serde_json::to_vec(&EffectiveRepresentation::from(view))
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("rendering the view")))?;
    let mut hasher = DefaultHasher::new();
    hasher.write(&body);
    Ok(RenderedView {
        body,
        tag: format!("{:016x}", hasher.finish()),
    })
}

fn respond(req: &HttpRequest, view: &RenderedView) -> HttpResponse {
    let tag = EntityTag::new_strong(view.tag.clone());
    if not_modified_since(req, &tag) {
        return HttpResponse::NotModified()
            .insert_header(ETag(tag))
            .finish();
    }
    HttpResponse::Ok()
        .insert_header(ETag(tag))
        .insert_header(ContentType::json())
        .body(view.body.clone())
}

/// The device a view is for.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DeviceQuery {
    /// One of the caller's devices: its overrides apply (`^[A-Za-z0-9._-]{1,64}$`).
    pub device: Option<String>,
}

impl DeviceQuery {
    /// The named device, validated.
    ///
    /// # Errors
    /// 422 `invalid_device_id` for a malformed id.
    pub fn device(&self) -> Result<Option<DeviceId>, ApiError> {
        self.device
            .as_deref()
            .map(|raw| {
                DeviceId::parse(raw).map_err(|e| ApiError::Validation(ValidationErrors::single(e)))
            })
            .transpose()
    }
}

#[utoipa::path(
    get, path = "/api/v1/users/me/effective", tag = "settings",
    params(DeviceQuery),
    responses(
        (status = 200, description = "Every preference and setting in effect, with its source; secrets redacted", body = EffectiveRepresentation,
            headers(("ETag" = String, description = "Strong ETag of the answer's bytes"))),
        (status = 304, description = "Not modified (If-None-Match matched)"),
        docs::UserReadErrors,
    ),
    security(("bearer" = []))
)]
/// Reads everything in effect for the caller (the start-up read of a client).
#[tracing::instrument(skip_all)]
pub async fn view(
    req: HttpRequest,
    state: Data<ApiState>,
    User(user): User,
    query: Query<DeviceQuery>,
) -> Result<HttpResponse, ApiError> {
    let user = user.user_id;
    let device = query.device()?;
    let build = || state.effective.view(user, device.as_ref());
    let Some(cache) = &state.views else {
        return Ok(respond(&req, &render(&build().await?)?));
    };
    let name = device.as_ref().map(DeviceId::as_str);
    if let Some(cached) = cache.get(user, name).await {
        return Ok(respond(&req, &cached));
    }
    // Taken before the view is built: a change meanwhile makes the stored view unservable.
    let stamp = cache.stamp(user);
    let rendered = Arc::new(render(&build().await?)?);
    cache.put(user, name, stamp, Arc::clone(&rendered)).await;
    Ok(respond(&req, &rendered))
}

#[utoipa::path(
    get, path = "/api/v1/admin/users/{user_id}/effective", tag = "admin",
    params(("user_id" = Uuid, Path, description = "The user"), DeviceQuery),
    responses(
        (status = 200, description = "Every preference and setting in effect for the user, with its source; secrets redacted", body = EffectiveRepresentation),
        (status = 304, description = "Not modified (If-None-Match matched)"),
        docs::AdminErrors,
    ),
    security(("bearer" = []))
)]
/// Reads any user's effective view (role `admin`; audited).
#[tracing::instrument(skip_all)]
pub async fn admin_view(
    req: HttpRequest,
    state: Data<ApiState>,
    Admin(actor): Admin,
    user_id: Path<Uuid>,
    query: Query<DeviceQuery>,
) -> Result<HttpResponse, ApiError> {
    let device = query.device()?;
    let view = state
        .effective
        .view_as_admin(&actor, UserId::new(*user_id), device.as_ref())
        .await?;
    Ok(respond(&req, &render(&view)?))
}
