//! The provider catalogue: every external service the platform integrates with, how a
//! user connects it, where its credentials are stored, and whether it revokes tokens.
//!
//! Facts, not behaviour: the outbound adapter implements the flows; the use cases read this
//! table to know which flow applies and which keys to write. (Whether a token can be
//! refreshed follows from what the provider handed out: a refresh token or not.)

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// An external service a user can connect (`{provider}` in the routes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderId {
    /// Trakt (scrobbling, movies and shows).
    Trakt,
    /// Last.fm (scrobbling and music).
    Lastfm,
    /// ListenBrainz (scrobbling and music).
    Listenbrainz,
    /// Simkl (scrobbling).
    Simkl,
    /// Letterboxd (film diary).
    Letterboxd,
    /// AniList (anime tracking).
    Anilist,
    /// MyAnimeList (anime tracking).
    Myanimelist,
    /// Kitsu (anime tracking).
    Kitsu,
    /// Spotify (music).
    Spotify,
}

impl ProviderId {
    /// Every provider, in the order the API lists them.
    pub const ALL: [ProviderId; 9] = [
        ProviderId::Trakt,
        ProviderId::Lastfm,
        ProviderId::Listenbrainz,
        ProviderId::Simkl,
        ProviderId::Letterboxd,
        ProviderId::Anilist,
        ProviderId::Myanimelist,
        ProviderId::Kitsu,
        ProviderId::Spotify,
    ];

    /// The name used in routes, keys and configuration (`trakt`, `lastfm`, ...).
    pub fn as_str(self) -> &'static str {
        self.spec().slug
    }

    /// Parses a route segment.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }

    /// The catalogue entry.
    pub fn spec(self) -> &'static ProviderSpec {
        // The variants are declared in catalogue order (a unit test checks every entry's id).
        &CATALOGUE[self as usize]
    }

    /// The human-readable name (`Trakt`, `Last.fm`, ...).
    pub fn display_name(self) -> &'static str {
        self.spec().name
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProviderId {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s).ok_or(UnknownProvider)
    }
}

/// The name is not one of the catalogue's providers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("no such provider")]
pub struct UnknownProvider;

/// How the PKCE code challenge is derived from the verifier (RFC 7636 §4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum PkceMethod {
    /// The challenge is the verifier itself (the only method MyAnimeList accepts).
    #[serde(rename = "plain")]
    Plain,
    /// The challenge is BASE64URL(SHA-256(verifier)).
    #[serde(rename = "S256")]
    S256,
}

/// How a user proves to the provider that the account is theirs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuthMethod {
    /// OAuth 2.0 authorization code grant (RFC 6749 §4.1): the browser goes to the provider,
    /// comes back with a code, the service exchanges it. PKCE when `pkce` is set.
    AuthorizationCode {
        /// The PKCE method sent, when the provider supports PKCE.
        pkce: Option<PkceMethod>,
    },
    /// OAuth 2.0 resource owner password grant (RFC 6749 §4.3): the user types their
    /// credentials here once; only the tokens are kept.
    PasswordGrant,
    /// Last.fm web authentication: the browser comes back with a token, exchanged for a
    /// session key with the signed `auth.getSession` call.
    LastfmWebAuth,
    /// A token the user copies from their profile page, checked against the provider.
    UserToken,
    /// Username and password, stored encrypted as given: the provider has no public API to
    /// check them against.
    StoredPassword,
}

impl AuthMethod {
    /// Whether connecting starts with `GET .../authorize` (a browser round trip with `state`).
    pub fn uses_redirect(self) -> bool {
        matches!(
            self,
            AuthMethod::AuthorizationCode { .. } | AuthMethod::LastfmWebAuth
        )
    }

    /// The PKCE method, for authorization-code providers that support it.
    pub fn pkce(self) -> Option<PkceMethod> {
        match self {
            AuthMethod::AuthorizationCode { pkce } => pkce,
            _ => None,
        }
    }

    /// The name shown by the API (`authorization_code`, `password_grant`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::AuthorizationCode { .. } => "authorization_code",
            AuthMethod::PasswordGrant => "password_grant",
            AuthMethod::LastfmWebAuth => "lastfm_web_auth",
            AuthMethod::UserToken => "user_token",
            AuthMethod::StoredPassword => "username_password",
        }
    }
}

/// What the deployment must configure before users can connect a provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientRequirement {
    /// Nothing: the provider is usable as soon as it is enabled.
    None,
    /// An application (client) id and a redirect URI; the secret is optional.
    ClientId,
    /// An application id and secret (Last.fm: API key and shared secret), and for redirect
    /// flows a redirect URI.
    ClientIdAndSecret,
}

/// One entry of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ProviderSpec {
    /// The provider.
    #[serde(skip)]
    pub id: ProviderId,
    /// Route and configuration name.
    pub slug: &'static str,
    /// Human-readable name.
    pub name: &'static str,
    /// How the user connects.
    pub auth: AuthMethod,
    /// The encrypted setting holding the credentials (its storage key).
    pub storage_key: &'static str,
    /// Older names of the same credentials (the earlier `music.*` rows): read never, removed on
    /// disconnect so no stale copy outlives the connection.
    pub legacy_keys: &'static [&'static str],
    /// The per-service sync settings key, for services that have one.
    pub settings_key: Option<&'static str>,
    /// Whether the provider offers token revocation (the gateway calls it, best effort, on
    /// disconnect).
    pub revocation: bool,
    /// What the deployment must configure.
    pub client: ClientRequirement,
}

/// The catalogue, in [`ProviderId::ALL`] order (a unit test keeps the two aligned).
///
/// Last.fm and ListenBrainz were once stored twice (scrobbling and music): they are one
/// connection each, stored under the `scrobbling.*` key; the `music.*` names are legacy keys.
pub const CATALOGUE: [ProviderSpec; 9] = [
    ProviderSpec {
        id: ProviderId::Trakt,
        slug: "trakt",
        name: "Trakt",
        auth: AuthMethod::AuthorizationCode { pkce: None },
        storage_key: "scrobbling.trakt.oauth_tokens",
        legacy_keys: &[],
        settings_key: Some("scrobbling.trakt.settings"),
        revocation: true,
        client: ClientRequirement::ClientIdAndSecret,
    },
    ProviderSpec {
        id: ProviderId::Lastfm,
        slug: "lastfm",
        name: "Last.fm",
        auth: AuthMethod::LastfmWebAuth,
        storage_key: "scrobbling.lastfm.session",
        legacy_keys: &["music.lastfm.session"],
        settings_key: Some("scrobbling.lastfm.settings"),
        revocation: false,
        client: ClientRequirement::ClientIdAndSecret,
    },
    ProviderSpec {
        id: ProviderId::Listenbrainz,
        slug: "listenbrainz",
        name: "ListenBrainz",
        auth: AuthMethod::UserToken,
        storage_key: "scrobbling.listenbrainz.token",
        legacy_keys: &["music.listenbrainz.token"],
        settings_key: Some("scrobbling.listenbrainz.settings"),
        revocation: false,
        client: ClientRequirement::None,
    },
    ProviderSpec {
        id: ProviderId::Simkl,
        slug: "simkl",
        name: "Simkl",
        auth: AuthMethod::AuthorizationCode { pkce: None },
        storage_key: "scrobbling.simkl.oauth_tokens",
        legacy_keys: &[],
        settings_key: Some("scrobbling.simkl.settings"),
        revocation: false,
        client: ClientRequirement::ClientIdAndSecret,
    },
    ProviderSpec {
        id: ProviderId::Letterboxd,
        slug: "letterboxd",
        name: "Letterboxd",
        auth: AuthMethod::StoredPassword,
        storage_key: "scrobbling.letterboxd.credentials",
        legacy_keys: &[],
        settings_key: Some("scrobbling.letterboxd.settings"),
        revocation: false,
        client: ClientRequirement::None,
    },
    ProviderSpec {
        id: ProviderId::Anilist,
        slug: "anilist",
        name: "AniList",
        auth: AuthMethod::AuthorizationCode { pkce: None },
        storage_key: "anime.anilist.oauth_tokens",
        legacy_keys: &[],
        settings_key: None,
        revocation: false,
        client: ClientRequirement::ClientIdAndSecret,
    },
    ProviderSpec {
        id: ProviderId::Myanimelist,
        slug: "myanimelist",
        name: "MyAnimeList",
        auth: AuthMethod::AuthorizationCode {
            pkce: Some(PkceMethod::Plain),
        },
        storage_key: "anime.myanimelist.oauth_tokens",
        legacy_keys: &[],
        settings_key: None,
        revocation: false,
        client: ClientRequirement::ClientId,
    },
    ProviderSpec {
        id: ProviderId::Kitsu,
        slug: "kitsu",
        name: "Kitsu",
        auth: AuthMethod::PasswordGrant,
        storage_key: "anime.kitsu.oauth_tokens",
        legacy_keys: &[],
        settings_key: None,
        revocation: true,
        client: ClientRequirement::ClientIdAndSecret,
    },
    ProviderSpec {
        id: ProviderId::Spotify,
        slug: "spotify",
        name: "Spotify",
        auth: AuthMethod::AuthorizationCode {
            pkce: Some(PkceMethod::S256),
        },
        storage_key: "music.spotify.oauth_tokens",
        legacy_keys: &[],
        settings_key: None,
        revocation: false,
        client: ClientRequirement::ClientIdAndSecret,
    },
];

/// The key of the non-secret connection metadata (`integrations.{provider}.connection`).
pub fn metadata_key(provider: ProviderId) -> String {
    format!("integrations.{}.connection", provider.as_str())
}

/// The provider whose connection owns `key`: its credentials (storage key and legacy names),
/// its metadata, or the binding of its PKCE verifier. Such keys change only through
/// connect, refresh and disconnect, never through the generic settings API: a credential
/// written there was verified by no provider, and one deleted there was never revoked.
pub fn managing_provider(key: &str) -> Option<ProviderId> {
    ProviderId::ALL.into_iter().find(|&provider| {
        let spec = provider.spec();
        let own_row = key
            .strip_prefix("integrations.")
            .and_then(|rest| rest.strip_prefix(spec.slug))
            .is_some_and(|rest| rest == ".connection" || rest == ".pkce_verifier");
        own_row || key == spec.storage_key || spec.legacy_keys.contains(&key)
    })
}
