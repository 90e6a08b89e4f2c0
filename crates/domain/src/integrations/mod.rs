//! External service integrations: the provider
//! catalogue, what a connection stores, the ports to the providers and to pending
//! authorizations, and two use cases:
//!
//! - [`ConnectionService`]: list, status, authorize (`state` + PKCE), connect, disconnect.
//! - [`TokenService`]: a valid access token for integration services, refreshed when near
//!   expiry (single-flight, version-checked, `invalid_grant` → `needs_reauth`).
//!
//! A connection is two settings rows: the credentials, encrypted under the provider's storage
//! key (`scrobbling.trakt.oauth_tokens`, ...), and the non-secret metadata in clear under
//! `integrations.{provider}.connection`. Both are written in one transaction.

mod catalogue;
mod connection;
mod connections;
mod credentials;
mod errors;
mod ports;
mod single_flight;
mod tokens;
mod vault;

#[cfg(test)]
mod tests;

pub use catalogue::{
    AuthMethod, CATALOGUE, ClientRequirement, PkceMethod, ProviderId, ProviderSpec,
    UnknownProvider, managing_provider, metadata_key,
};
pub use connection::{ConnectionMetadata, ConnectionStatus};
pub use connections::{AuthorizationStart, ConnectRequest, ConnectionService, RevocationOutcome};
pub use credentials::{
    Credentials, Grant, MalformedCredentials, RemoteAccount, RemoteUserId, TokenSet,
};
pub use errors::{
    AuthorizeError, ConnectError, DisconnectError, StateProblem, StatusError, TokenError,
};
pub use ports::{
    AuthorizationRequest, AuthorizationUrlError, Clock, ConnectProof, OAuthStateStore,
    PendingAuthorization, ProviderError, ProviderGateway, Revocation, SystemClock, TimedClock,
};
#[cfg(any(test, feature = "mocks"))]
pub use ports::{MockClock, MockOAuthStateStore, MockProviderGateway};
pub use single_flight::{Flight, KeyedLocks};
pub use tokens::{ProviderToken, TokenService};
pub use vault::{
    CredentialVault, MetadataUpdate, StoredConnection, StoredGrant, VaultReadError, VaultWriteError,
};
