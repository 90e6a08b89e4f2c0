//! The `integrations:` configuration section: per provider, the client credentials, redirect
//! URIs and endpoint URLs; the HTTP timeouts, the refresh skew and the authorization TTL.
//! Environment variables: `USER_SETTINGS_{PROVIDER}_{FIELD}` (see [`env_path`]).

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Every provider's name in variables (`TRAKT`) and in the configuration (`trakt`).
const PROVIDERS: [(&str, &str); 9] = [
    ("TRAKT", "trakt"),
    ("LASTFM", "lastfm"),
    ("LISTENBRAINZ", "listenbrainz"),
    ("SIMKL", "simkl"),
    ("LETTERBOXD", "letterboxd"),
    ("ANILIST", "anilist"),
    ("MYANIMELIST", "myanimelist"),
    ("KITSU", "kitsu"),
    ("SPOTIFY", "spotify"),
];

/// Per-provider fields settable from the environment.
const FIELDS: [(&str, &str); 8] = [
    ("CLIENT_ID", "client_id"),
    ("CLIENT_SECRET", "client_secret"),
    ("REDIRECT_URI", "redirect_uri"),
    ("AUTH_URL", "auth_url"),
    ("TOKEN_URL", "token_url"),
    ("API_URL", "api_url"),
    ("REVOKE_URL", "revoke_url"),
    ("ENABLED", "enabled"),
];

/// Section-wide variables.
const GLOBALS: [(&str, &str); 4] = [
    ("USER_SETTINGS_INTEGRATIONS_HTTP_TIMEOUT", "http_timeout"),
    (
        "USER_SETTINGS_INTEGRATIONS_CONNECT_TIMEOUT",
        "connect_timeout",
    ),
    (
        "USER_SETTINGS_INTEGRATIONS_TOKEN_REFRESH_SKEW",
        "token_refresh_skew",
    ),
    ("USER_SETTINGS_INTEGRATIONS_STATE_TTL", "state_ttl"),
];

/// The configuration path (under `user_settings.`) an environment variable sets, if it is an
/// integrations variable: `USER_SETTINGS_TRAKT_CLIENT_ID` → `integrations.trakt.client_id`.
/// Last.fm's names are also accepted: `USER_SETTINGS_LASTFM_API_KEY` (the client id) and
/// `USER_SETTINGS_LASTFM_SHARED_SECRET` (the client secret).
pub fn env_path(variable: &str) -> Option<String> {
    let variable = variable.to_ascii_uppercase();
    if let Some((_, field)) = GLOBALS.iter().find(|(name, _)| *name == variable) {
        return Some(format!("integrations.{field}"));
    }
    let rest = variable.strip_prefix("USER_SETTINGS_")?;
    PROVIDERS.iter().find_map(|(upper, lower)| {
        let field = rest.strip_prefix(upper)?.strip_prefix('_')?;
        let path = FIELDS
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, path)| *path)
            .or(match (*lower, field) {
                ("lastfm", "API_KEY") => Some("client_id"),
                ("lastfm", "SHARED_SECRET") => Some("client_secret"),
                _ => None,
            })?;
        Some(format!("integrations.{lower}.{path}"))
    })
}

/// The `integrations:` section.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntegrationsConfig {
    /// Longest a whole provider call may take; past it the API answers 504.
    #[serde(with = "duration")]
    pub http_timeout: Duration,
    /// Longest the connection to a provider may take.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// A token expiring sooner than this is refreshed before it is handed out.
    #[serde(with = "duration")]
    pub token_refresh_skew: Duration,
    /// How long an authorization (`state`) stays valid.
    #[serde(with = "duration")]
    pub state_ttl: Duration,
    /// Trakt (OAuth 2.0).
    pub trakt: ProviderConfig,
    /// Last.fm (API key and shared secret as client id and secret).
    pub lastfm: ProviderConfig,
    /// ListenBrainz (user tokens; nothing to configure but `api_url`).
    pub listenbrainz: ProviderConfig,
    /// Simkl (OAuth 2.0).
    pub simkl: ProviderConfig,
    /// Letterboxd (credentials stored as given; only `enabled`).
    pub letterboxd: ProviderConfig,
    /// AniList (OAuth 2.0).
    pub anilist: ProviderConfig,
    /// MyAnimeList (OAuth 2.0 with PKCE; the secret is optional).
    pub myanimelist: ProviderConfig,
    /// Kitsu (password grant).
    pub kitsu: ProviderConfig,
    /// Spotify (OAuth 2.0 with PKCE).
    pub spotify: ProviderConfig,
}

impl Default for IntegrationsConfig {
    fn default() -> Self {
        Self {
            http_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            token_refresh_skew: Duration::from_secs(300),
            state_ttl: Duration::from_secs(600),
            trakt: ProviderConfig::default(),
            lastfm: ProviderConfig::default(),
            listenbrainz: ProviderConfig::default(),
            simkl: ProviderConfig::default(),
            letterboxd: ProviderConfig::default(),
            anilist: ProviderConfig::default(),
            myanimelist: ProviderConfig::default(),
            kitsu: ProviderConfig::default(),
            spotify: ProviderConfig::default(),
        }
    }
}

/// One provider. Unset URLs are the provider's production endpoints.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderConfig {
    /// `false` lists the provider as not configured.
    pub enabled: bool,
    /// OAuth client id (Last.fm: API key).
    #[serde(deserialize_with = "lenient::string")]
    pub client_id: Option<String>,
    /// OAuth client secret (Last.fm: shared secret).
    #[serde(serialize_with = "redacted", deserialize_with = "lenient::secret")]
    pub client_secret: Option<SecretString>,
    /// The default redirect URI (where the provider sends the browser back).
    pub redirect_uri: Option<String>,
    /// Further redirect URIs a client may ask for with `?redirect_uri=`.
    pub extra_redirect_uris: Vec<String>,
    /// Authorization endpoint.
    pub auth_url: Option<String>,
    /// Token endpoint.
    pub token_url: Option<String>,
    /// API base URL.
    pub api_url: Option<String>,
    /// Revocation endpoint.
    pub revoke_url: Option<String>,
    /// Scopes to request (the provider's defaults when unset).
    pub scopes: Option<Vec<String>>,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            client_id: None,
            client_secret: None,
            redirect_uri: None,
            extra_redirect_uris: Vec::new(),
            auth_url: None,
            token_url: None,
            api_url: None,
            revoke_url: None,
            scopes: None,
        }
    }
}

fn redacted<S: Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_str("[REDACTED]"),
        None => s.serialize_none(),
    }
}

/// Environment values are typed by their look (`12345` is a number): ids and secrets that
/// happen to be all digits are still text.
mod lenient {
    use super::*;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lenient {
        Text(String),
        Unsigned(u64),
        Signed(i64),
    }

    fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Lenient>::deserialize(d)?.map(|t| match t {
            Lenient::Text(s) => s,
            Lenient::Unsigned(n) => n.to_string(),
            Lenient::Signed(n) => n.to_string(),
        }))
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        text(d)
    }

    pub fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
        Ok(text(d)?.map(SecretString::from))
    }
}

/// Durations as text: `250ms`, `5s`, `5m`, `1h`.
mod duration {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Seconds(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Seconds(s) => Ok(Duration::from_secs(s)),
            Raw::Text(t) => humantime::parse_duration(t.trim()).map_err(|e| {
                serde::de::Error::custom(format!("{t:?} is not a duration such as 10s or 5m: {e}"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_variables_map_to_their_fields() {
        assert_eq!(
            env_path("USER_SETTINGS_TRAKT_CLIENT_ID").as_deref(),
            Some("integrations.trakt.client_id")
        );
        assert_eq!(
            env_path("USER_SETTINGS_MYANIMELIST_REDIRECT_URI").as_deref(),
            Some("integrations.myanimelist.redirect_uri")
        );
        assert_eq!(
            env_path("USER_SETTINGS_LASTFM_SHARED_SECRET").as_deref(),
            Some("integrations.lastfm.client_secret")
        );
        assert_eq!(
            env_path("USER_SETTINGS_INTEGRATIONS_TOKEN_REFRESH_SKEW").as_deref(),
            Some("integrations.token_refresh_skew")
        );
    }

    #[test]
    fn other_variables_are_not_integrations_variables() {
        for var in [
            "USER_SETTINGS_CACHE_TTL",
            "USER_SETTINGS_TRAKT_PASSWORD",
            "USER_SETTINGS_SPOTIFY_API_KEY",
            "USER_SETTINGS_TRAKTX_CLIENT_ID",
            "DATABASE_URL",
        ] {
            assert_eq!(env_path(var), None, "{var}");
        }
    }
}
