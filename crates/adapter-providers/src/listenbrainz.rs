//! ListenBrainz user tokens: checked with `GET /1/validate-token`, which also names the user.

use domain::integrations::{ProviderError, RemoteAccount};
use reqwest::{StatusCode, header};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::{accounts::join, config::ResolvedProvider, http::ProviderHttp};

/// The account the token belongs to.
///
/// # Errors
/// [`ProviderError::Rejected`] when ListenBrainz says the token is not valid.
pub(crate) async fn validate_token(
    http: &ProviderHttp,
    provider: &ResolvedProvider,
    token: &SecretString,
) -> Result<RemoteAccount, ProviderError> {
    let api = provider
        .api_url
        .as_ref()
        .ok_or_else(|| ProviderError::Unknown(anyhow::anyhow!("api_url is not configured")))?;
    let invalid = || ProviderError::Rejected {
        code: Some("invalid_token".into()),
    };
    // A token that cannot stand in a header (control characters, non-ASCII) is no
    // ListenBrainz token: refused here, as the provider would, not a failure of this service.
    let mut authorization =
        header::HeaderValue::from_str(&format!("Token {}", token.expose_secret()))
            .map_err(|_| invalid())?;
    authorization.set_sensitive(true);
    let request = http
        .client()
        .get(join(api, "1/validate-token"))
        .header(header::AUTHORIZATION, authorization);
    let (status, body) = http.send(request).await?;
    if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::BAD_REQUEST) {
        return Err(invalid());
    }
    if !status.is_success() {
        return Err(ProviderError::Status {
            status: status.as_u16(),
        });
    }
    let answer: Validation = serde_json::from_slice(&body)
        .map_err(|_| ProviderError::InvalidResponse("unexpected validate-token answer".into()))?;
    match (answer.valid, answer.user_name) {
        (true, Some(user_name)) => Ok(RemoteAccount {
            username: Some(user_name),
            ..RemoteAccount::default()
        }),
        _ => Err(invalid()),
    }
}

#[derive(Deserialize)]
struct Validation {
    valid: bool,
    user_name: Option<String>,
}
