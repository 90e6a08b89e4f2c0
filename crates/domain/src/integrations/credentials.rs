//! What a connection stores encrypted: the provider's tokens (or session key, user token,
//! password) and the remote account, as one JSON object under the provider's storage key.
//!
//! The JSON field names are the provider's required fields (`access_token`, `refresh_token`,
//! `expires_at`, `user_id`, `user_slug`, `username`, `email`, `session_key`, `user_token`,
//! `password`), so the registry's schema of each key checks them.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::catalogue::{AuthMethod, ProviderId};

/// OAuth 2.0 tokens as a provider issued them.
#[derive(Clone, Debug)]
pub struct TokenSet {
    /// The bearer token.
    pub access_token: SecretString,
    /// The refresh token, when the provider issues one.
    pub refresh_token: Option<SecretString>,
    /// When the access token expires, when the provider says.
    pub expires_at: Option<OffsetDateTime>,
    /// Granted scopes (space-separated), when the provider says.
    pub scope: Option<String>,
}

/// The remote account's identifier: a number or a string, as the provider has it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RemoteUserId {
    /// A numeric id (AniList, MyAnimeList, Simkl).
    Number(i64),
    /// A textual id (Trakt's slug or UUID, Kitsu, Spotify).
    Text(String),
}

/// Who the user is at the provider.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RemoteAccount {
    /// The provider's id of the account.
    pub id: Option<RemoteUserId>,
    /// The display or login name.
    pub username: Option<String>,
    /// A URL-safe name (Trakt's slug).
    pub slug: Option<String>,
    /// The e-mail the user signed in with (Kitsu's password grant).
    pub email: Option<String>,
}

/// The secret part of a connection, by kind of provider.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// OAuth 2.0 tokens.
    OAuth(TokenSet),
    /// A Last.fm session key (never expires).
    LastfmSession {
        /// The session key.
        session_key: SecretString,
    },
    /// A user token (ListenBrainz).
    UserToken {
        /// The token.
        user_token: SecretString,
    },
    /// A password stored as given (Letterboxd).
    Password {
        /// The password.
        password: SecretString,
    },
}

impl Credentials {
    /// The token an integration service presents to the provider, and its type.
    pub fn access_token(&self) -> Option<(&SecretString, &'static str)> {
        match self {
            Credentials::OAuth(tokens) => Some((&tokens.access_token, "Bearer")),
            Credentials::LastfmSession { session_key } => Some((session_key, "lastfm_session")),
            Credentials::UserToken { user_token } => Some((user_token, "Token")),
            Credentials::Password { .. } => None,
        }
    }

    /// When the access token expires, for OAuth tokens that say.
    pub fn expires_at(&self) -> Option<OffsetDateTime> {
        match self {
            Credentials::OAuth(tokens) => tokens.expires_at,
            _ => None,
        }
    }
}

/// What a successful connect yields: the credentials and the account they belong to.
#[derive(Clone, Debug)]
pub struct Grant {
    /// The secret part.
    pub credentials: Credentials,
    /// The remote account.
    pub account: RemoteAccount,
}

/// Why a stored credential could not be read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the stored credentials of {provider} are not in the expected shape")]
pub struct MalformedCredentials {
    /// The provider.
    pub provider: ProviderId,
}

impl Grant {
    /// The JSON stored (encrypted) under the provider's storage key. Holds plaintext secrets:
    /// it goes straight to the cipher.
    pub fn to_stored_json(&self) -> Value {
        let mut map = Map::new();
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(value) = value {
                map.insert(name.to_owned(), value);
            }
        };
        let secret = |s: &SecretString| Value::String(s.expose_secret().to_owned());
        match &self.credentials {
            Credentials::OAuth(tokens) => {
                put("access_token", Some(secret(&tokens.access_token)));
                put("refresh_token", tokens.refresh_token.as_ref().map(secret));
                put(
                    "expires_at",
                    tokens
                        .expires_at
                        .and_then(|t| t.format(&Rfc3339).ok())
                        .map(Value::String),
                );
                put("scope", tokens.scope.clone().map(Value::String));
            }
            Credentials::LastfmSession { session_key } => {
                put("session_key", Some(secret(session_key)));
            }
            Credentials::UserToken { user_token } => put("user_token", Some(secret(user_token))),
            Credentials::Password { password } => put("password", Some(secret(password))),
        }
        let account = &self.account;
        put(
            "user_id",
            account.id.as_ref().map(|id| match id {
                RemoteUserId::Number(n) => Value::from(*n),
                RemoteUserId::Text(t) => Value::String(t.clone()),
            }),
        );
        put("user_slug", account.slug.clone().map(Value::String));
        put("username", account.username.clone().map(Value::String));
        put("email", account.email.clone().map(Value::String));
        Value::Object(map)
    }

    /// Reads back what [`Self::to_stored_json`] wrote for `provider`.
    ///
    /// # Errors
    /// [`MalformedCredentials`] when a required field is missing or mistyped (the message
    /// never quotes the value).
    pub fn from_stored_json(
        provider: ProviderId,
        value: &Value,
    ) -> Result<Self, MalformedCredentials> {
        let bad = || MalformedCredentials { provider };
        let object = value.as_object().ok_or_else(bad)?;
        let text = |name: &str| -> Result<Option<String>, MalformedCredentials> {
            match object.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(bad()),
            }
        };
        let secret = |name: &str| -> Result<SecretString, MalformedCredentials> {
            text(name)?
                .filter(|s| !s.is_empty())
                .map(SecretString::from)
                .ok_or_else(bad)
        };
        let credentials = match provider.spec().auth {
            AuthMethod::AuthorizationCode { .. } | AuthMethod::PasswordGrant => {
                let expires_at = text("expires_at")?
                    .map(|t| OffsetDateTime::parse(&t, &Rfc3339).map_err(|_| bad()))
                    .transpose()?;
                Credentials::OAuth(TokenSet {
                    access_token: secret("access_token")?,
                    refresh_token: text("refresh_token")?
                        .filter(|s| !s.is_empty())
                        .map(SecretString::from),
                    expires_at,
                    scope: text("scope")?,
                })
            }
            AuthMethod::LastfmWebAuth => Credentials::LastfmSession {
                session_key: secret("session_key")?,
            },
            AuthMethod::UserToken => Credentials::UserToken {
                user_token: secret("user_token")?,
            },
            AuthMethod::StoredPassword => Credentials::Password {
                password: secret("password")?,
            },
        };
        let id = match object.get("user_id") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => Some(RemoteUserId::Number(n.as_i64().ok_or_else(bad)?)),
            Some(Value::String(s)) => Some(RemoteUserId::Text(s.clone())),
            Some(_) => return Err(bad()),
        };
        Ok(Grant {
            credentials,
            account: RemoteAccount {
                id,
                username: text("username")?,
                slug: text("user_slug")?,
                email: text("email")?,
            },
        })
    }
}
