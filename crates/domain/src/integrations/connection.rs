//! The non-secret side of a connection: metadata stored in clear under
//! `integrations.{provider}.connection`, and the status the API reports.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::{
    catalogue::ProviderId,
    credentials::{Grant, RemoteUserId},
};

/// Connection facts that are safe to show: who, since when, until when, and whether the user
/// must connect again. Never holds a token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionMetadata {
    /// The provider.
    pub provider: ProviderId,
    /// The remote account's name, when known.
    pub username: Option<String>,
    /// The remote account's id, when known.
    #[serde(default)]
    pub user_id: Option<RemoteUserId>,
    /// When the user connected.
    #[serde(with = "time::serde::rfc3339")]
    pub connected_at: OffsetDateTime,
    /// When the access token expires (`None`: it does not, or the provider did not say).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// When the token was last refreshed.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub refreshed_at: Option<OffsetDateTime>,
    /// The provider refused the refresh token (or the token expired for good): the user must
    /// connect again.
    #[serde(default)]
    pub needs_reauth: bool,
}

impl ConnectionMetadata {
    /// Metadata of a fresh connection.
    pub fn connected(provider: ProviderId, grant: &Grant, now: OffsetDateTime) -> Self {
        Self {
            provider,
            username: grant
                .account
                .username
                .clone()
                .or_else(|| grant.account.slug.clone())
                .or_else(|| grant.account.email.clone()),
            user_id: grant.account.id.clone(),
            connected_at: now,
            expires_at: grant.credentials.expires_at(),
            refreshed_at: None,
            needs_reauth: false,
        }
    }

    /// The JSON stored in clear.
    pub fn to_json(&self) -> Value {
        // A struct of strings, numbers and booleans always serializes.
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads stored metadata; `None` when the row does not have the expected shape (the
    /// setting is writable by the user through the settings API, so it is not trusted).
    pub fn from_json(value: &Value) -> Option<Self> {
        Self::deserialize(value).ok()
    }
}

/// What the API reports about one provider for one user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConnectionStatus {
    /// The provider.
    pub provider: ProviderId,
    /// Human-readable name.
    pub name: &'static str,
    /// How the user connects (`authorization_code`, `password_grant`, ...).
    pub auth_method: &'static str,
    /// Whether this deployment has the provider set up (client credentials configured).
    pub configured: bool,
    /// Whether the user's credentials are stored.
    pub connected: bool,
    /// The remote account's name.
    pub username: Option<String>,
    /// When the user connected.
    #[serde(with = "time::serde::rfc3339::option")]
    pub connected_at: Option<OffsetDateTime>,
    /// When the access token expires.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// The user must connect again.
    pub needs_reauth: bool,
    /// Where the credentials are stored (encrypted).
    pub storage_key: &'static str,
}

impl ConnectionStatus {
    /// The status from what is stored: `connected` follows the credentials row, the rest the
    /// metadata (when readable).
    pub fn new(
        provider: ProviderId,
        configured: bool,
        connected: bool,
        metadata: Option<&ConnectionMetadata>,
    ) -> Self {
        let spec = provider.spec();
        let metadata = metadata.filter(|_| connected);
        Self {
            provider,
            name: spec.name,
            auth_method: spec.auth.as_str(),
            configured,
            connected,
            username: metadata.and_then(|m| m.username.clone()),
            connected_at: metadata.map(|m| m.connected_at),
            expires_at: metadata.and_then(|m| m.expires_at),
            needs_reauth: metadata.is_some_and(|m| m.needs_reauth),
            storage_key: spec.storage_key,
        }
    }
}
