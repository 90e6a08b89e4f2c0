//! `/api/v1/users/me/settings`: the caller's own key/value settings.
//!
//! Writes take a [`WritePermit`] before their body is read, and keep values as JSON text
//! (`RawValue`) until the service has checked their size and depth.

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::{self, ETag},
    web::{Data, Json, Path, Query},
};
use domain::{
    UserId,
    services::{SettingInput, SettingsPage},
    settings::{Limits, SettingKey, SettingView},
};
use serde::{
    Deserialize, Deserializer, Serialize,
    de::{self, SeqAccess, Visitor},
};
use serde_json::{Value, value::RawValue};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::{
    auth::User,
    conditional::{etag, not_modified, precondition},
    error::ApiError,
    openapi::docs,
    state::ApiState,
    write_permits::WritePermit,
};

/// Query of the list routes.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Only settings of this category.
    pub category: Option<String>,
    /// Most settings in the answer (1–1000, default 1000).
    pub limit: Option<u32>,
    /// Where to continue: the `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListQuery {
    /// The key the page starts after. The cursor is that key itself: its format is then the
    /// key's, which the document can state exactly (an encoded cursor could not be).
    ///
    /// # Errors
    /// None here; the service refuses a cursor that is not a key (422 `invalid_cursor`).
    pub fn after(&self) -> Result<Option<String>, ApiError> {
        Ok(self.cursor.clone())
    }
}

/// The cursor of the page after `key`.
fn cursor(key: &SettingKey) -> String {
    key.as_str().to_owned()
}

/// Body of `PUT .../settings/{key}`.
// The document adds the constraints the domain checks (enums, the value's type per
// `data_type`, lengths) when it is built: see `openapi::document`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingBody {
    /// Any JSON value except null; it must be of the type `data_type` names.
    #[serde(default)]
    #[schema(value_type = Value)]
    value: Option<Box<RawValue>>,
    /// Free text.
    #[serde(default)]
    description: Option<String>,
    /// One of the configured categories.
    #[serde(default)]
    category: Option<String>,
    /// Inferred from the value when absent.
    #[serde(default)]
    data_type: Option<String>,
}

impl SettingBody {
    /// The input of a write of `key`.
    pub(crate) fn into_input(self, key: String) -> SettingInput {
        SettingInput {
            key,
            value: self.value,
            description: self.description,
            category: self.category,
            data_type: self.data_type,
        }
    }
}

/// Body of `POST .../settings` and one item of the bulk write: the single-setting body plus
/// its key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingItem {
    /// The key, `category.service.field`.
    key: String,
    /// Any JSON value except null; it must be of the type `data_type` names.
    #[serde(default)]
    #[schema(value_type = Value)]
    value: Option<Box<RawValue>>,
    /// Free text.
    #[serde(default)]
    description: Option<String>,
    /// One of the configured categories.
    #[serde(default)]
    category: Option<String>,
    /// Inferred from the value when absent.
    #[serde(default)]
    data_type: Option<String>,
}

impl From<SettingItem> for SettingInput {
    fn from(item: SettingItem) -> Self {
        SettingInput {
            key: item.key,
            value: item.value,
            description: item.description,
            category: item.category,
            data_type: item.data_type,
        }
    }
}

/// Body of the bulk write.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkBody {
    /// The settings to write, each key once.
    #[serde(deserialize_with = "at_most_the_ceiling")]
    #[schema(max_items = 1000)]
    settings: Vec<SettingItem>,
}

/// The items of a bulk, refusing the body as soon as it holds more than any deployment may
/// accept: many tiny items would otherwise cost far more memory than their bytes. (The
/// configured, lower, bound is the service's to report.)
fn at_most_the_ceiling<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SettingItem>, D::Error> {
    struct Items;
    impl<'de> Visitor<'de> for Items {
        type Value = Vec<SettingItem>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "at most {} settings", Limits::BULK_ITEMS_CEILING)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(item) = seq.next_element()? {
                if items.len() == Limits::BULK_ITEMS_CEILING {
                    return Err(de::Error::invalid_length(items.len() + 1, &self));
                }
                items.push(item);
            }
            Ok(items)
        }
    }
    d.deserialize_seq(Items)
}

/// A setting as every public read shows it: secrets have `value: null` and `redacted: true`.
#[derive(Serialize, ToSchema)]
pub struct SettingRepresentation {
    /// The key.
    key: String,
    /// The value; `null` when redacted.
    #[schema(value_type = Value)]
    value: Value,
    /// True when the value is a secret and was withheld.
    redacted: bool,
    description: Option<String>,
    category: Option<String>,
    /// The declared type.
    data_type: String,
    /// The version, also the strong ETag.
    version: i64,
    /// First write.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    updated_at: OffsetDateTime,
}

impl From<SettingView> for SettingRepresentation {
    fn from(view: SettingView) -> Self {
        Self {
            key: view.key.as_str().to_owned(),
            value: view.value,
            redacted: view.redacted,
            description: view.description.map(|d| d.as_str().to_owned()),
            category: view.category.map(|c| c.as_str().to_owned()),
            data_type: view.data_type.as_str().to_owned(),
            version: view.version,
            created_at: view.created_at,
            updated_at: view.updated_at,
        }
    }
}

/// A list of settings.
#[derive(Serialize, ToSchema)]
pub struct SettingList {
    /// The settings, ordered by key.
    pub settings: Vec<SettingRepresentation>,
    /// Present when more settings follow: pass it as `cursor` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl From<SettingsPage> for SettingList {
    fn from(page: SettingsPage) -> Self {
        Self {
            settings: page.settings.into_iter().map(Into::into).collect(),
            next_cursor: page.next_after.as_ref().map(cursor),
        }
    }
}

#[utoipa::path(
    get, path = "/api/v1/users/me/settings", tag = "settings",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of the caller's settings, ordered by key; secrets redacted", body = SettingList),
        docs::UserReadErrors,
    ),
    security(("bearer" = []))
)]
/// Lists the caller's settings, a page at a time.
#[tracing::instrument(skip_all)]
pub async fn list(
    state: Data<ApiState>,
    User(user): User,
    query: Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let after = query.after()?;
    let page = state
        .settings
        .list_settings(
            user.user_id,
            query.category.as_deref(),
            after.as_deref(),
            query.limit,
        )
        .await?;
    Ok(HttpResponse::Ok().json(SettingList::from(page)))
}

#[utoipa::path(
    get, path = "/api/v1/users/me/settings/{key}", tag = "settings",
    params(("key" = String, Path, description = "Setting key, e.g. playback.subtitles.defaults")),
    responses(
        (status = 200, description = "The setting; secrets redacted", body = SettingRepresentation,
            headers(("ETag" = String, description = "Strong ETag of the version"))),
        (status = 304, description = "Not modified (If-None-Match matched)"),
        (status = 404, response = docs::NotFound),
        docs::UserReadErrors,
    ),
    security(("bearer" = []))
)]
/// Reads one of the caller's settings.
#[tracing::instrument(skip_all)]
pub async fn get(
    req: HttpRequest,
    state: Data<ApiState>,
    User(user): User,
    key: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let setting = state.settings.get_setting(user.user_id, &key).await?;
    Ok(read_answer(&req, setting))
}

/// The answer to a read of one setting: 304 when `If-None-Match` names its version, else
/// the representation; its ETag either way.
pub(crate) fn read_answer(req: &HttpRequest, setting: SettingView) -> HttpResponse {
    if not_modified(req, setting.version) {
        return HttpResponse::NotModified()
            .insert_header(ETag(etag(setting.version)))
            .finish();
    }
    HttpResponse::Ok()
        .insert_header(ETag(etag(setting.version)))
        .json(SettingRepresentation::from(setting))
}

#[utoipa::path(
    put, path = "/api/v1/users/me/settings/{key}", tag = "settings",
    params(("key" = String, Path, description = "Setting key")),
    request_body(content = SettingBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Updated", body = SettingRepresentation),
        (status = 201, description = "Created", body = SettingRepresentation),
        (status = 409, response = docs::Conflict),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Creates or replaces one of the caller's settings. Sensitive keys and
/// `data_type: encrypted` are stored encrypted and never returned.
#[tracing::instrument(skip_all)]
pub async fn put(
    req: HttpRequest,
    state: Data<ApiState>,
    _permit: WritePermit,
    User(user): User,
    key: Path<String>,
    body: Json<SettingBody>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner().into_input(key.into_inner());
    write_one(&req, &state, user.user_id, input).await
}

#[utoipa::path(
    post, path = "/api/v1/users/me/settings", tag = "settings",
    request_body(content = SettingItem, content_type = "application/json"),
    responses(
        (status = 200, description = "Updated", body = SettingRepresentation),
        (status = 201, description = "Created", body = SettingRepresentation,
            headers(("Location" = String, description = "The setting's own URL"))),
        (status = 409, response = docs::Conflict),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Creates or replaces one of the caller's settings named in the body: exactly as
/// `PUT .../settings/{key}` (same validation, preconditions, quotas and answers), for clients
/// that post `{"key", "value"}` to the collection.
#[tracing::instrument(skip_all)]
pub async fn post(
    req: HttpRequest,
    state: Data<ApiState>,
    _permit: WritePermit,
    User(user): User,
    body: Json<SettingItem>,
) -> Result<HttpResponse, ApiError> {
    write_one(&req, &state, user.user_id, body.into_inner().into()).await
}

/// One setting written under the request's precondition: 201 with `Location` when created,
/// else 200; the ETag of the new version either way.
async fn write_one(
    req: &HttpRequest,
    state: &ApiState,
    user: UserId,
    input: SettingInput,
) -> Result<HttpResponse, ApiError> {
    let expected = precondition(req, state.options.require_if_match)?;
    let (setting, created) = state.settings.set_setting(user, input, expected).await?;
    let location = created.then(|| format!("/api/v1/users/me/settings/{}", setting.key));
    Ok(write_answer(setting, location))
}

/// The answer to a write of one setting: 201 with `Location` when it was created (`location`
/// is its URL), else 200; the ETag of the new version either way.
pub(crate) fn write_answer(setting: SettingView, location: Option<String>) -> HttpResponse {
    let mut response = match location {
        Some(location) => {
            let mut created = HttpResponse::Created();
            created.insert_header((header::LOCATION, location));
            created
        }
        None => HttpResponse::Ok(),
    };
    response
        .insert_header(ETag(etag(setting.version)))
        .json(SettingRepresentation::from(setting))
}

#[utoipa::path(
    delete, path = "/api/v1/users/me/settings/{key}", tag = "settings",
    params(("key" = String, Path, description = "Setting key")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, response = docs::Conflict),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Deletes one of the caller's settings.
#[tracing::instrument(skip_all)]
pub async fn delete(
    req: HttpRequest,
    state: Data<ApiState>,
    _permit: WritePermit,
    User(user): User,
    key: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let expected = precondition(&req, state.options.require_if_match)?;
    state
        .settings
        .delete_setting(user.user_id, &key, expected)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    put, path = "/api/v1/users/me/settings", tag = "settings",
    request_body(content = BulkBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Every setting written, in one transaction", body = SettingList),
        (status = 409, response = docs::Conflict),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Writes many settings at once: all or nothing; every bad item is reported.
#[tracing::instrument(skip_all)]
pub async fn bulk(
    state: Data<ApiState>,
    _permit: WritePermit,
    User(user): User,
    body: Json<BulkBody>,
) -> Result<HttpResponse, ApiError> {
    let written = state
        .settings
        .set_settings(
            user.user_id,
            body.into_inner()
                .settings
                .into_iter()
                .map(Into::into)
                .collect(),
        )
        .await?;
    Ok(HttpResponse::Ok().json(SettingList {
        settings: written.into_iter().map(|(s, _)| s.into()).collect(),
        next_cursor: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bulk_body_is_not_read_past_the_item_ceiling() {
        let mut items = vec![r#"{"key":"ui.a","value":1}"#; Limits::BULK_ITEMS_CEILING + 1];
        // Never reached: the body is refused at the item before.
        items.push(r#"{"unknown_field":1}"#);
        let body = format!(r#"{{"settings":[{}]}}"#, items.join(","));

        let message = serde_json::from_str::<BulkBody>(&body)
            .unwrap_err()
            .to_string();

        assert!(message.contains("at most 1000 settings"), "{message}");
    }

    #[test]
    fn a_bulk_body_at_the_ceiling_is_read_whole() {
        let items = vec![r#"{"key":"ui.a","value":1}"#; Limits::BULK_ITEMS_CEILING];
        let body = format!(r#"{{"settings":[{}]}}"#, items.join(","));
        let parsed: BulkBody = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed.settings.len(), Limits::BULK_ITEMS_CEILING);
    }

    #[test]
    fn a_cursor_names_the_key_it_continues_after() {
        let key = SettingKey::parse("ui.dashboard.layout").unwrap();
        let query = ListQuery {
            category: None,
            limit: None,
            cursor: Some(cursor(&key)),
        };
        assert_eq!(
            query.after().unwrap().as_deref(),
            Some("ui.dashboard.layout")
        );
    }
}
