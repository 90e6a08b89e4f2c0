//! `/api/v1/integrations/...` (the caller connects external services) and
//! `/internal/v1/users/{user_id}/integrations/{provider}/token` (integration services get a
//! valid access token; role `service`; audited).
//!
//! The routes are registered from [`crate::routes::ENDPOINTS`], only when integrations are
//! configured.

use std::sync::Arc;

use actix_web::{
    HttpResponse,
    http::header::{CacheControl, CacheDirective},
    web::{Data, Json, Path, Query},
};
use domain::{
    FieldError, UserId, ValidationErrors,
    integrations::{
        AuthMethod, AuthorizeError, Clock, ConnectError, ConnectRequest, ConnectionService,
        ConnectionStatus, DisconnectError, OAuthStateStore, ProviderError, ProviderGateway,
        ProviderId, RevocationOutcome, StateProblem, StatusError, TokenError, TokenService,
    },
    ports::{AuditLog, SecretCipher, SettingsRepository},
};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{
    auth::{Admin, Service, User},
    error::ApiError,
    openapi::docs,
    state::ApiState,
};

/// The connection use cases as the HTTP layer holds them.
pub type DynConnectionService = ConnectionService<
    Arc<dyn SettingsRepository>,
    Arc<dyn SecretCipher>,
    Arc<dyn ProviderGateway>,
    Arc<dyn OAuthStateStore>,
    Arc<dyn Clock>,
>;

/// The token use case as the HTTP layer holds it.
pub type DynTokenService = TokenService<
    Arc<dyn SettingsRepository>,
    Arc<dyn SecretCipher>,
    Arc<dyn AuditLog>,
    Arc<dyn ProviderGateway>,
    Arc<dyn Clock>,
>;

/// What the integration routes need.
#[derive(Clone)]
pub struct IntegrationsApi {
    /// List, status, authorize, connect, disconnect.
    pub connections: Arc<DynConnectionService>,
    /// Valid access tokens for integration services.
    pub tokens: Arc<DynTokenService>,
}

/// Body of `POST .../{provider}/connect`; which fields apply depends on the provider.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectBody {
    /// OAuth providers: the authorization code from the redirect.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    code: Option<SecretString>,
    /// OAuth providers and Last.fm: the `state` returned by authorize.
    #[serde(default)]
    state: Option<String>,
    /// Optional; must equal the authorization request's.
    #[serde(default)]
    redirect_uri: Option<String>,
    /// Last.fm: the web-auth token from the redirect; ListenBrainz: the user token (also
    /// accepted as `user_token`).
    #[serde(default, alias = "user_token")]
    #[schema(value_type = Option<String>)]
    token: Option<SecretString>,
    /// Kitsu: the account e-mail (also accepted as `email`); Letterboxd: the username.
    #[serde(default, alias = "email")]
    username: Option<String>,
    /// Kitsu and Letterboxd.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    password: Option<SecretString>,
}

impl From<ConnectBody> for ConnectRequest {
    fn from(body: ConnectBody) -> Self {
        ConnectRequest {
            code: body.code,
            state: body.state,
            redirect_uri: body.redirect_uri,
            token: body.token,
            username: body.username,
            password: body.password,
        }
    }
}

/// Query of `authorize`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct AuthorizeQuery {
    /// One of the redirect URIs configured for the provider (default: the first).
    pub redirect_uri: Option<String>,
}

/// One provider and the caller's connection to it.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationStatus {
    /// The provider's id, as in the routes.
    #[schema(value_type = String)]
    provider: ProviderId,
    /// Human-readable name.
    name: &'static str,
    /// authorization_code, password_grant, lastfm_web_auth, user_token or username_password.
    auth_method: &'static str,
    /// The server has the provider's client credentials.
    configured: bool,
    /// The caller's credentials are stored.
    connected: bool,
    /// The remote account's name.
    #[schema(required = true)]
    username: Option<String>,
    /// When the caller connected.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    connected_at: Option<OffsetDateTime>,
    /// When the access token expires (it is refreshed automatically where possible).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    expires_at: Option<OffsetDateTime>,
    /// The provider refused the refresh token: connect again.
    needs_reauth: bool,
    /// The encrypted setting holding the credentials.
    storage_key: &'static str,
}

impl From<ConnectionStatus> for IntegrationStatus {
    fn from(status: ConnectionStatus) -> Self {
        Self {
            provider: status.provider,
            name: status.name,
            auth_method: status.auth_method,
            configured: status.configured,
            connected: status.connected,
            username: status.username,
            connected_at: status.connected_at,
            expires_at: status.expires_at,
            needs_reauth: status.needs_reauth,
            storage_key: status.storage_key,
        }
    }
}

/// The answer of the list route: every provider.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntegrationList {
    /// In the catalogue's order.
    integrations: Vec<IntegrationStatus>,
}

/// The answer of `authorize`: where to send the browser.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorizationBody {
    /// The provider's id.
    #[schema(value_type = String)]
    provider: ProviderId,
    /// The provider's authorization page, with every parameter set.
    authorization_url: String,
    /// Single-use, bound to the caller and provider; send it back to connect.
    state: String,
    /// Where the provider sends the browser back.
    redirect_uri: String,
    /// When `state` stops being accepted.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    expires_at: OffsetDateTime,
}

/// The answer of the token route: a provider access token for an integration service.
#[derive(Serialize, ToSchema)]
pub struct TokenBody<'a> {
    /// The provider's id.
    #[schema(value_type = String)]
    provider: ProviderId,
    /// The access token.
    access_token: &'a str,
    /// Bearer, lastfm_session (send as `sk`) or Token (ListenBrainz `Authorization: Token`).
    token_type: &'static str,
    /// When the token expires, if the provider says.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime, required = true)]
    expires_at: Option<OffsetDateTime>,
    /// The remote account's name.
    #[schema(required = true)]
    username: Option<String>,
}

/// The provider a path segment names. Only the parsed id is recorded in the handler's span:
/// the raw segment is percent-decoded client input (a `%0A` in it would start a forged line
/// in the text log format).
fn provider(raw: &str) -> Result<ProviderId, ApiError> {
    let provider = ProviderId::parse(raw).ok_or_else(|| {
        ApiError::NotFound(
            "provider_not_found",
            format!(
                "no such provider; known: {}",
                ProviderId::ALL.map(ProviderId::as_str).join(", ")
            ),
        )
    })?;
    tracing::Span::current().record("provider", provider.as_str());
    Ok(provider)
}

fn no_store() -> CacheControl {
    CacheControl(vec![CacheDirective::NoStore])
}

#[utoipa::path(
    get, path = "/api/v1/integrations", tag = "integrations",
    responses(
        (status = 200, description = "Every provider with the caller's connection status", body = IntegrationList),
        (status = 401, response = docs::Unauthorized),
        (status = 503, response = docs::Unavailable),
    ),
    security(("bearer" = []))
)]
/// Lists every provider: configured on this server?, connected?, account, expiry.
#[tracing::instrument(skip_all)]
pub async fn list(api: Data<IntegrationsApi>, User(user): User) -> Result<HttpResponse, ApiError> {
    let integrations = api
        .connections
        .list(user.user_id)
        .await
        .map_err(status_error)?;
    Ok(HttpResponse::Ok().json(IntegrationList {
        integrations: integrations.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(
    get, path = "/api/v1/admin/users/{user_id}/integrations", tag = "admin",
    params(("user_id" = Uuid, Path, description = "The user")),
    responses(
        (status = 200, description = "Every provider with the user's connection status; never a token", body = IntegrationList),
        docs::AdminErrors,
    ),
    security(("bearer" = []))
)]
/// Lists any user's connections to external services (role `admin`; audited).
#[tracing::instrument(skip_all)]
pub async fn admin_list(
    state: Data<ApiState>,
    api: Data<IntegrationsApi>,
    Admin(actor): Admin,
    user_id: Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let subject = UserId::new(*user_id);
    let read = async { api.connections.list(subject).await.map_err(status_error) };
    let integrations = state.support.audited(&actor, subject, read).await?;
    Ok(HttpResponse::Ok().json(IntegrationList {
        integrations: integrations.into_iter().map(Into::into).collect(),
    }))
}

#[utoipa::path(
    get, path = "/api/v1/integrations/{provider}/status", tag = "integrations",
    params(("provider" = String, Path, description = "trakt, lastfm, listenbrainz, simkl, letterboxd, anilist, myanimelist, kitsu or spotify")),
    responses(
        (status = 200, description = "The caller's connection to this provider", body = IntegrationStatus),
        (status = 401, response = docs::Unauthorized),
        (status = 404, response = docs::NotFound),
        (status = 503, response = docs::Unavailable),
    ),
    security(("bearer" = []))
)]
/// One provider's connection status.
#[tracing::instrument(skip_all, fields(provider = tracing::field::Empty))]
pub async fn status(
    api: Data<IntegrationsApi>,
    User(user): User,
    raw: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let provider = provider(&raw)?;
    let status = api
        .connections
        .status(user.user_id, provider)
        .await
        .map_err(status_error)?;
    Ok(HttpResponse::Ok().json(IntegrationStatus::from(status)))
}

#[utoipa::path(
    get, path = "/api/v1/integrations/{provider}/authorize", tag = "integrations",
    params(("provider" = String, Path, description = "An OAuth provider, or lastfm"), AuthorizeQuery),
    responses(
        (status = 200, description = "Send the browser to `authorization_url`; hand `state` back to connect within 10 minutes", body = AuthorizationBody),
        (status = 401, response = docs::Unauthorized),
        (status = 404, response = docs::NotFound),
        (status = 422, response = docs::Unprocessable),
        (status = 503, response = docs::Unavailable),
    ),
    security(("bearer" = []))
)]
/// Starts connecting a provider that authorizes in the browser: returns the provider's URL
/// with a fresh single-use `state` (and a PKCE challenge where supported).
#[tracing::instrument(skip_all, fields(provider = tracing::field::Empty))]
pub async fn authorize(
    api: Data<IntegrationsApi>,
    User(user): User,
    raw: Path<String>,
    query: Query<AuthorizeQuery>,
) -> Result<HttpResponse, ApiError> {
    let provider = provider(&raw)?;
    let start = api
        .connections
        .authorize(user.user_id, provider, query.into_inner().redirect_uri)
        .await
        .map_err(authorize_error)?;
    Ok(HttpResponse::Ok()
        .insert_header(no_store())
        .json(AuthorizationBody {
            provider: start.provider,
            authorization_url: start.authorization_url,
            state: start.state,
            redirect_uri: start.redirect_uri,
            expires_at: start.expires_at,
        }))
}

#[utoipa::path(
    post, path = "/api/v1/integrations/{provider}/connect", tag = "integrations",
    params(("provider" = String, Path, description = "The provider")),
    request_body(content = ConnectBody, content_type = "application/json"),
    responses(
        (status = 200, description = "Connected; the credentials are stored encrypted", body = IntegrationStatus),
        (status = 400, response = docs::BadRequest),
        (status = 401, response = docs::Unauthorized),
        (status = 404, response = docs::NotFound),
        (status = 415, response = docs::UnsupportedMediaType),
        (status = 422, response = docs::Unprocessable),
        (status = 502, response = docs::BadGateway),
        (status = 503, response = docs::Unavailable),
        (status = 504, response = docs::GatewayTimeout),
    ),
    security(("bearer" = []))
)]
/// Connects a provider: OAuth `{code, state, redirect_uri?}`; Last.fm `{token, state}`;
/// ListenBrainz `{token}`; Kitsu `{username, password}` (password grant; only the tokens are
/// kept); Letterboxd `{username, password}` (stored encrypted; no API to verify them).
#[tracing::instrument(skip_all, fields(provider = tracing::field::Empty))]
pub async fn connect(
    api: Data<IntegrationsApi>,
    User(user): User,
    raw: Path<String>,
    body: Json<ConnectBody>,
) -> Result<HttpResponse, ApiError> {
    let provider = provider(&raw)?;
    let status = api
        .connections
        .connect(user.user_id, provider, body.into_inner().into())
        .await
        .map_err(connect_error)?;
    tracing::info!(%provider, "integration connected");
    Ok(HttpResponse::Ok().json(IntegrationStatus::from(status)))
}

#[utoipa::path(
    delete, path = "/api/v1/integrations/{provider}/disconnect", tag = "integrations",
    params(("provider" = String, Path, description = "The provider")),
    responses(
        (status = 204, description = "Every key of the connection removed (revoked at the provider where it offers revocation)"),
        (status = 401, response = docs::Unauthorized),
        (status = 404, response = docs::NotFound),
        (status = 503, response = docs::Unavailable),
    ),
    security(("bearer" = []))
)]
/// Disconnects a provider: revokes the token where the provider offers it (best effort),
/// then removes the credentials and metadata. Sync settings are kept.
#[tracing::instrument(skip_all, fields(provider = tracing::field::Empty))]
pub async fn disconnect(
    api: Data<IntegrationsApi>,
    User(user): User,
    raw: Path<String>,
) -> Result<HttpResponse, ApiError> {
    let provider = provider(&raw)?;
    let outcome = api
        .connections
        .disconnect(user.user_id, provider)
        .await
        .map_err(|e| match e {
            DisconnectError::NotConnected(p) => not_connected(p),
            DisconnectError::Repository(r) => r.into(),
        })?;
    match outcome {
        RevocationOutcome::Revoked => tracing::info!(%provider, "disconnected; token revoked"),
        RevocationOutcome::NotSupported => tracing::info!(%provider, "disconnected"),
        RevocationOutcome::Failed(reason) => tracing::warn!(
            %provider,
            %reason,
            "disconnected; revoking the token at the provider failed"
        ),
        RevocationOutcome::Skipped(reason) => tracing::warn!(
            %provider,
            %reason,
            "disconnected; the token was not revoked: the stored credentials are unreadable"
        ),
    }
    Ok(HttpResponse::NoContent().finish())
}

#[utoipa::path(
    get, path = "/internal/v1/users/{user_id}/integrations/{provider}/token", tag = "internal",
    params(("user_id" = Uuid, Path, description = "The user"), ("provider" = String, Path, description = "The provider")),
    responses(
        (status = 200, description = "A token valid for at least the configured skew (refreshed if needed)", body = TokenBody),
        (status = 401, response = docs::Unauthorized),
        (status = 403, response = docs::Forbidden),
        (status = 404, response = docs::NotFound),
        (status = 409, response = docs::Conflict),
        (status = 502, response = docs::BadGateway),
        (status = 503, response = docs::Unavailable),
        (status = 504, response = docs::GatewayTimeout),
    ),
    security(("bearer" = []))
)]
/// A valid access token of a user's connection (role `service`; audited as `token_read`).
#[tracing::instrument(skip_all, fields(provider = tracing::field::Empty))]
pub async fn token(
    api: Data<IntegrationsApi>,
    Service(actor): Service,
    path: Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (user_id, raw) = path.into_inner();
    let provider = provider(&raw)?;
    let token = api
        .tokens
        .valid_access_token(&actor, UserId::new(user_id), provider)
        .await
        .map_err(token_error)?;
    use secrecy::ExposeSecret;
    Ok(HttpResponse::Ok()
        .insert_header(no_store())
        .json(TokenBody {
            provider: token.provider,
            access_token: token.access_token.expose_secret(),
            token_type: token.token_type,
            expires_at: token.expires_at,
            username: token.username,
        }))
}

fn not_configured(provider: ProviderId) -> ApiError {
    ApiError::NotFound(
        "provider_not_configured",
        format!(
            "{} is not configured on this server (no client credentials)",
            provider.display_name()
        ),
    )
}

fn not_connected(provider: ProviderId) -> ApiError {
    ApiError::NotFound(
        "integration_not_connected",
        format!("{} is not connected", provider.display_name()),
    )
}

pub(crate) fn status_error(e: StatusError) -> ApiError {
    match e {
        StatusError::Repository(r) => r.into(),
    }
}

fn authorize_error(e: AuthorizeError) -> ApiError {
    let field = |field: &'static str, code: &'static str, message: String| {
        ApiError::Validation(ValidationErrors::single(FieldError::new(
            field, code, message,
        )))
    };
    match e {
        AuthorizeError::NotConfigured(p) => not_configured(p),
        AuthorizeError::NotARedirectFlow(p) => field(
            "provider",
            "authorization_not_applicable",
            format!(
                "{} is connected by posting its credentials to connect; there is no authorization redirect",
                p.display_name()
            ),
        ),
        AuthorizeError::RedirectUriNotAllowed(p) => field(
            "redirect_uri",
            "redirect_uri_not_allowed",
            format!(
                "not one of the redirect URIs configured for {}",
                p.display_name()
            ),
        ),
        AuthorizeError::Cipher(c) => ApiError::Internal(anyhow::Error::new(c)),
        AuthorizeError::Repository(r) => r.into(),
        AuthorizeError::Unknown(e) => ApiError::Internal(e),
    }
}

fn connect_error(e: ConnectError) -> ApiError {
    match e {
        ConnectError::NotConfigured(p) => not_configured(p),
        ConnectError::Validation(v) => ApiError::Validation(v),
        ConnectError::State(problem) => {
            let (code, detail) = match problem {
                StateProblem::Missing => {
                    ("state_missing", "the `state` from authorize is required")
                }
                StateProblem::Invalid => (
                    "state_invalid",
                    "unknown or already used state; start again with authorize",
                ),
                StateProblem::Expired => (
                    "state_expired",
                    "the authorization took too long; start again with authorize",
                ),
                StateProblem::RedirectUriMismatch => (
                    "redirect_uri_mismatch",
                    "redirect_uri differs from the one of the authorization request",
                ),
            };
            ApiError::InvalidRequest(code, detail.into())
        }
        ConnectError::Rejected { provider, code } => {
            let field = match provider.spec().auth {
                AuthMethod::AuthorizationCode { .. } => "code",
                AuthMethod::LastfmWebAuth | AuthMethod::UserToken => "token",
                AuthMethod::PasswordGrant | AuthMethod::StoredPassword => "password",
            };
            let reason = code.map(|c| format!(" ({c})")).unwrap_or_default();
            ApiError::Validation(ValidationErrors::single(FieldError::new(
                field,
                "rejected_by_provider",
                format!(
                    "{} rejected the credentials{reason}",
                    provider.display_name()
                ),
            )))
        }
        ConnectError::Provider { provider, source } => provider_error(provider, source),
        ConnectError::IncompleteAnswer { provider, errors } => {
            tracing::warn!(%provider, %errors, "provider answer lacks required fields");
            bad_gateway(
                provider,
                "provider_invalid_response",
                "answered without a field the connection requires",
            )
        }
        ConnectError::QuotaExceeded(quota) => ApiError::Validation(ValidationErrors::single(
            FieldError::new("provider", "quota_exceeded", quota.to_string()),
        )),
        ConnectError::UserNotFound => {
            ApiError::NotFound("user_not_found", "the user does not exist".into())
        }
        ConnectError::Cipher(c) => ApiError::Internal(anyhow::Error::new(c)),
        ConnectError::Repository(r) => r.into(),
    }
}

fn token_error(e: TokenError) -> ApiError {
    match e {
        TokenError::NotConnected(p) => not_connected(p),
        TokenError::NoAccessToken(p) => ApiError::NotFound(
            "no_access_token",
            format!(
                "{} connections store credentials, not a token; read them with the internal secrets route",
                p.display_name()
            ),
        ),
        TokenError::NeedsReauth(p) => ApiError::Conflict(
            "needs_reauth",
            format!(
                "the {} connection is no longer authorized; the user must connect it again",
                p.display_name()
            ),
        ),
        TokenError::NotConfigured(p) => not_configured(p),
        TokenError::Provider { provider, source } => provider_error(provider, source),
        TokenError::Store(e) => ApiError::Internal(anyhow::Error::new(e)),
        TokenError::Unreadable(e) => ApiError::Internal(anyhow::Error::new(e)),
        TokenError::Repository(r) => r.into(),
    }
}

fn bad_gateway(provider: ProviderId, code: &'static str, what: &str) -> ApiError {
    ApiError::BadGateway {
        provider: provider.display_name(),
        code,
        detail: format!("{} {what}", provider.display_name()),
    }
}

/// A provider failure as the client sees it: the provider named, the cause by kind only.
fn provider_error(provider: ProviderId, e: ProviderError) -> ApiError {
    match e {
        ProviderError::Timeout => ApiError::GatewayTimeout {
            provider: provider.display_name(),
        },
        ProviderError::Status { status } => bad_gateway(
            provider,
            "provider_error",
            &format!("answered with HTTP status {status}"),
        ),
        ProviderError::Unreachable => {
            bad_gateway(provider, "provider_unreachable", "could not be reached")
        }
        ProviderError::InvalidResponse(_) => bad_gateway(
            provider,
            "provider_invalid_response",
            "answered something that could not be used",
        ),
        ProviderError::NotConfigured => not_configured(provider),
        ProviderError::Rejected { code } => bad_gateway(
            provider,
            "provider_rejected",
            &format!(
                "refused the request ({})",
                code.as_deref().unwrap_or("no reason given")
            ),
        ),
        ProviderError::InvalidGrant => ApiError::Conflict(
            "needs_reauth",
            format!(
                "the {} connection must be authorized again",
                provider.display_name()
            ),
        ),
        ProviderError::Unknown(e) => ApiError::Internal(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_integration_status_renders_as_the_domain_reports_it() {
        let mut status = ConnectionStatus::new(ProviderId::Trakt, true, false, None);
        let disconnected = serde_json::to_value(IntegrationStatus::from(status.clone())).ok();
        assert_eq!(disconnected, serde_json::to_value(&status).ok());
        status.connected = true;
        status.username = Some("someone".into());
        status.connected_at = Some(OffsetDateTime::UNIX_EPOCH);
        status.expires_at = Some(OffsetDateTime::UNIX_EPOCH);
        let connected = serde_json::to_value(IntegrationStatus::from(status.clone())).ok();
        assert_eq!(connected, serde_json::to_value(&status).ok());
    }
}
