//! The `integrations:` configuration section: per provider, the client credentials, redirect
//! URIs and endpoint URLs; the HTTP timeouts, the refresh skew and the authorization TTL.
//! Environment variables: `USER_SETTINGS_{PROVIDER}_{FIELD}` (see [`env_path`]).

use std::time::Duration;

use domain::integrations::ProviderId;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::config::{duration, lenient, redacted};

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
    // Variables name a provider by its slug in capitals (`TRAKT`, `MYANIMELIST`).
    ProviderId::ALL.into_iter().find_map(|provider| {
        let lower = provider.as_str();
        let field = rest
            .strip_prefix(&lower.to_ascii_uppercase())?
            .strip_prefix('_')?;
        let path = FIELDS
            .iter()
            .find(|(name, _)| *name == field)
            .map(|(_, path)| *path)
            .or(match (provider, field) {
                (ProviderId::Lastfm, "API_KEY") => Some("client_id"),
                (ProviderId::Lastfm, "SHARED_SECRET") => Some("client_secret"),
                _ => None,
            })?;
        Some(format!("integrations.{lower}.{path}"))
    })
}

/// The longest `state_ttl` accepted: an authorization is a browser round trip, and a
/// pending one holds a sealed PKCE verifier.
pub const MAX_STATE_TTL: Duration = Duration::from_secs(3600);

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
    /// How long an authorization (`state`) stays valid (at most [`MAX_STATE_TTL`]).
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

impl IntegrationsConfig {
    /// Checks the durations.
    ///
    /// # Errors
    /// A message naming the field.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (field, value) in [
            ("http_timeout", self.http_timeout),
            ("connect_timeout", self.connect_timeout),
            ("state_ttl", self.state_ttl),
        ] {
            anyhow::ensure!(
                !value.is_zero(),
                "invalid configuration: user_settings.integrations.{field}: must be more than 0"
            );
        }
        anyhow::ensure!(
            self.state_ttl <= MAX_STATE_TTL,
            "invalid configuration: user_settings.integrations.state_ttl: must be at most {}",
            humantime::format_duration(MAX_STATE_TTL)
        );
        Ok(())
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
    fn the_defaults_are_valid() {
        assert!(IntegrationsConfig::default().validate().is_ok());
    }

    #[test]
    fn a_state_ttl_above_an_hour_or_of_zero_is_refused_by_name() {
        for ttl in [Duration::from_secs(3601), Duration::ZERO] {
            let config = IntegrationsConfig {
                state_ttl: ttl,
                ..IntegrationsConfig::default()
            };
            let message = config.validate().unwrap_err().to_string();
            assert!(
                message.contains("user_settings.integrations.state_ttl"),
                "{message}"
            );
        }
    }

    fn gateway_with_redirects(
        extra: &[&str],
    ) -> Result<adapter_providers::HttpProviderGateway, adapter_providers::GatewayConfigError> {
        let mut config = IntegrationsConfig::default();
        config.trakt.client_id = Some("id".into());
        config.trakt.client_secret = Some("secret".to_owned().into());
        config.trakt.redirect_uri = Some("https://app.example.com/integrations/callback".into());
        config.trakt.extra_redirect_uris = extra.iter().map(|u| (*u).to_owned()).collect();
        adapter_providers::HttpProviderGateway::new(&super::super::gateway_config(&config))
    }

    #[test]
    fn native_app_redirect_uris_are_accepted() {
        for uri in [
            "myapp://integrations/callback",
            "com.example.app:/integrations/callback",
        ] {
            assert!(gateway_with_redirects(&[uri]).is_ok(), "{uri}");
        }
    }

    #[test]
    fn a_javascript_redirect_uri_is_refused_naming_the_field() {
        let error = gateway_with_redirects(&["javascript:alert(1)"])
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("integrations.trakt.redirect_uri"), "{error}");
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
