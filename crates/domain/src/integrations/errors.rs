//! Errors of the integration use cases, one enum per operation. None of them carries a
//! token, a password or a provider's response body.

use super::{
    catalogue::ProviderId,
    ports::{AuthorizationUrlError, ProviderError},
    vault::{VaultReadError, VaultWriteError},
};
use crate::{
    error::RepositoryError, error::ValidationErrors, secrets::CipherError, settings::QuotaExceeded,
};

/// Why the connections could not be listed or one status read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The store failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Why an authorization could not be started.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizeError {
    /// The deployment has not configured the provider.
    #[error("{0} is not configured on this server")]
    NotConfigured(ProviderId),
    /// The provider is connected without a browser redirect (credentials are posted to
    /// `connect` directly).
    #[error("{0} does not use an authorization redirect")]
    NotARedirectFlow(ProviderId),
    /// The requested redirect URI is not configured for the provider.
    #[error("the redirect URI is not allowed for {0}")]
    RedirectUriNotAllowed(ProviderId),
    /// The PKCE verifier could not be sealed.
    #[error("the PKCE verifier could not be encrypted: {0}")]
    Cipher(#[from] CipherError),
    /// The store failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
    /// Anything else (a misconfigured URL, ...); logged, never shown.
    #[error(transparent)]
    Unknown(#[from] anyhow::Error),
}

impl AuthorizeError {
    pub(super) fn from_gateway(provider: ProviderId, e: AuthorizationUrlError) -> Self {
        match e {
            AuthorizationUrlError::NotConfigured => Self::NotConfigured(provider),
            AuthorizationUrlError::RedirectUriNotAllowed => Self::RedirectUriNotAllowed(provider),
            AuthorizationUrlError::NotARedirectFlow => Self::NotARedirectFlow(provider),
            AuthorizationUrlError::Unknown(e) => Self::Unknown(e),
        }
    }
}

/// Which check of the OAuth `state` failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StateProblem {
    /// No `state` in the request.
    Missing,
    /// Unknown, already used, or started by another user or for another provider (these are
    /// indistinguishable on purpose).
    Invalid,
    /// Started more than the allowed time ago.
    Expired,
    /// The `redirect_uri` differs from the one of the authorization request.
    RedirectUriMismatch,
}

/// Why a connection could not be made. Nothing is stored when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The deployment has not configured the provider.
    #[error("{0} is not configured on this server")]
    NotConfigured(ProviderId),
    /// Missing or malformed fields for this provider.
    #[error("invalid request: {0}")]
    Validation(ValidationErrors),
    /// The `state` check failed.
    #[error("the authorization state is not valid ({0:?})")]
    State(StateProblem),
    /// The provider refused what the user presented.
    #[error("{provider} rejected the credentials")]
    Rejected {
        /// The provider.
        provider: ProviderId,
        /// Its reason code, when it gave one (safe to show).
        code: Option<String>,
    },
    /// The provider failed (error status, timeout, unreachable, unreadable answer).
    #[error("{provider} failed: {source}")]
    Provider {
        /// The provider.
        provider: ProviderId,
        /// What happened.
        source: ProviderError,
    },
    /// The provider's answer lacks something the storage key requires (e.g. no refresh
    /// token): a provider fault.
    #[error("{provider}'s answer is incomplete: {errors}")]
    IncompleteAnswer {
        /// The provider.
        provider: ProviderId,
        /// What the schema missed (never values: the key is sensitive).
        errors: ValidationErrors,
    },
    /// The connection would take the user over a per-user quota.
    #[error("{0}")]
    QuotaExceeded(QuotaExceeded),
    /// The user does not exist (external provisioning).
    #[error("the user does not exist")]
    UserNotFound,
    /// Sealing or opening failed.
    #[error("encryption failed: {0}")]
    Cipher(#[from] CipherError),
    /// The store failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

impl ConnectError {
    pub(super) fn from_provider(provider: ProviderId, e: ProviderError) -> Self {
        match e {
            ProviderError::NotConfigured => Self::NotConfigured(provider),
            ProviderError::Rejected { code } => Self::Rejected { provider, code },
            ProviderError::InvalidGrant => Self::Rejected {
                provider,
                code: Some("invalid_grant".into()),
            },
            source => Self::Provider { provider, source },
        }
    }

    pub(super) fn from_write(provider: ProviderId, e: VaultWriteError) -> Self {
        match e {
            VaultWriteError::Invalid(errors) => Self::IncompleteAnswer { provider, errors },
            // A connect overwrites whatever is there; a conflict cannot happen.
            VaultWriteError::VersionConflict => Self::Repository(RepositoryError::Unknown(
                anyhow::anyhow!("unexpected version conflict storing a connection"),
            )),
            VaultWriteError::QuotaExceeded(q) => Self::QuotaExceeded(q),
            VaultWriteError::UserNotFound => Self::UserNotFound,
            VaultWriteError::Cipher(c) => Self::Cipher(c),
            VaultWriteError::Repository(r) => Self::Repository(r),
        }
    }
}

/// Why a connection could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum DisconnectError {
    /// Nothing was stored for the provider.
    #[error("{0} is not connected")]
    NotConnected(ProviderId),
    /// The store failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Why no valid access token could be returned.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The user has not connected the provider.
    #[error("{0} is not connected")]
    NotConnected(ProviderId),
    /// The provider's connection has no access token (Letterboxd stores a password; read it
    /// through the internal secrets endpoint).
    #[error("{0} connections have no access token")]
    NoAccessToken(ProviderId),
    /// The provider refused the refresh token, or the token expired and cannot be refreshed:
    /// the user must connect again. The connection is marked `needs_reauth`.
    #[error("the {0} connection must be authorized again")]
    NeedsReauth(ProviderId),
    /// The deployment has no client credentials to refresh with.
    #[error("{0} is not configured on this server")]
    NotConfigured(ProviderId),
    /// The provider failed while refreshing.
    #[error("{provider} failed: {source}")]
    Provider {
        /// The provider.
        provider: ProviderId,
        /// What happened.
        source: ProviderError,
    },
    /// The refreshed token could not be stored (schema, quota, ...).
    #[error("the refreshed token could not be stored: {0}")]
    Store(VaultWriteError),
    /// The stored credentials could not be decrypted or are malformed.
    #[error("the stored credentials are unreadable: {0}")]
    Unreadable(VaultReadError),
    /// The store or the audit log failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

impl From<VaultReadError> for TokenError {
    fn from(e: VaultReadError) -> Self {
        match e {
            VaultReadError::Repository(r) => Self::Repository(r),
            other => Self::Unreadable(other),
        }
    }
}

impl From<VaultWriteError> for TokenError {
    fn from(e: VaultWriteError) -> Self {
        match e {
            VaultWriteError::Repository(r) => Self::Repository(r),
            other => Self::Store(other),
        }
    }
}

// Copies of errors, for the callers that share one failed refresh (see `single_flight`).
// The causes kept for the logs (`anyhow`) are not `Clone`: the copies keep their message.

impl TokenError {
    /// An equivalent error (same variant and meaning).
    pub(super) fn duplicate(&self) -> Self {
        match self {
            Self::NotConnected(p) => Self::NotConnected(*p),
            Self::NoAccessToken(p) => Self::NoAccessToken(*p),
            Self::NeedsReauth(p) => Self::NeedsReauth(*p),
            Self::NotConfigured(p) => Self::NotConfigured(*p),
            Self::Provider { provider, source } => Self::Provider {
                provider: *provider,
                source: source.duplicate(),
            },
            Self::Store(e) => Self::Store(e.duplicate()),
            Self::Unreadable(e) => Self::Unreadable(e.duplicate()),
            Self::Repository(e) => Self::Repository(duplicate_repository(e)),
        }
    }
}

impl ProviderError {
    /// An equivalent error (same variant and meaning).
    pub(super) fn duplicate(&self) -> Self {
        match self {
            Self::NotConfigured => Self::NotConfigured,
            Self::Rejected { code } => Self::Rejected { code: code.clone() },
            Self::InvalidGrant => Self::InvalidGrant,
            Self::Status { status } => Self::Status { status: *status },
            Self::Timeout => Self::Timeout,
            Self::Unreachable => Self::Unreachable,
            Self::InvalidResponse(what) => Self::InvalidResponse(what.clone()),
            Self::Unknown(e) => Self::Unknown(anyhow::anyhow!("{e:#}")),
        }
    }
}

impl VaultWriteError {
    fn duplicate(&self) -> Self {
        match self {
            Self::Invalid(errors) => Self::Invalid(errors.clone()),
            Self::VersionConflict => Self::VersionConflict,
            Self::QuotaExceeded(q) => Self::QuotaExceeded(*q),
            Self::UserNotFound => Self::UserNotFound,
            Self::Cipher(e) => Self::Cipher(e.clone()),
            Self::Repository(e) => Self::Repository(duplicate_repository(e)),
        }
    }
}

impl VaultReadError {
    fn duplicate(&self) -> Self {
        match self {
            Self::Cipher(e) => Self::Cipher(e.clone()),
            Self::Malformed(e) => Self::Malformed(*e),
            Self::Repository(e) => Self::Repository(duplicate_repository(e)),
        }
    }
}

fn duplicate_repository(e: &RepositoryError) -> RepositoryError {
    match e {
        RepositoryError::Unavailable(cause) => RepositoryError::Unavailable(cause.clone()),
        RepositoryError::Unknown(cause) => RepositoryError::Unknown(anyhow::anyhow!("{cause:#}")),
    }
}
