//! `ApiError`: every failure the API reports, rendered as RFC 9457 `application/problem+json`.
//!
//! Each domain error maps to one status and a stable `code`. Unexpected failures are logged
//! with their cause and reported to the client only as "internal error".

use std::time::Duration;

use actix_web::{
    HttpResponse, ResponseError,
    http::{StatusCode, header},
};
use domain::{
    FieldError, RepositoryError, ValidationErrors,
    integrations::ProviderId,
    secrets::CipherError,
    services::{
        DefaultsError, DeleteDeviceError, DeleteSettingError, GetSecretError, GetSettingError,
        HistoryError, ImportError, ListSettingsError, NotRestorable, PreferencesError,
        SetSettingError,
    },
    settings::{QuotaExceeded, SettingKey},
};
use serde::Serialize;

use crate::rate_limit::{AccessKind, QuotaState, quota_headers, retry_seconds};

/// Media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An error response of the API.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not valid JSON or not the expected shape.
    #[error("malformed request: {0}")]
    BadRequest(String),
    /// 401: no, or no valid, bearer token. The text goes to `WWW-Authenticate`.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// 403: authenticated but lacking the role.
    #[error("forbidden: the {0} role is required")]
    Forbidden(&'static str),
    /// 404 with a precise code (`setting_not_found`, `user_not_found`, `route_not_found`).
    #[error("not found: {1}")]
    NotFound(&'static str, String),
    /// 405; `allow` lists the methods the resource serves (the `Allow` header).
    #[error("method not allowed")]
    MethodNotAllowed {
        /// The value of `Allow`, e.g. `GET, PUT`.
        allow: String,
    },
    /// 412: `If-Match`/`If-None-Match` did not hold.
    #[error("precondition failed")]
    PreconditionFailed,
    /// 413: the body or a value is over its limit.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// 415: the body is not JSON.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// 422: the input is well-formed but invalid; every problem is listed.
    #[error("validation failed")]
    Validation(ValidationErrors),
    /// 428: the deployment requires `If-Match` on writes.
    #[error("precondition required")]
    PreconditionRequired,
    /// 429: the caller's quota of this kind of request is spent.
    #[error("rate limited")]
    RateLimited {
        /// Which quota.
        kind: AccessKind,
        /// The quota, for the `RateLimit-*` headers.
        state: QuotaState,
        /// Time until a request of this kind would be allowed.
        retry_after: Duration,
    },
    /// 429: the caller already has the most settings writes in flight.
    #[error("too many concurrent writes")]
    TooManyConcurrentWrites,
    /// 429: the caller already has the most change streams open.
    #[error("too many change streams")]
    TooManyStreams {
        /// Streams allowed per user.
        limit: usize,
    },
    /// 503: this instance serves the most change streams it may.
    #[error("no room for another change stream")]
    StreamsUnavailable,
    /// 503: the database is unavailable; retrying later may work.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// 400 with a precise code (`state_missing`, `state_invalid`, `state_expired`, ...).
    #[error("invalid request: {1}")]
    InvalidRequest(&'static str, String),
    /// 409 with a precise code (`needs_reauth`): the resource's state requires an action.
    #[error("conflict: {1}")]
    Conflict(&'static str, String),
    /// 422 with a precise code (`not_layerable`): a well-formed request the resource cannot
    /// take.
    #[error("unprocessable: {1}")]
    Unprocessable(&'static str, String),
    /// 502: an external provider failed or answered something unusable. `detail` names the
    /// provider and never quotes its answer.
    #[error("bad gateway ({provider}): {detail}")]
    BadGateway {
        /// The provider's name (also in the problem's `provider` member).
        provider: &'static str,
        /// Stable code (`provider_error`, `provider_unreachable`, ...).
        code: &'static str,
        /// Safe description.
        detail: String,
    },
    /// 504: an external provider did not answer in time.
    #[error("gateway timeout ({provider})")]
    GatewayTimeout {
        /// The provider's name.
        provider: &'static str,
    },
    /// 500: the cause is logged, never shown.
    #[error("internal error: {0:#}")]
    Internal(anyhow::Error),
}

/// An RFC 9457 problem document: the body of every error answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem<'a> {
    /// A URN naming the problem type, `urn:user-settings:problem:<code>`.
    #[serde(rename = "type")]
    kind: String,
    /// The status's reason phrase.
    title: &'a str,
    /// The HTTP status.
    status: u16,
    /// Stable machine-readable code.
    code: &'a str,
    /// What happened, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    /// Every validation problem (422 only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    errors: Vec<FieldProblem<'a>>,
    /// The external provider at fault (502/504 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<&'a str>,
}

/// One validation problem of a 422.
#[derive(Serialize, utoipa::ToSchema)]
pub struct FieldProblem<'a> {
    /// Path of the field, e.g. `value.volume` or `settings[2].key`.
    field: &'a str,
    /// Stable machine-readable code.
    code: &'a str,
    /// What is wrong, for people.
    message: &'a str,
}

impl<'a> From<&'a FieldError> for FieldProblem<'a> {
    fn from(e: &'a FieldError) -> Self {
        Self {
            field: &e.field,
            code: e.code,
            message: &e.message,
        }
    }
}

impl ApiError {
    /// The stable machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "malformed_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(code, _) => code,
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::PreconditionFailed => "precondition_failed",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::Validation(_) => "validation_failed",
            ApiError::PreconditionRequired => "precondition_required",
            ApiError::TooManyConcurrentWrites => "too_many_concurrent_writes",
            ApiError::TooManyStreams { .. } | ApiError::StreamsUnavailable => "too_many_streams",
            ApiError::Unavailable(_) => "service_unavailable",
            ApiError::InvalidRequest(code, _)
            | ApiError::Conflict(code, _)
            | ApiError::Unprocessable(code, _) => code,
            ApiError::BadGateway { code, .. } => code,
            ApiError::GatewayTimeout { .. } => "provider_timeout",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            ApiError::BadRequest(d) | ApiError::PayloadTooLarge(d) | ApiError::NotFound(_, d) => {
                Some(d.clone())
            }
            ApiError::Unauthorized(d) => Some(d.clone()),
            ApiError::Forbidden(role) => Some(format!("this route requires the `{role}` role")),
            ApiError::Validation(e) => {
                Some(format!("{} problem(s) with the request", e.errors().len()))
            }
            ApiError::PreconditionFailed => {
                Some("the resource has changed; fetch it again to get its current ETag".into())
            }
            ApiError::PreconditionRequired => Some("send If-Match with the resource's ETag".into()),
            ApiError::RateLimited {
                kind,
                state,
                retry_after,
            } => Some(format!(
                "the {} quota of {} per hour is spent; retry in {} s",
                kind.as_str(),
                state.limit,
                retry_seconds(*retry_after)
            )),
            ApiError::TooManyConcurrentWrites => Some(
                "too many of your settings writes are in progress; retry when one has finished"
                    .into(),
            ),
            ApiError::TooManyStreams { limit } => Some(format!(
                "at most {limit} change streams per user are open at once; close one first"
            )),
            ApiError::StreamsUnavailable => {
                Some("this instance serves as many change streams as it may; retry shortly".into())
            }
            ApiError::UnsupportedMediaType => {
                Some("send a JSON body with Content-Type: application/json".into())
            }
            ApiError::Unavailable(_) => Some("the database is unavailable; retry shortly".into()),
            ApiError::InvalidRequest(_, d)
            | ApiError::Conflict(_, d)
            | ApiError::Unprocessable(_, d) => Some(d.clone()),
            ApiError::BadGateway { detail, .. } => Some(detail.clone()),
            ApiError::GatewayTimeout { provider } => {
                Some(format!("{provider} did not answer in time; retry later"))
            }
            ApiError::MethodNotAllowed { allow } => Some(format!("this resource serves {allow}")),
            ApiError::Internal(_) => None,
        }
    }

    fn title(&self) -> &'static str {
        self.status_code().canonical_reason().unwrap_or("Error")
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(..) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            ApiError::TooManyConcurrentWrites | ApiError::TooManyStreams { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::Unavailable(_) | ApiError::StreamsUnavailable => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::InvalidRequest(..) => StatusCode::BAD_REQUEST,
            ApiError::Conflict(..) => StatusCode::CONFLICT,
            ApiError::Unprocessable(..) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::BadGateway { .. } => StatusCode::BAD_GATEWAY,
            ApiError::GatewayTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ApiError::Internal(cause) => {
                tracing::error!(error = %format!("{cause:#}"), "internal error")
            }
            ApiError::Unavailable(cause) => tracing::warn!(%cause, "database unavailable"),
            _ => {}
        }
        let status = self.status_code();
        let problem = Problem {
            kind: format!("urn:user-settings:problem:{}", self.code()),
            title: self.title(),
            status: status.as_u16(),
            code: self.code(),
            detail: self.detail(),
            errors: match self {
                ApiError::Validation(e) => e.errors().iter().map(FieldProblem::from).collect(),
                _ => Vec::new(),
            },
            provider: match self {
                ApiError::BadGateway { provider, .. } | ApiError::GatewayTimeout { provider } => {
                    Some(provider)
                }
                _ => None,
            },
        };
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, PROBLEM_JSON));
        match self {
            ApiError::Unauthorized(description) => {
                let challenge = if description.is_empty() {
                    r#"Bearer realm="user-settings""#.to_owned()
                } else {
                    format!(
                        r#"Bearer realm="user-settings", error="invalid_token", error_description="{}""#,
                        description.replace('"', "'")
                    )
                };
                response.insert_header((header::WWW_AUTHENTICATE, challenge));
            }
            ApiError::Unavailable(_)
            | ApiError::TooManyConcurrentWrites
            | ApiError::TooManyStreams { .. }
            | ApiError::StreamsUnavailable => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            ApiError::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, allow.as_str()));
            }
            ApiError::RateLimited {
                state, retry_after, ..
            } => {
                response.insert_header((header::RETRY_AFTER, retry_seconds(*retry_after)));
                for (name, value) in quota_headers(state) {
                    response.insert_header((name, value));
                }
            }
            _ => {}
        }
        response.body(serde_json::to_string(&problem).unwrap_or_default())
    }
}

impl From<RepositoryError> for ApiError {
    fn from(e: RepositoryError) -> Self {
        match e {
            RepositoryError::Unavailable(cause) => ApiError::Unavailable(cause),
            RepositoryError::Unknown(cause) => ApiError::Internal(cause),
        }
    }
}

/// A validation failure whose only problems are oversized values is a 413, not a 422; mixed
/// with other problems it stays a 422 that lists them all.
fn from_validation(errors: ValidationErrors) -> ApiError {
    let is_oversized = |e: &FieldError| {
        e.code == "too_large" && (e.field == "value" || e.field.ends_with(".value"))
    };
    match errors.errors() {
        [first, ..] if errors.errors().iter().all(is_oversized) => {
            ApiError::PayloadTooLarge(first.message.clone())
        }
        _ => ApiError::Validation(errors),
    }
}

fn setting_not_found() -> ApiError {
    ApiError::NotFound("setting_not_found", "no setting with this key".into())
}

fn user_not_found() -> ApiError {
    ApiError::NotFound("user_not_found", "the user does not exist".into())
}

/// 409: the key changes only through its integration's routes, which verify credentials
/// with the provider and revoke them on disconnect.
fn managed_by_integration(key: &SettingKey, provider: ProviderId) -> ApiError {
    ApiError::Conflict(
        "managed_by_integration",
        format!(
            "{key} is managed by the {name} integration: connect with POST /api/v1/integrations/{provider}/connect, disconnect with DELETE /api/v1/integrations/{provider}/disconnect",
            name = provider.display_name(),
        ),
    )
}

/// 409: the deployment enforces the key; the user's value stays as stored.
fn enforced_by_deployment(key: &SettingKey) -> ApiError {
    ApiError::Conflict(
        "enforced_by_deployment",
        format!("{key} is enforced by the deployment: its value is the operator's for every user"),
    )
}

/// 422: a secret written to a layer that holds none (the deployment's, a device's).
fn not_layerable() -> ApiError {
    ApiError::Unprocessable(
        "not_layerable",
        "secrets exist only in the user layer: they are sealed for one user".into(),
    )
}

fn cipher_failure(e: CipherError) -> ApiError {
    ApiError::Internal(anyhow::Error::new(e).context("secret could not be processed"))
}

impl From<GetSettingError> for ApiError {
    fn from(e: GetSettingError) -> Self {
        match e {
            GetSettingError::Validation(v) => from_validation(v),
            GetSettingError::NotFound => setting_not_found(),
            GetSettingError::Repository(r) => r.into(),
        }
    }
}

impl From<ListSettingsError> for ApiError {
    fn from(e: ListSettingsError) -> Self {
        match e {
            ListSettingsError::Validation(v) => from_validation(v),
            ListSettingsError::Repository(r) => r.into(),
        }
    }
}

impl From<SetSettingError> for ApiError {
    fn from(e: SetSettingError) -> Self {
        match e {
            SetSettingError::Validation(v) => from_validation(v),
            SetSettingError::VersionConflict { .. } => ApiError::PreconditionFailed,
            // The device is what a write over the device quota should not have named.
            SetSettingError::QuotaExceeded(quota @ QuotaExceeded::Devices { .. }) => {
                ApiError::Validation(ValidationErrors::single(FieldError::new(
                    "device_id",
                    "too_many_devices",
                    quota.to_string(),
                )))
            }
            SetSettingError::QuotaExceeded(quota) => {
                ApiError::Validation(ValidationErrors::single(FieldError::new(
                    "key",
                    "quota_exceeded",
                    quota.to_string(),
                )))
            }
            SetSettingError::ManagedByIntegration { key, provider } => {
                managed_by_integration(&key, provider)
            }
            SetSettingError::EnforcedByDeployment { key } => enforced_by_deployment(&key),
            SetSettingError::NotLayerable => not_layerable(),
            SetSettingError::NotRestorable(n) => not_restorable(&n),
            SetSettingError::UserNotFound => user_not_found(),
            SetSettingError::Cipher(c) => cipher_failure(c),
            SetSettingError::Repository(r) => r.into(),
        }
    }
}

impl From<DeleteSettingError> for ApiError {
    fn from(e: DeleteSettingError) -> Self {
        match e {
            DeleteSettingError::Validation(v) => from_validation(v),
            DeleteSettingError::NotFound => setting_not_found(),
            DeleteSettingError::ManagedByIntegration { key, provider } => {
                managed_by_integration(&key, provider)
            }
            DeleteSettingError::EnforcedByDeployment { key } => enforced_by_deployment(&key),
            DeleteSettingError::VersionConflict { .. } => ApiError::PreconditionFailed,
            DeleteSettingError::Repository(r) => r.into(),
        }
    }
}

impl From<DefaultsError> for ApiError {
    fn from(e: DefaultsError) -> Self {
        match e {
            DefaultsError::Validation(v) => from_validation(v),
            DefaultsError::NotLayerable => not_layerable(),
            DefaultsError::ManagedByIntegration { key, provider } => {
                managed_by_integration(&key, provider)
            }
            DefaultsError::NotFound => ApiError::NotFound(
                "default_not_found",
                "the deployment sets no value for this key".into(),
            ),
            DefaultsError::Repository(r) => r.into(),
        }
    }
}

impl From<DeleteDeviceError> for ApiError {
    fn from(e: DeleteDeviceError) -> Self {
        match e {
            DeleteDeviceError::Validation(v) => from_validation(v),
            DeleteDeviceError::NotFound => {
                ApiError::NotFound("device_not_found", "the device overrides nothing".into())
            }
            DeleteDeviceError::Repository(r) => r.into(),
        }
    }
}

impl From<GetSecretError> for ApiError {
    fn from(e: GetSecretError) -> Self {
        match e {
            GetSecretError::Validation(v) => from_validation(v),
            GetSecretError::NotFound => setting_not_found(),
            GetSecretError::NotASecret => ApiError::NotFound(
                "not_a_secret",
                "the setting exists but is not encrypted; read it through the settings API".into(),
            ),
            GetSecretError::Cipher(c) => cipher_failure(c),
            GetSecretError::Repository(r) => r.into(),
        }
    }
}

impl From<PreferencesError> for ApiError {
    fn from(e: PreferencesError) -> Self {
        match e {
            PreferencesError::Validation(v) => from_validation(v),
            PreferencesError::VersionConflict { .. } => ApiError::PreconditionFailed,
            PreferencesError::EnforcedByDeployment { field } => ApiError::Conflict(
                "enforced_by_deployment",
                format!(
                    "{} is enforced by the deployment: its value is the operator's for every user",
                    field.as_str()
                ),
            ),
            PreferencesError::QuotaExceeded(quota) => {
                ApiError::Validation(ValidationErrors::single(FieldError::new(
                    "device_id",
                    "too_many_devices",
                    quota.to_string(),
                )))
            }
            PreferencesError::UserNotFound => user_not_found(),
            PreferencesError::NotRestorable(n) => not_restorable(&n),
            PreferencesError::Repository(r) => r.into(),
        }
    }
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Validation(v) => from_validation(v),
            ImportError::Conflict => ApiError::Conflict(
                "import_conflict",
                "the user's data changed while the import was planned; nothing was written, \
                 send it again"
                    .into(),
            ),
            ImportError::QuotaExceeded(quota) => ApiError::Validation(ValidationErrors::single(
                FieldError::new("document", "quota_exceeded", quota.to_string()),
            )),
            ImportError::UserNotFound => user_not_found(),
            ImportError::Repository(r) => r.into(),
        }
    }
}

impl From<HistoryError> for ApiError {
    fn from(e: HistoryError) -> Self {
        match e {
            HistoryError::Validation(v) => from_validation(v),
            HistoryError::Repository(r) => r.into(),
        }
    }
}

/// A restore of a version that holds no value: 404 when it is not kept, 422 otherwise.
fn not_restorable(reason: &NotRestorable) -> ApiError {
    match reason {
        NotRestorable::VersionNotFound { .. } => {
            ApiError::NotFound("version_not_found", reason.to_string())
        }
        NotRestorable::Secret => ApiError::Unprocessable(
            "secret_not_restorable",
            "a secret's history keeps no value; write the secret again instead".into(),
        ),
        NotRestorable::Deletion { .. } => {
            ApiError::Unprocessable("version_is_a_deletion", reason.to_string())
        }
    }
}
