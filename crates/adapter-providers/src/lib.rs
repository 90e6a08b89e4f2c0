//! Outbound adapter to the external providers: [`HttpProviderGateway`] implements the
//! domain's `ProviderGateway` over HTTP.
//!
//! - OAuth 2.0 (authorization code with PKCE where supported, password grant, refresh,
//!   RFC 7009 revocation) with the `oauth2` crate; Last.fm web auth (`auth.getSession` with
//!   the MD5 `api_sig`) and ListenBrainz token validation by hand.
//! - One `reqwest` client (rustls) with explicit total and connect timeouts and no redirects:
//!   a provider that does not answer is a timeout, never a hang.
//! - Failures keep only what is safe to show — the HTTP status, the OAuth error code, a
//!   fixed description. A provider's response body never reaches an error or a log line.
//! - Every provider URL comes from [`GatewayConfig`] (production defaults), so tests point
//!   them at a fake provider on loopback.

mod accounts;
mod config;
mod endpoints;
mod http;
mod lastfm;
mod listenbrainz;
mod oauth;

use std::collections::BTreeMap;

use async_trait::async_trait;
use domain::integrations::{
    AuthMethod, AuthorizationRequest, AuthorizationUrlError, ConnectProof, Credentials, Grant,
    ProviderError, ProviderGateway, ProviderId, Revocation, TokenSet,
};
use oauth2::CsrfToken;
use reqwest::Url;
use secrecy::SecretString;

pub use config::{GatewayConfig, GatewayConfigError, ProviderSettings};
pub use lastfm::api_signature as lastfm_api_signature;

use crate::{config::ResolvedProvider, http::ProviderHttp};

/// The providers over HTTP.
#[derive(Debug)]
pub struct HttpProviderGateway {
    http: ProviderHttp,
    providers: BTreeMap<ProviderId, ResolvedProvider>,
}

impl HttpProviderGateway {
    /// Resolves every provider's settings (defaults applied, URLs checked) and builds the
    /// HTTP client.
    ///
    /// # Errors
    /// [`GatewayConfigError`] naming the provider and field of a bad URL.
    pub fn new(config: &GatewayConfig) -> Result<Self, GatewayConfigError> {
        let http = ProviderHttp::new(config.timeout, config.connect_timeout, &config.user_agent)?;
        let providers = ProviderId::ALL
            .into_iter()
            .map(|id| {
                let settings = config.providers.get(&id).cloned().unwrap_or_default();
                ResolvedProvider::resolve(id, &settings).map(|p| (id, p))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { http, providers })
    }

    fn configured(&self, provider: ProviderId) -> Result<&ResolvedProvider, ProviderError> {
        self.providers
            .get(&provider)
            .filter(|p| p.is_configured())
            .ok_or(ProviderError::NotConfigured)
    }

    async fn connect_inner(
        &self,
        provider: &ResolvedProvider,
        proof: ConnectProof,
    ) -> Result<Grant, ProviderError> {
        let http = &self.http;
        match (provider.id.spec().auth, proof) {
            (
                AuthMethod::AuthorizationCode { .. },
                ConnectProof::AuthorizationCode {
                    code,
                    redirect_uri,
                    pkce_verifier,
                },
            ) => {
                let tokens = oauth::exchange_code(
                    http,
                    provider,
                    &code,
                    &redirect_uri,
                    pkce_verifier.as_ref(),
                )
                .await?;
                let account = accounts::fetch(http, provider, &tokens.access_token).await?;
                Ok(Grant {
                    credentials: Credentials::OAuth(tokens),
                    account,
                })
            }
            (AuthMethod::PasswordGrant, ConnectProof::Password { username, password }) => {
                let tokens = oauth::exchange_password(http, provider, &username, &password).await?;
                let mut account = accounts::fetch(http, provider, &tokens.access_token).await?;
                // Kitsu signs in with the e-mail address: it is kept with the tokens.
                account.email = Some(username);
                Ok(Grant {
                    credentials: Credentials::OAuth(tokens),
                    account,
                })
            }
            (AuthMethod::LastfmWebAuth, ConnectProof::LastfmToken { token }) => {
                let (session_key, account) = lastfm::get_session(http, provider, &token).await?;
                Ok(Grant {
                    credentials: Credentials::LastfmSession { session_key },
                    account,
                })
            }
            (AuthMethod::UserToken, ConnectProof::UserToken { token }) => {
                let account = listenbrainz::validate_token(http, provider, &token).await?;
                Ok(Grant {
                    credentials: Credentials::UserToken { user_token: token },
                    account,
                })
            }
            _ => Err(ProviderError::Unknown(anyhow::anyhow!(
                "the proof does not fit the provider's authentication method"
            ))),
        }
    }
}

/// Logs a failed provider call (the error text is safe: no body, no token) and passes it on.
fn logged<T>(
    provider: ProviderId,
    operation: &'static str,
    result: Result<T, ProviderError>,
) -> Result<T, ProviderError> {
    if let Err(e) = &result {
        match e {
            ProviderError::Rejected { .. } | ProviderError::InvalidGrant => {
                tracing::info!(%provider, operation, error = %e, "provider refused");
            }
            _ => tracing::warn!(%provider, operation, error = %e, "provider call failed"),
        }
    }
    result
}

#[async_trait]
impl ProviderGateway for HttpProviderGateway {
    fn is_configured(&self, provider: ProviderId) -> bool {
        self.configured(provider).is_ok()
    }

    fn authorization_request(
        &self,
        provider: ProviderId,
        redirect_uri: Option<String>,
    ) -> Result<AuthorizationRequest, AuthorizationUrlError> {
        let resolved = self
            .configured(provider)
            .map_err(|_| AuthorizationUrlError::NotConfigured)?;
        let auth = provider.spec().auth;
        if !auth.uses_redirect() {
            return Err(AuthorizationUrlError::NotARedirectFlow);
        }
        let redirect = match redirect_uri {
            None => resolved.redirect_uris.first().cloned(),
            Some(requested) => Url::parse(&requested)
                .ok()
                .filter(|url| resolved.redirect_uris.contains(url)),
        }
        .ok_or(AuthorizationUrlError::RedirectUriNotAllowed)?;
        let unknown = |e: ProviderError| AuthorizationUrlError::Unknown(anyhow::Error::new(e));
        let (url, state, pkce_verifier) = match auth {
            AuthMethod::LastfmWebAuth => {
                let state = CsrfToken::new_random().secret().clone();
                let url =
                    lastfm::authorization_url(resolved, &redirect, &state).map_err(unknown)?;
                (url, state, None)
            }
            _ => {
                let built =
                    oauth::authorization_url(resolved, &redirect, auth.pkce()).map_err(unknown)?;
                (built.url, built.state, built.pkce_verifier)
            }
        };
        Ok(AuthorizationRequest {
            url: url.to_string(),
            state,
            pkce_verifier,
            redirect_uri: redirect.to_string(),
        })
    }

    async fn connect(
        &self,
        provider: ProviderId,
        proof: ConnectProof,
    ) -> Result<Grant, ProviderError> {
        let result = match self.configured(provider) {
            Ok(resolved) => self.connect_inner(resolved, proof).await,
            Err(e) => Err(e),
        };
        logged(provider, "connect", result)
    }

    async fn refresh(
        &self,
        provider: ProviderId,
        refresh_token: SecretString,
    ) -> Result<TokenSet, ProviderError> {
        let result = match self.configured(provider) {
            Ok(resolved) => oauth::refresh(&self.http, resolved, &refresh_token).await,
            Err(e) => Err(e),
        };
        logged(provider, "refresh", result)
    }

    async fn revoke(
        &self,
        provider: ProviderId,
        credentials: Credentials,
    ) -> Result<Revocation, ProviderError> {
        let Ok(resolved) = self.configured(provider) else {
            return Ok(Revocation::NotSupported);
        };
        let Credentials::OAuth(tokens) = credentials else {
            return Ok(Revocation::NotSupported);
        };
        if !provider.spec().revocation || resolved.revoke_url.is_none() {
            return Ok(Revocation::NotSupported);
        }
        let result = oauth::revoke(&self.http, resolved, &tokens.access_token)
            .await
            .map(|()| Revocation::Revoked);
        logged(provider, "revoke", result)
    }
}
