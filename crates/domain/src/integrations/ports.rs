//! Ports of the integration use cases: the providers (outbound HTTP), the store of pending
//! authorizations (`state` + PKCE verifier), and the clock.

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use secrecy::SecretString;
use time::OffsetDateTime;

use super::{
    catalogue::ProviderId,
    credentials::{Credentials, Grant, TokenSet},
};
use crate::{error::RepositoryError, ids::UserId, secrets::Envelope};

/// Why a call to a provider failed. Never carries the provider's response body (it may echo
/// a secret); the HTTP status and the OAuth error code are safe.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The deployment has not configured this provider (no client credentials).
    #[error("the provider is not configured")]
    NotConfigured,
    /// The provider refused what the user presented (a wrong password, an unknown or used
    /// authorization code, an invalid user token). `code` is the OAuth error code or the
    /// provider's error number, when it gave one.
    #[error("the provider rejected the credentials ({})", code.as_deref().unwrap_or("no reason given"))]
    Rejected {
        /// Machine-readable reason, safe to show.
        code: Option<String>,
    },
    /// The refresh token is no longer valid (`invalid_grant`): the user must connect again.
    #[error("the provider refused the refresh token (invalid_grant)")]
    InvalidGrant,
    /// The provider answered with an error status.
    #[error("the provider answered with HTTP status {status}")]
    Status {
        /// The HTTP status.
        status: u16,
    },
    /// The provider did not answer within the configured timeout.
    #[error("the provider did not answer in time")]
    Timeout,
    /// The provider could not be reached (DNS, connection refused, TLS).
    #[error("the provider could not be reached")]
    Unreachable,
    /// The provider answered, but not in the expected shape.
    #[error("the provider's answer could not be understood: {0}")]
    InvalidResponse(String),
    /// Anything else; the cause is for the logs.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// Why an authorization URL could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizationUrlError {
    /// The deployment has not configured this provider.
    #[error("the provider is not configured")]
    NotConfigured,
    /// The requested redirect URI is not one of the configured ones.
    #[error("the redirect URI is not allowed for this provider")]
    RedirectUriNotAllowed,
    /// The provider does not use a browser redirect.
    #[error("the provider does not use an authorization redirect")]
    NotARedirectFlow,
    /// Anything else (a configured URL that does not parse, ...).
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

/// A freshly built authorization request: where to send the browser, and what to remember.
#[derive(Debug)]
pub struct AuthorizationRequest {
    /// The provider's authorization URL, with `state` (and the PKCE challenge).
    pub url: String,
    /// The random, unguessable `state`.
    pub state: String,
    /// The PKCE verifier, for providers that use PKCE.
    pub pkce_verifier: Option<SecretString>,
    /// The redirect URI the provider will send the browser back to.
    pub redirect_uri: String,
}

/// What the user presents to connect, as the provider needs it.
#[derive(Debug)]
pub enum ConnectProof {
    /// An OAuth authorization code, with the redirect URI and PKCE verifier of its request.
    AuthorizationCode {
        /// The code.
        code: SecretString,
        /// The redirect URI used in the authorization request.
        redirect_uri: String,
        /// The PKCE verifier, when the request carried a challenge.
        pkce_verifier: Option<SecretString>,
    },
    /// A Last.fm web-auth token.
    LastfmToken {
        /// The token.
        token: SecretString,
    },
    /// A user token (ListenBrainz).
    UserToken {
        /// The token.
        token: SecretString,
    },
    /// Username (Kitsu: e-mail) and password, for the password grant.
    Password {
        /// The username or e-mail.
        username: String,
        /// The password.
        password: SecretString,
    },
}

/// What a revocation call achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    /// The provider revoked the token.
    Revoked,
    /// The provider offers no revocation (or none is configured).
    NotSupported,
}

/// The external providers (implemented over HTTP by `adapter-providers`). Every call is
/// bounded by a timeout.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ProviderGateway: Send + Sync {
    /// Whether the deployment configured what the provider needs (see
    /// [`super::ClientRequirement`]).
    fn is_configured(&self, provider: ProviderId) -> bool;

    /// Builds the authorization URL with a fresh random `state` (and PKCE verifier where the
    /// catalogue says). `redirect_uri`, when given, must be one of the configured ones.
    ///
    /// # Errors
    /// [`AuthorizationUrlError`].
    fn authorization_request(
        &self,
        provider: ProviderId,
        redirect_uri: Option<String>,
    ) -> Result<AuthorizationRequest, AuthorizationUrlError>;

    /// Exchanges the proof for credentials and looks up the remote account.
    ///
    /// # Errors
    /// [`ProviderError`].
    async fn connect(
        &self,
        provider: ProviderId,
        proof: ConnectProof,
    ) -> Result<Grant, ProviderError>;

    /// Gets a new access token with a refresh token. The answer's refresh token is `None`
    /// when the provider did not rotate it.
    ///
    /// # Errors
    /// [`ProviderError::InvalidGrant`] when the refresh token is no longer valid.
    async fn refresh(
        &self,
        provider: ProviderId,
        refresh_token: SecretString,
    ) -> Result<TokenSet, ProviderError>;

    /// Revokes the credentials at the provider, where it offers revocation.
    ///
    /// # Errors
    /// [`ProviderError`].
    async fn revoke(
        &self,
        provider: ProviderId,
        credentials: Credentials,
    ) -> Result<Revocation, ProviderError>;
}

/// An authorization in progress: created by `authorize`, consumed once by `connect`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingAuthorization {
    /// The `state` sent to the provider.
    pub state: String,
    /// The user who started it.
    pub user: UserId,
    /// The provider.
    pub provider: ProviderId,
    /// The redirect URI of the request (the code exchange must repeat it).
    pub redirect_uri: String,
    /// The PKCE verifier, sealed for the user.
    pub pkce_verifier: Option<Envelope>,
    /// After this instant the state is refused.
    pub expires_at: OffsetDateTime,
}

/// Server-side store of pending authorizations.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OAuthStateStore: Send + Sync {
    /// Stores a pending authorization (and may purge expired ones).
    async fn save(&self, pending: &PendingAuthorization) -> Result<(), RepositoryError>;

    /// Removes and returns the pending authorization with this `state`, if it belongs to
    /// `user` and `provider`. Atomic: of two concurrent calls, at most one gets it. An
    /// expired one is returned too (and removed); the caller checks `expires_at`.
    async fn take(
        &self,
        state: &str,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<PendingAuthorization>, RepositoryError>;
}

/// The current time, and a timer to bound waits (a port so unit tests can move it, and
/// because the domain has no async runtime of its own).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;

    /// Completes after `duration`. The default never completes: a clock without a timer
    /// leaves waits bounded only by what they wait for.
    fn sleep(&self, duration: std::time::Duration) -> BoxFuture<'static, ()> {
        let _ = duration;
        Box::pin(futures_util::future::pending())
    }
}

/// The system clock, without a timer (see [`Clock::sleep`]); the application supplies one
/// with its runtime's timer.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

impl SystemClock {
    /// The system clock with `timer` (the runtime's sleep) as [`Clock::sleep`].
    pub fn with_timer<T>(timer: T) -> TimedClock<T>
    where
        T: Fn(std::time::Duration) -> BoxFuture<'static, ()> + Send + Sync,
    {
        TimedClock { timer }
    }
}

/// The system clock with a timer; see [`SystemClock::with_timer`].
pub struct TimedClock<T> {
    timer: T,
}

impl<T> Clock for TimedClock<T>
where
    T: Fn(std::time::Duration) -> BoxFuture<'static, ()> + Send + Sync,
{
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn sleep(&self, duration: std::time::Duration) -> BoxFuture<'static, ()> {
        (self.timer)(duration)
    }
}

// Shared handles, as for the ports of `crate::ports`.

#[async_trait]
impl<T: ProviderGateway + ?Sized> ProviderGateway for std::sync::Arc<T> {
    fn is_configured(&self, provider: ProviderId) -> bool {
        (**self).is_configured(provider)
    }

    fn authorization_request(
        &self,
        provider: ProviderId,
        redirect_uri: Option<String>,
    ) -> Result<AuthorizationRequest, AuthorizationUrlError> {
        (**self).authorization_request(provider, redirect_uri)
    }

    async fn connect(
        &self,
        provider: ProviderId,
        proof: ConnectProof,
    ) -> Result<Grant, ProviderError> {
        (**self).connect(provider, proof).await
    }

    async fn refresh(
        &self,
        provider: ProviderId,
        refresh_token: SecretString,
    ) -> Result<TokenSet, ProviderError> {
        (**self).refresh(provider, refresh_token).await
    }

    async fn revoke(
        &self,
        provider: ProviderId,
        credentials: Credentials,
    ) -> Result<Revocation, ProviderError> {
        (**self).revoke(provider, credentials).await
    }
}

#[async_trait]
impl<T: OAuthStateStore + ?Sized> OAuthStateStore for std::sync::Arc<T> {
    async fn save(&self, pending: &PendingAuthorization) -> Result<(), RepositoryError> {
        (**self).save(pending).await
    }

    async fn take(
        &self,
        state: &str,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<PendingAuthorization>, RepositoryError> {
        (**self).take(state, user, provider).await
    }
}

impl<T: Clock + ?Sized> Clock for std::sync::Arc<T> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }

    fn sleep(&self, duration: std::time::Duration) -> BoxFuture<'static, ()> {
        (**self).sleep(duration)
    }
}
