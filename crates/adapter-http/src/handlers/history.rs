//! History and restore: the kept versions of a setting (the caller's own, a device's, or, for
//! support, any user's) and of the caller's preferences, newest first; and writing a kept
//! version again.
//!
//! Pages as [`super::paging`] says: a JSON array, the next page in `Link`, its `cursor` the
//! version the page continues below.

use actix_web::{
    HttpRequest, HttpResponse,
    web::{Data, Json, Path, Query},
};
use domain::{
    UserId,
    history::{ChangeActor, ChangeOp, HistoryEntry, HistoryPage},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    paging::PageQuery, preferences::respond as preferences_answer, settings::write_answer,
};
use crate::{
    auth::{Admin, User},
    conditional::precondition,
    error::ApiError,
    openapi::docs,
    state::ApiState,
    write_permits::WritePermit,
};

/// One kept change.
#[derive(Serialize, ToSchema)]
pub struct HistoryEntryRepresentation {
    /// The version the change gave (a delete has a version of its own).
    version: i64,
    /// What the change did.
    #[schema(value_type = String, example = "updated")]
    op: ChangeOp,
    /// The value after the change: `null` after a delete and always for a secret (whose
    /// value is never kept). For preferences: the fields the layer set.
    value: Option<Value>,
    /// When it was committed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    changed_at: OffsetDateTime,
    /// Who made it: `user`, `operator`, `integration`, `import` or `system`.
    #[schema(value_type = String, example = "user")]
    actor: ChangeActor,
}

impl From<HistoryEntry> for HistoryEntryRepresentation {
    fn from(entry: HistoryEntry) -> Self {
        Self {
            version: entry.version,
            op: entry.op,
            value: entry.value,
            changed_at: entry.changed_at,
            actor: entry.actor,
        }
    }
}

/// The version to write again.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreBody {
    /// A version from the history.
    #[serde(deserialize_with = "integral")]
    version: i64,
}

/// An integer, also when written with a zero fraction (`790.0`): JSON Schema's `integer` is
/// the value, not its spelling. Any whole number an `i64` holds is accepted (a version never
/// kept is then 404), so a schema-valid body is never refused for its spelling.
fn integral<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    whole_i64(&number).ok_or_else(|| serde::de::Error::custom("the version is an integer"))
}

fn whole_i64(number: &serde_json::Number) -> Option<i64> {
    // -2^63 is exact as a float; 2^63 is the first float past `i64::MAX`.
    const LOWEST: f64 = -9_223_372_036_854_775_808.0;
    const PAST_HIGHEST: f64 = 9_223_372_036_854_775_808.0;
    if let Some(n) = number.as_i64() {
        return Some(n);
    }
    match number.as_f64() {
        #[allow(clippy::cast_possible_truncation)]
        Some(f) if f.fract() == 0.0 && (LOWEST..PAST_HIGHEST).contains(&f) => Some(f as i64),
        _ => None,
    }
}

/// A page as the answer: the entries, and the next page's URL in `Link`.
fn page_answer(req: &HttpRequest, query: &PageQuery, page: HistoryPage) -> HttpResponse {
    let mut response = HttpResponse::Ok();
    query.link_next(req, page.next_before, &mut response);
    let entries: Vec<HistoryEntryRepresentation> =
        page.entries.into_iter().map(Into::into).collect();
    response.json(entries)
}

#[utoipa::path(
    get, path = "/api/v1/users/me/settings/{key}/history", tag = "history",
    params(("key" = String, Path, description = "Setting key"), PageQuery),
    responses(
        (status = 200, description = "The kept versions, newest first; a secret's without values", body = [HistoryEntryRepresentation],
            headers(("Link" = String, description = "`<url>; rel=\"next\"` when more entries follow"))),
        docs::UserReadErrors,
    ),
    security(("bearer" = []))
)]
/// The history of one of the caller's settings.
#[tracing::instrument(skip_all)]
pub async fn setting(
    req: HttpRequest,
    state: Data<ApiState>,
    User(user): User,
    key: Path<String>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .settings
        .history(user.user_id, &key, query.before()?, query.limit)
        .await?;
    Ok(page_answer(&req, &query, page))
}

#[utoipa::path(
    post, path = "/api/v1/users/me/settings/{key}/restore", tag = "history",
    params(("key" = String, Path, description = "Setting key")),
    request_body(content = RestoreBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The kept value is the setting's new version", body = super::settings::SettingRepresentation),
        (status = 201, description = "The deleted setting is created again with the kept value", body = super::settings::SettingRepresentation),
        (status = 409, response = docs::Conflict),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Writes a kept version of one of the caller's settings again, as a new version. A secret's
/// history holds no value (422 `secret_not_restorable`), nor does a deletion (422
/// `version_is_a_deletion`); a version not kept is 404 `version_not_found`.
#[tracing::instrument(skip_all)]
pub async fn restore_setting(
    req: HttpRequest,
    state: Data<ApiState>,
    _permit: WritePermit,
    User(user): User,
    key: Path<String>,
    body: Json<RestoreBody>,
) -> Result<HttpResponse, ApiError> {
    let expected = precondition(&req, state.options.require_if_match)?;
    let (setting, created) = state
        .settings
        .restore(user.user_id, &key, body.version, expected)
        .await?;
    let location = created.then(|| format!("/api/v1/users/me/settings/{}", setting.key));
    Ok(write_answer(setting, location))
}

#[utoipa::path(
    get, path = "/api/v1/users/me/devices/{device_id}/settings/{key}/history", tag = "history",
    params(
        ("device_id" = String, Path, description = "The device's id", pattern = "^[A-Za-z0-9._-]{1,64}$"),
        ("key" = String, Path, description = "Setting key"),
        PageQuery,
    ),
    responses(
        (status = 200, description = "The kept versions of the device's override, newest first", body = [HistoryEntryRepresentation],
            headers(("Link" = String, description = "`<url>; rel=\"next\"` when more entries follow"))),
        docs::UserReadErrors,
    ),
    security(("bearer" = []))
)]
/// The history of a device's override of a setting.
#[tracing::instrument(skip_all)]
pub async fn device_setting(
    req: HttpRequest,
    state: Data<ApiState>,
    User(user): User,
    path: Path<(String, String)>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (device, key) = path.into_inner();
    let page = state
        .devices
        .history(user.user_id, &device, &key, query.before()?, query.limit)
        .await?;
    Ok(page_answer(&req, &query, page))
}

#[utoipa::path(
    post, path = "/api/v1/users/me/devices/{device_id}/settings/{key}/restore", tag = "history",
    params(
        ("device_id" = String, Path, description = "The device's id", pattern = "^[A-Za-z0-9._-]{1,64}$"),
        ("key" = String, Path, description = "Setting key"),
    ),
    request_body(content = RestoreBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The kept value is the override's new version", body = super::settings::SettingRepresentation),
        (status = 201, description = "The deleted override is created again", body = super::settings::SettingRepresentation),
        (status = 409, response = docs::Conflict),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Writes a kept version of a device's override again, as a new version.
#[tracing::instrument(skip_all)]
pub async fn restore_device_setting(
    req: HttpRequest,
    state: Data<ApiState>,
    _permit: WritePermit,
    User(user): User,
    path: Path<(String, String)>,
    body: Json<RestoreBody>,
) -> Result<HttpResponse, ApiError> {
    let (device, key) = path.into_inner();
    let expected = precondition(&req, state.options.require_if_match)?;
    let (setting, created) = state
        .devices
        .restore(user.user_id, &device, &key, body.version, expected)
        .await?;
    let location =
        created.then(|| format!("/api/v1/users/me/devices/{device}/settings/{}", setting.key));
    Ok(write_answer(setting, location))
}

#[utoipa::path(
    get, path = "/api/v1/users/me/preferences/history", tag = "history",
    params(PageQuery),
    responses(
        (status = 200, description = "The kept versions of the caller's own preferences (the fields they set), newest first", body = [HistoryEntryRepresentation],
            headers(("Link" = String, description = "`<url>; rel=\"next\"` when more entries follow"))),
        docs::UserReadErrors,
    ),
    security(("bearer" = []))
)]
/// The history of the caller's own preferences.
#[tracing::instrument(skip_all)]
pub async fn preferences(
    req: HttpRequest,
    state: Data<ApiState>,
    User(user): User,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .preferences
        .history(user.user_id, query.before()?, query.limit)
        .await?;
    Ok(page_answer(&req, &query, page))
}

#[utoipa::path(
    post, path = "/api/v1/users/me/preferences/restore", tag = "history",
    request_body(content = RestoreBody, content_type = "application/json"),
    responses(
        (status = 200, description = "The kept fields are the caller's preferences again", body = docs::Preferences),
        (status = 409, response = docs::Conflict),
        docs::UserWriteErrors,
    ),
    security(("bearer" = []))
)]
/// Writes a kept version of the caller's own preferences again: the fields it set are set,
/// the others inherit.
#[tracing::instrument(skip_all)]
pub async fn restore_preferences(
    req: HttpRequest,
    state: Data<ApiState>,
    User(user): User,
    body: Json<RestoreBody>,
) -> Result<HttpResponse, ApiError> {
    let expected = precondition(&req, state.options.require_if_match)?;
    let stored = state
        .preferences
        .restore(user.user_id, body.version, expected)
        .await?;
    Ok(preferences_answer(&stored))
}

#[utoipa::path(
    get, path = "/api/v1/admin/users/{user_id}/settings/{key}/history", tag = "admin",
    params(
        ("user_id" = Uuid, Path, description = "The user"),
        ("key" = String, Path, description = "Setting key"),
        PageQuery,
    ),
    responses(
        (status = 200, description = "The kept versions, newest first; a secret's without values", body = [HistoryEntryRepresentation],
            headers(("Link" = String, description = "`<url>; rel=\"next\"` when more entries follow"))),
        docs::AdminErrors,
    ),
    security(("bearer" = []))
)]
/// The history of any user's setting (role `admin`; audited).
#[tracing::instrument(skip_all)]
pub async fn admin_setting(
    req: HttpRequest,
    state: Data<ApiState>,
    Admin(actor): Admin,
    path: Path<(Uuid, String)>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, key) = path.into_inner();
    let page = state
        .settings
        .history_as_admin(
            &actor,
            UserId::new(user_id),
            &key,
            query.before()?,
            query.limit,
        )
        .await?;
    Ok(page_answer(&req, &query, page))
}

#[cfg(test)]
mod tests {
    use super::RestoreBody;

    fn version(body: &str) -> Option<i64> {
        serde_json::from_str::<RestoreBody>(body)
            .ok()
            .map(|b| b.version)
    }

    #[test]
    fn a_version_is_any_whole_number_an_i64_holds_however_it_is_spelled() {
        assert_eq!(version(r#"{"version": 790}"#), Some(790));
        assert_eq!(version(r#"{"version": 790.0}"#), Some(790));
        assert_eq!(version(r#"{"version": 7.9e2}"#), Some(790));
        assert_eq!(
            version(r#"{"version": -9007199254740992.0}"#),
            Some(-9_007_199_254_740_992)
        );
        assert_eq!(
            version(r#"{"version": -9223372036854775808.0}"#),
            Some(i64::MIN)
        );
        assert_eq!(
            version(r#"{"version": 9223372036854775807}"#),
            Some(i64::MAX)
        );
    }

    #[test]
    fn a_fraction_or_a_number_past_i64_is_refused() {
        assert_eq!(version(r#"{"version": 790.5}"#), None);
        assert_eq!(version(r#"{"version": 9223372036854775808}"#), None);
        assert_eq!(version(r#"{"version": 9223372036854775808.0}"#), None);
        assert_eq!(version(r#"{"version": -1e19}"#), None);
        assert_eq!(version(r#"{"version": "790"}"#), None);
    }
}
