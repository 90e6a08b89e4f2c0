//! `ConnectionService`: the user-facing use cases — list, status, authorize, connect,
//! disconnect.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use super::{
    catalogue::{AuthMethod, ProviderId},
    connection::{ConnectionMetadata, ConnectionStatus},
    credentials::{Credentials, Grant, RemoteAccount},
    errors::{AuthorizeError, ConnectError, DisconnectError, StateProblem, StatusError},
    ports::{
        Clock, ConnectProof, OAuthStateStore, PendingAuthorization, ProviderGateway, Revocation,
    },
    vault::{CredentialVault, VaultReadError},
};
use crate::{
    error::{FieldError, ValidationErrors},
    ids::UserId,
    ports::{SecretCipher, SettingsRepository},
};

/// Longest Letterboxd username accepted.
const MAX_USERNAME_CHARS: usize = 100;
/// Longest password or token accepted.
const MAX_SECRET_CHARS: usize = 4096;

/// What a client hands over to connect a provider (the HTTP adapter builds it from its
/// wire type). Which fields apply depends on the provider's [`AuthMethod`]; a field that does
/// not apply is refused.
#[derive(Debug, Default)]
pub struct ConnectRequest {
    /// OAuth authorization code (authorization-code providers).
    pub code: Option<SecretString>,
    /// The `state` returned by `authorize` (redirect flows).
    pub state: Option<String>,
    /// The redirect URI of the authorization request (optional; checked when given).
    pub redirect_uri: Option<String>,
    /// Last.fm web-auth token, or ListenBrainz user token.
    pub token: Option<SecretString>,
    /// Kitsu e-mail or Letterboxd username.
    pub username: Option<String>,
    /// Kitsu or Letterboxd password.
    pub password: Option<SecretString>,
}

/// The answer of `authorize`: where to send the browser.
#[derive(Debug)]
pub struct AuthorizationStart {
    /// The provider.
    pub provider: ProviderId,
    /// The provider's authorization URL.
    pub authorization_url: String,
    /// The `state` to hand back to `connect`.
    pub state: String,
    /// The redirect URI the provider will return to.
    pub redirect_uri: String,
    /// The state is refused after this instant.
    pub expires_at: OffsetDateTime,
}

/// What a disconnect did at the provider.
#[derive(Debug)]
pub enum RevocationOutcome {
    /// The provider revoked the token.
    Revoked,
    /// The provider offers no revocation (or nothing revocable was stored).
    NotSupported,
    /// Revocation failed (the connection was removed anyway); the reason is safe to log.
    Failed(String),
    /// Not attempted: the stored credentials could not be read (a lost key, a corrupt
    /// row); they were removed anyway. The reason is safe to log.
    Skipped(String),
}

/// The user-facing integration use cases.
pub struct ConnectionService<R, C, G, S, K> {
    vault: Arc<CredentialVault<R, C>>,
    gateway: G,
    states: S,
    clock: K,
    state_ttl: time::Duration,
}

impl<R, C, G, S, K> ConnectionService<R, C, G, S, K>
where
    R: SettingsRepository,
    C: SecretCipher,
    G: ProviderGateway,
    S: OAuthStateStore,
    K: Clock,
{
    /// Builds the service. `state_ttl` bounds how long an authorization may take (10 min
    /// unless it cannot be represented).
    pub fn new(
        vault: Arc<CredentialVault<R, C>>,
        gateway: G,
        states: S,
        clock: K,
        state_ttl: std::time::Duration,
    ) -> Self {
        Self {
            vault,
            gateway,
            states,
            clock,
            state_ttl: time::Duration::try_from(state_ttl).unwrap_or(time::Duration::MINUTE * 10),
        }
    }

    /// Every provider with the user's connection status, in catalogue order.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn list(&self, user: UserId) -> Result<Vec<ConnectionStatus>, StatusError> {
        let stored = self.vault.list(user).await?;
        Ok(ProviderId::ALL
            .into_iter()
            .map(|provider| {
                let entry = stored.get(&provider).cloned().unwrap_or_default();
                ConnectionStatus::new(
                    provider,
                    self.gateway.is_configured(provider),
                    entry.has_credentials,
                    entry.metadata.as_ref(),
                )
            })
            .collect())
    }

    /// One provider's connection status.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn status(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<ConnectionStatus, StatusError> {
        let mut all = self.vault.list(user).await?;
        let entry = all.remove(&provider).unwrap_or_default();
        Ok(ConnectionStatus::new(
            provider,
            self.gateway.is_configured(provider),
            entry.has_credentials,
            entry.metadata.as_ref(),
        ))
    }

    /// Starts a redirect flow: builds the provider's URL with a fresh `state` and stores the
    /// state (bound to the user and provider, single-use, expiring) with the sealed PKCE
    /// verifier.
    ///
    /// # Errors
    /// [`AuthorizeError`].
    pub async fn authorize(
        &self,
        user: UserId,
        provider: ProviderId,
        redirect_uri: Option<String>,
    ) -> Result<AuthorizationStart, AuthorizeError> {
        if !provider.spec().auth.uses_redirect() {
            return Err(AuthorizeError::NotARedirectFlow(provider));
        }
        if !self.gateway.is_configured(provider) {
            return Err(AuthorizeError::NotConfigured(provider));
        }
        let request = self
            .gateway
            .authorization_request(provider, redirect_uri)
            .map_err(|e| AuthorizeError::from_gateway(provider, e))?;
        let pkce_verifier = match &request.pkce_verifier {
            Some(verifier) => Some(self.vault.seal_pkce(user, provider, verifier)?),
            None => None,
        };
        let expires_at = self
            .clock
            .now()
            .checked_add(self.state_ttl)
            .ok_or_else(|| anyhow::anyhow!("the state's expiry is out of the date range"))?;
        self.states
            .save(&PendingAuthorization {
                state: request.state.clone(),
                user,
                provider,
                redirect_uri: request.redirect_uri.clone(),
                pkce_verifier,
                expires_at,
            })
            .await?;
        Ok(AuthorizationStart {
            provider,
            authorization_url: request.url,
            state: request.state,
            redirect_uri: request.redirect_uri,
            expires_at,
        })
    }

    /// Connects the provider: checks the request, consumes the `state` (redirect flows),
    /// has the provider verify the proof, then stores the credentials (encrypted) and the
    /// metadata (clear) in one transaction. Nothing is stored on any failure.
    ///
    /// # Errors
    /// [`ConnectError`].
    pub async fn connect(
        &self,
        user: UserId,
        provider: ProviderId,
        request: ConnectRequest,
    ) -> Result<ConnectionStatus, ConnectError> {
        let auth = provider.spec().auth;
        if !self.gateway.is_configured(provider) {
            return Err(ConnectError::NotConfigured(provider));
        }
        check_fields(auth, &request).map_err(ConnectError::Validation)?;
        let grant = match auth {
            AuthMethod::StoredPassword => stored_password(request)?,
            _ => {
                let proof = self.proof(user, provider, auth, request).await?;
                self.gateway
                    .connect(provider, proof)
                    .await
                    .map_err(|e| ConnectError::from_provider(provider, e))?
            }
        };
        let metadata = ConnectionMetadata::connected(provider, &grant, self.clock.now());
        self.vault
            .store_connection(user, provider, &grant, &metadata)
            .await
            .map_err(|e| ConnectError::from_write(provider, e))?;
        Ok(ConnectionStatus::new(provider, true, true, Some(&metadata)))
    }

    /// Removes the connection: has the gateway revoke the token where the provider offers
    /// revocation (best effort: a failure is reported, not fatal), then deletes every row of
    /// the connection.
    ///
    /// # Errors
    /// [`DisconnectError::NotConnected`] when nothing was stored, or a store failure (then
    /// nothing is revoked or removed).
    pub async fn disconnect(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<RevocationOutcome, DisconnectError> {
        let outcome = match self.vault.read(user, provider).await {
            Ok(Some(stored)) => {
                match self
                    .gateway
                    .revoke(provider, stored.grant.credentials)
                    .await
                {
                    Ok(Revocation::Revoked) => RevocationOutcome::Revoked,
                    Ok(Revocation::NotSupported) => RevocationOutcome::NotSupported,
                    Err(e) => RevocationOutcome::Failed(e.to_string()),
                }
            }
            Ok(None) => RevocationOutcome::NotSupported,
            // Unreadable credentials (a lost key, a corrupt row) must not block removing them.
            Err(e @ (VaultReadError::Cipher(_) | VaultReadError::Malformed(_))) => {
                RevocationOutcome::Skipped(e.to_string())
            }
            Err(VaultReadError::Repository(e)) => return Err(e.into()),
        };
        if !self.vault.remove(user, provider).await? {
            return Err(DisconnectError::NotConnected(provider));
        }
        Ok(outcome)
    }

    /// The proof the provider verifies; consumes the `state` of redirect flows.
    async fn proof(
        &self,
        user: UserId,
        provider: ProviderId,
        auth: AuthMethod,
        request: ConnectRequest,
    ) -> Result<ConnectProof, ConnectError> {
        // `check_fields` already required these; the errors below are for completeness.
        let missing = |name: &'static str| {
            ConnectError::Validation(ValidationErrors::single(FieldError::new(
                name,
                "required",
                format!("`{name}` is required"),
            )))
        };
        Ok(match auth {
            AuthMethod::AuthorizationCode { .. } => {
                let pending = self.take_state(user, provider, &request).await?;
                let pkce_verifier = match &pending.pkce_verifier {
                    Some(sealed) => Some(self.vault.open_pkce(user, provider, sealed)?),
                    None => None,
                };
                ConnectProof::AuthorizationCode {
                    code: request.code.ok_or_else(|| missing("code"))?,
                    redirect_uri: pending.redirect_uri,
                    pkce_verifier,
                }
            }
            AuthMethod::LastfmWebAuth => {
                self.take_state(user, provider, &request).await?;
                ConnectProof::LastfmToken {
                    token: request.token.ok_or_else(|| missing("token"))?,
                }
            }
            AuthMethod::UserToken => ConnectProof::UserToken {
                token: request.token.ok_or_else(|| missing("token"))?,
            },
            AuthMethod::PasswordGrant => ConnectProof::Password {
                username: request.username.ok_or_else(|| missing("username"))?,
                password: request.password.ok_or_else(|| missing("password"))?,
            },
            AuthMethod::StoredPassword => return Err(missing("password")),
        })
    }

    /// Consumes the request's `state`: it must exist, belong to this user and provider, be
    /// unexpired, and (when the request names one) have the same redirect URI.
    async fn take_state(
        &self,
        user: UserId,
        provider: ProviderId,
        request: &ConnectRequest,
    ) -> Result<PendingAuthorization, ConnectError> {
        let state = request
            .state
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or(ConnectError::State(StateProblem::Missing))?;
        let pending = self
            .states
            .take(state, user, provider)
            .await?
            .ok_or(ConnectError::State(StateProblem::Invalid))?;
        if pending.expires_at <= self.clock.now() {
            return Err(ConnectError::State(StateProblem::Expired));
        }
        if let Some(uri) = &request.redirect_uri
            && *uri != pending.redirect_uri
        {
            return Err(ConnectError::State(StateProblem::RedirectUriMismatch));
        }
        Ok(pending)
    }
}

/// The fields each method needs; every problem at once. The `state` is checked later, so a
/// request with a bad body does not burn it.
fn check_fields(auth: AuthMethod, request: &ConnectRequest) -> Result<(), ValidationErrors> {
    let mut errors = ValidationErrors::new();
    let (code, token, username, password) = match auth {
        AuthMethod::AuthorizationCode { .. } => (true, false, false, false),
        AuthMethod::LastfmWebAuth | AuthMethod::UserToken => (false, true, false, false),
        AuthMethod::PasswordGrant | AuthMethod::StoredPassword => (false, false, true, true),
    };
    let redirect = auth.uses_redirect();
    let mut field = |name: &'static str, needed: bool, present: bool, long: bool| {
        if needed && !present {
            errors.push(FieldError::new(
                name,
                "required",
                format!("`{name}` is required"),
            ));
        } else if !needed && present {
            errors.push(FieldError::new(
                name,
                "not_applicable",
                format!("`{name}` is not used by this provider"),
            ));
        } else if long {
            errors.push(FieldError::new(
                name,
                "too_long",
                format!("`{name}` must be at most {MAX_SECRET_CHARS} characters"),
            ));
        }
    };
    let secret_len =
        |s: &Option<SecretString>| s.as_ref().map_or(0, |s| s.expose_secret().chars().count());
    let secret_present =
        |s: &Option<SecretString>| s.as_ref().is_some_and(|s| !s.expose_secret().is_empty());
    field(
        "code",
        code,
        secret_present(&request.code),
        secret_len(&request.code) > MAX_SECRET_CHARS,
    );
    field(
        "token",
        token,
        secret_present(&request.token),
        secret_len(&request.token) > MAX_SECRET_CHARS,
    );
    field(
        "username",
        username,
        request
            .username
            .as_deref()
            .is_some_and(|u| !u.trim().is_empty()),
        request
            .username
            .as_deref()
            .is_some_and(|u| u.chars().count() > MAX_USERNAME_CHARS),
    );
    field(
        "password",
        password,
        secret_present(&request.password),
        secret_len(&request.password) > MAX_SECRET_CHARS,
    );
    if !redirect {
        field("state", false, request.state.is_some(), false);
        field("redirect_uri", false, request.redirect_uri.is_some(), false);
    }
    errors.into_result(())
}

/// Letterboxd: there is no public API to verify the credentials, so they are stored as given
/// once the fields are well-formed.
fn stored_password(request: ConnectRequest) -> Result<Grant, ConnectError> {
    let (Some(username), Some(password)) = (request.username, request.password) else {
        return Err(ConnectError::Validation(ValidationErrors::single(
            FieldError::new(
                "password",
                "required",
                "`username` and `password` are required",
            ),
        )));
    };
    Ok(Grant {
        credentials: Credentials::Password { password },
        account: RemoteAccount {
            username: Some(username.trim().to_owned()),
            ..RemoteAccount::default()
        },
    })
}
