//! Support's reads of one user that complete the console's picture, each audited like every
//! admin read: the user's devices, and who has looked at the user's data (the audit trail).

use actix_web::{
    HttpRequest, HttpResponse,
    web::{Data, Path, Query},
};
use domain::{
    UserId,
    audit::{AuditAction, AuditRecord, Role},
    services::AuditTrailError,
};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{devices::DeviceList, paging::PageQuery};
use crate::{auth::Admin, error::ApiError, openapi::docs, state::ApiState};

/// One privileged read (or operator's write) of the user's data.
#[derive(Serialize, ToSchema)]
pub struct AuditRecordRepresentation {
    /// The record's number: records are numbered in the order they were written.
    id: i64,
    /// When it was written.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    at: OffsetDateTime,
    /// Who acted (their token's `sub`).
    actor_id: Uuid,
    /// The role they acted in: `admin`, `service`, `operator` or `user`.
    #[schema(value_type = String, example = "admin")]
    actor_role: Role,
    /// `admin_read` (support read the user's data), `secret_read` (a secret's plaintext left
    /// the service), `token_read` (an integration's access token did).
    #[schema(value_type = String, example = "admin_read")]
    action: AuditAction,
    /// The setting, when the record is about one.
    key: Option<String>,
    /// The server's id of the request (its `X-Request-Id`).
    request_id: Option<String>,
    /// The id the client gave its request, if any (for correlation only).
    client_request_id: Option<String>,
}

impl From<AuditRecord> for AuditRecordRepresentation {
    fn from(record: AuditRecord) -> Self {
        Self {
            id: record.id,
            at: record.at,
            actor_id: record.actor_id.as_uuid(),
            actor_role: record.actor_role,
            action: record.action,
            key: record.key,
            request_id: record.request_id,
            client_request_id: record.client_request_id,
        }
    }
}

impl From<AuditTrailError> for ApiError {
    fn from(e: AuditTrailError) -> Self {
        match e {
            AuditTrailError::Validation(v) => ApiError::Validation(v),
            AuditTrailError::Repository(r) => r.into(),
        }
    }
}

#[utoipa::path(
    get, path = "/api/v1/admin/users/{user_id}/audit", tag = "admin",
    params(("user_id" = Uuid, Path, description = "The user"), PageQuery),
    responses(
        (status = 200, description = "Who has read the user's data, newest first; this read is the first record", body = [AuditRecordRepresentation],
            headers(("Link" = String, description = "`<url>; rel=\"next\"` when more records follow"))),
        docs::AdminErrors,
    ),
    security(("bearer" = []))
)]
/// The audit trail of any user: every privileged read of their data (role `admin`; audited,
/// so the answer starts with this read).
#[tracing::instrument(skip_all)]
pub async fn audit(
    req: HttpRequest,
    state: Data<ApiState>,
    Admin(actor): Admin,
    user_id: Path<Uuid>,
    query: Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = state
        .support
        .trail_as_admin(&actor, UserId::new(*user_id), query.before()?, query.limit)
        .await?;
    let mut response = HttpResponse::Ok();
    query.link_next(&req, page.next_before, &mut response);
    let records: Vec<AuditRecordRepresentation> =
        page.records.into_iter().map(Into::into).collect();
    Ok(response.json(records))
}

#[utoipa::path(
    get, path = "/api/v1/admin/users/{user_id}/devices", tag = "admin",
    params(("user_id" = Uuid, Path, description = "The user")),
    responses(
        (status = 200, description = "The user's devices that override anything, ordered by id", body = DeviceList),
        docs::AdminErrors,
    ),
    security(("bearer" = []))
)]
/// Lists any user's devices that override anything (role `admin`; audited). A device's
/// overrides are in the user's effective view for it (`.../effective?device=`).
#[tracing::instrument(skip_all)]
pub async fn devices(
    state: Data<ApiState>,
    Admin(actor): Admin,
    user_id: Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let subject = UserId::new(*user_id);
    let devices = state
        .support
        .audited(&actor, subject, state.devices.devices(subject))
        .await?;
    Ok(HttpResponse::Ok().json(DeviceList::from(devices)))
}
