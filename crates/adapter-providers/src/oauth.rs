//! OAuth 2.0 with the `oauth2` crate: authorization URLs (state, PKCE plain/S256), the code
//! exchange, the password grant, refresh, and RFC 7009 revocation; and the mapping of its
//! errors to the domain's (`invalid_grant` kept distinct, bodies never kept).

use domain::integrations::{PkceMethod, ProviderError, ProviderId, TokenSet};
use oauth2::{
    AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, ResourceOwnerPassword,
    ResourceOwnerUsername, Scope, TokenResponse, TokenUrl,
    basic::{BasicClient, BasicErrorResponseType, BasicTokenResponse},
};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::{
    config::ResolvedProvider,
    http::{OAuthHttp, ProviderHttp, UpstreamFailure},
};

/// A fresh authorization URL and what the service must remember.
pub(crate) struct AuthorizationUrl {
    pub url: Url,
    pub state: String,
    pub pkce_verifier: Option<SecretString>,
}

/// How the client authenticates at the token endpoint. Most providers want the client id
/// and secret in the form body; Spotify wants HTTP Basic.
fn auth_type(provider: ProviderId) -> AuthType {
    match provider {
        ProviderId::Spotify => AuthType::BasicAuth,
        _ => AuthType::RequestBody,
    }
}

fn missing(what: &str) -> ProviderError {
    ProviderError::Unknown(anyhow::anyhow!("{what} is not configured"))
}

/// Builds the authorization URL: `response_type=code`, client id, redirect URI, scopes, a
/// random `state` and, where the provider supports it, a PKCE challenge.
pub(crate) fn authorization_url(
    provider: &ResolvedProvider,
    redirect_uri: &Url,
    pkce: Option<PkceMethod>,
) -> Result<AuthorizationUrl, ProviderError> {
    let client_id = provider
        .client_id
        .clone()
        .ok_or_else(|| missing("client_id"))?;
    let auth_url = provider
        .auth_url
        .clone()
        .ok_or_else(|| missing("auth_url"))?;
    let client = BasicClient::new(ClientId::new(client_id))
        .set_auth_uri(AuthUrl::from_url(auth_url))
        .set_redirect_uri(RedirectUrl::from_url(redirect_uri.clone()));
    let mut request = client
        .authorize_url(CsrfToken::new_random)
        .add_scopes(provider.scopes.iter().cloned().map(Scope::new));
    let verifier = match pkce {
        Some(PkceMethod::Plain) => {
            let (challenge, verifier) = PkceCodeChallenge::new_random_plain();
            request = request.set_pkce_challenge(challenge);
            Some(verifier)
        }
        Some(PkceMethod::S256) => {
            let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
            request = request.set_pkce_challenge(challenge);
            Some(verifier)
        }
        None => None,
    };
    let (url, state) = request.url();
    Ok(AuthorizationUrl {
        url,
        state: state.secret().clone(),
        pkce_verifier: verifier.map(|v| SecretString::from(v.secret().clone())),
    })
}

/// The base client for token-endpoint calls: id, secret (if any), auth type, token URL.
macro_rules! token_client {
    ($provider:expr) => {{
        let provider: &ResolvedProvider = $provider;
        let client_id = provider
            .client_id
            .clone()
            .ok_or_else(|| missing("client_id"))?;
        let token_url = provider
            .token_url
            .clone()
            .ok_or_else(|| missing("token_url"))?;
        let mut client = BasicClient::new(ClientId::new(client_id))
            .set_auth_type(auth_type(provider.id))
            .set_token_uri(TokenUrl::from_url(token_url));
        if let Some(secret) = provider
            .client_secret
            .as_ref()
            .filter(|s| !s.expose_secret().is_empty())
        {
            client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_owned()));
        }
        client
    }};
}

/// Exchanges an authorization code (with its redirect URI and PKCE verifier).
pub(crate) async fn exchange_code(
    http: &ProviderHttp,
    provider: &ResolvedProvider,
    code: &SecretString,
    redirect_uri: &str,
    pkce_verifier: Option<&SecretString>,
) -> Result<TokenSet, ProviderError> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|_| ProviderError::Unknown(anyhow::anyhow!("stored redirect URI is invalid")))?;
    let client = token_client!(provider).set_redirect_uri(redirect);
    let mut request = client.exchange_code(AuthorizationCode::new(code.expose_secret().to_owned()));
    if let Some(verifier) = pkce_verifier {
        request =
            request.set_pkce_verifier(PkceCodeVerifier::new(verifier.expose_secret().to_owned()));
    }
    let response = request
        .request_async(&OAuthHttp(http))
        .await
        .map_err(|e| token_error(e, Grant::Code))?;
    Ok(token_set(&response))
}

/// The resource owner password grant (Kitsu).
pub(crate) async fn exchange_password(
    http: &ProviderHttp,
    provider: &ResolvedProvider,
    username: &str,
    password: &SecretString,
) -> Result<TokenSet, ProviderError> {
    let client = token_client!(provider);
    let username = ResourceOwnerUsername::new(username.to_owned());
    let password = ResourceOwnerPassword::new(password.expose_secret().to_owned());
    let response = client
        .exchange_password(&username, &password)
        .request_async(&OAuthHttp(http))
        .await
        .map_err(|e| token_error(e, Grant::Password))?;
    Ok(token_set(&response))
}

/// A new access token from a refresh token.
pub(crate) async fn refresh(
    http: &ProviderHttp,
    provider: &ResolvedProvider,
    refresh_token: &SecretString,
) -> Result<TokenSet, ProviderError> {
    let client = token_client!(provider);
    let refresh_token = RefreshToken::new(refresh_token.expose_secret().to_owned());
    let response = client
        .exchange_refresh_token(&refresh_token)
        .request_async(&OAuthHttp(http))
        .await
        .map_err(|e| token_error(e, Grant::Refresh))?;
    Ok(token_set(&response))
}

/// RFC 7009 revocation of the access token (the provider revokes its refresh token with
/// it). By hand rather than with `oauth2`, whose revocation refuses non-HTTPS endpoints (and
/// so loopback fakes in tests): a form POST of `token`, `token_type_hint` and the client
/// credentials (in the body, as Trakt and Kitsu expect; HTTP Basic where the provider wants
/// it).
pub(crate) async fn revoke(
    http: &ProviderHttp,
    provider: &ResolvedProvider,
    access_token: &SecretString,
) -> Result<(), ProviderError> {
    let revoke_url = provider
        .revoke_url
        .clone()
        .ok_or_else(|| missing("revoke_url"))?;
    let client_id = provider
        .client_id
        .clone()
        .ok_or_else(|| missing("client_id"))?;
    let secret = provider
        .client_secret
        .as_ref()
        .map(|s| s.expose_secret().to_owned())
        .filter(|s| !s.is_empty());
    let mut form = vec![
        ("token", access_token.expose_secret().to_owned()),
        ("token_type_hint", "access_token".to_owned()),
    ];
    let mut request = http.client().post(revoke_url);
    match auth_type(provider.id) {
        AuthType::BasicAuth => request = request.basic_auth(client_id, secret),
        _ => {
            form.push(("client_id", client_id));
            if let Some(secret) = secret {
                form.push(("client_secret", secret));
            }
        }
    }
    let (status, body) = http.send(request.form(&form)).await?;
    if status.is_success() {
        return Ok(());
    }
    let oauth_error = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned));
    match oauth_error {
        Some(code) if status.is_client_error() => Err(ProviderError::Rejected {
            code: Some(safe_code(&code)),
        }),
        _ => Err(ProviderError::Status {
            status: status.as_u16(),
        }),
    }
}

/// An OAuth error code as the provider sent it, reduced to the characters error codes use
/// (RFC 6749 codes are `[a-z_]`): whatever else a provider puts there is not shown.
fn safe_code(raw: &str) -> String {
    raw.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

/// Which grant failed, to give `invalid_grant` its meaning.
#[derive(Clone, Copy)]
enum Grant {
    Code,
    Password,
    Refresh,
}

fn token_error(
    e: RequestTokenError<UpstreamFailure, oauth2::basic::BasicErrorResponse>,
    grant: Grant,
) -> ProviderError {
    match e {
        RequestTokenError::Request(failure) => failure.into(),
        RequestTokenError::ServerResponse(response) => match response.error() {
            BasicErrorResponseType::InvalidGrant => match grant {
                Grant::Refresh => ProviderError::InvalidGrant,
                Grant::Code | Grant::Password => ProviderError::Rejected {
                    code: Some("invalid_grant".into()),
                },
            },
            // This server's own client credentials were refused: not the user's doing.
            BasicErrorResponseType::InvalidClient | BasicErrorResponseType::UnauthorizedClient => {
                ProviderError::InvalidResponse(
                    "the provider refused this server's client credentials".into(),
                )
            }
            other => ProviderError::Rejected {
                code: Some(safe_code(other.as_ref())),
            },
        },
        // The body is dropped: it may hold a token.
        RequestTokenError::Parse(..) => {
            ProviderError::InvalidResponse("unexpected token endpoint answer".into())
        }
        RequestTokenError::Other(_) => {
            ProviderError::InvalidResponse("unexpected token endpoint answer".into())
        }
    }
}

fn token_set(response: &BasicTokenResponse) -> TokenSet {
    // `expires_in` is the provider's number: one too large for the calendar is "no expiry".
    let expires_at = response
        .expires_in()
        .and_then(|d| time::Duration::try_from(d).ok())
        .and_then(|d| OffsetDateTime::now_utc().checked_add(d));
    let scope = response.scopes().map(|scopes| {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    });
    TokenSet {
        access_token: SecretString::from(response.access_token().secret().clone()),
        refresh_token: response
            .refresh_token()
            .map(|t| SecretString::from(t.secret().clone())),
        expires_at,
        scope,
    }
}
