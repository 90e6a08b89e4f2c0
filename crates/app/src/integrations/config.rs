//! The `integrations:` configuration section: per provider, the client credentials, redirect
//! URIs and endpoint URLs; the HTTP timeouts, the refresh skew and the authorization TTL.
//! Environment variables: `USER_SETTINGS_{PROVIDER}_{FIELD}` (see [`env_path`]).

use std::{collections::BTreeMap, time::Duration};

use adapter_providers::{GatewayConfigError, ProviderSettings};
use domain::integrations::ProviderId;
use serde::{
    Deserialize, Deserializer, Serialize, Serializer,
    de::{MapAccess, Visitor},
    ser::SerializeMap,
};

use crate::config::{ConfigError, PositiveDuration, duration};

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

/// The environment variable(s) that set a configuration path (under `user_settings.`): the
/// inverse of [`env_path`], to name the source of a bad value.
pub fn env_variable(path: &str) -> Option<String> {
    if let Some((name, _)) = GLOBALS
        .iter()
        .find(|(_, field)| path.strip_prefix("integrations.") == Some(*field))
    {
        return Some((*name).to_owned());
    }
    let (provider, field) = path.strip_prefix("integrations.")?.split_once('.')?;
    let provider = ProviderId::parse(provider)?;
    let (name, _) = FIELDS.iter().find(|(_, f)| *f == field)?;
    let upper = provider.as_str().to_ascii_uppercase();
    let alias = match (provider, field) {
        (ProviderId::Lastfm, "client_id") => " or USER_SETTINGS_LASTFM_API_KEY",
        (ProviderId::Lastfm, "client_secret") => " or USER_SETTINGS_LASTFM_SHARED_SECRET",
        _ => "",
    };
    Some(format!("USER_SETTINGS_{upper}_{name}{alias}"))
}

/// The longest `state_ttl` accepted: an authorization is a browser round trip, and a
/// pending one holds a sealed PKCE verifier.
pub const MAX_STATE_TTL: Duration = Duration::from_secs(3600);

/// The `integrations:` section: the section-wide durations beside one entry per provider,
/// keyed by its slug (`trakt:`, `lastfm:`). Every provider has an entry (its defaults unless
/// configured), so adding a provider to the catalogue is all it takes to configure it.
#[derive(Clone, Debug)]
pub struct IntegrationsConfig {
    /// Longest a whole provider call may take; past it the API answers 504.
    pub http_timeout: PositiveDuration,
    /// Longest the connection to a provider may take.
    pub connect_timeout: PositiveDuration,
    /// A token expiring sooner than this is refreshed before it is handed out.
    pub token_refresh_skew: Duration,
    /// How long an authorization (`state`) stays valid (at most [`MAX_STATE_TTL`]).
    pub state_ttl: PositiveDuration,
    /// Per provider: credentials, redirect URIs and endpoints (unset URLs are the provider's
    /// production endpoints; Last.fm's API key and shared secret are its client id and
    /// secret).
    pub providers: BTreeMap<ProviderId, ProviderSettings>,
}

impl Default for IntegrationsConfig {
    fn default() -> Self {
        Self {
            http_timeout: PositiveDuration::new(Duration::from_secs(10))
                .unwrap_or(PositiveDuration::SECOND),
            connect_timeout: PositiveDuration::new(Duration::from_secs(3))
                .unwrap_or(PositiveDuration::SECOND),
            token_refresh_skew: Duration::from_secs(300),
            state_ttl: PositiveDuration::new(Duration::from_secs(600))
                .unwrap_or(PositiveDuration::SECOND),
            providers: ProviderId::ALL
                .into_iter()
                .map(|id| (id, ProviderSettings::default()))
                .collect(),
        }
    }
}

impl IntegrationsConfig {
    /// One provider's entry, to adjust it.
    pub fn provider_mut(&mut self, id: ProviderId) -> &mut ProviderSettings {
        self.providers.entry(id).or_default()
    }

    /// The bound on `state_ttl`, and every provider URL as the gateway will read it.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the field.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.state_ttl.get() > MAX_STATE_TTL {
            return Err(ConfigError::Invalid {
                field:
                    "user_settings.integrations.state_ttl (USER_SETTINGS_INTEGRATIONS_STATE_TTL)"
                        .into(),
                message: format!(
                    "must be at most {}",
                    humantime::format_duration(MAX_STATE_TTL)
                ),
            });
        }
        for (id, settings) in &self.providers {
            settings.validate(*id).map_err(|error| match error {
                GatewayConfigError::InvalidUrl {
                    provider,
                    field,
                    message,
                } => ConfigError::Invalid {
                    field: format!("user_settings.integrations.{provider}.{field}"),
                    message,
                },
                other => ConfigError::Load(other.to_string()),
            })?;
        }
        Ok(())
    }
}

/// A plain duration as the configuration writes it.
#[derive(Serialize, Deserialize)]
struct Text(#[serde(with = "duration")] Duration);

impl Serialize for IntegrationsConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(4 + self.providers.len()))?;
        map.serialize_entry("http_timeout", &self.http_timeout)?;
        map.serialize_entry("connect_timeout", &self.connect_timeout)?;
        map.serialize_entry("token_refresh_skew", &Text(self.token_refresh_skew))?;
        map.serialize_entry("state_ttl", &self.state_ttl)?;
        for (id, settings) in &self.providers {
            map.serialize_entry(id.as_str(), settings)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for IntegrationsConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(SectionVisitor)
    }
}

struct SectionVisitor;

impl<'de> Visitor<'de> for SectionVisitor {
    type Value = IntegrationsConfig;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the integrations section")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut config = IntegrationsConfig::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "http_timeout" => config.http_timeout = map.next_value()?,
                "connect_timeout" => config.connect_timeout = map.next_value()?,
                "token_refresh_skew" => config.token_refresh_skew = map.next_value::<Text>()?.0,
                "state_ttl" => config.state_ttl = map.next_value()?,
                name => {
                    let Some(id) = ProviderId::parse(name) else {
                        let providers = ProviderId::ALL.map(ProviderId::as_str).join(", ");
                        return Err(serde::de::Error::custom(format!(
                            "unknown field `{name}`: neither a setting of the section nor a \
                             provider ({providers})"
                        )));
                    };
                    config.providers.insert(id, map.next_value()?);
                }
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::{load, refusal};

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
        for ttl in ["3601s", "0"] {
            let message = refusal(
                &format!("user_settings: {{integrations: {{state_ttl: {ttl}}}}}"),
                &[],
            );
            assert!(
                message.contains("user_settings.integrations.state_ttl"),
                "{message}"
            );
        }
    }

    #[test]
    fn zero_provider_timeouts_are_refused_at_load_naming_the_field() {
        for (variable, field) in [
            ("USER_SETTINGS_INTEGRATIONS_HTTP_TIMEOUT", "http_timeout"),
            (
                "USER_SETTINGS_INTEGRATIONS_CONNECT_TIMEOUT",
                "connect_timeout",
            ),
        ] {
            let message = refusal("", &[(variable, "0")]);
            assert!(
                message.contains(&format!(
                    "user_settings.integrations.{field} (environment variable {variable})"
                )),
                "{message}"
            );
        }
    }

    #[test]
    fn a_provider_entry_is_read_from_the_file_and_the_environment() {
        let config = load(
            "user_settings: {integrations: {trakt: {client_id: from-file, \
             redirect_uri: 'https://app.example.com/cb'}, kitsu: {enabled: false}}}",
            &[
                ("USER_SETTINGS_TRAKT_CLIENT_ID", "from-env"),
                ("USER_SETTINGS_LASTFM_API_KEY", "1234567890"),
                (
                    "USER_SETTINGS_SPOTIFY_TOKEN_URL",
                    "https://accounts.example.com/token",
                ),
            ],
        )
        .unwrap();
        let providers = &config.integrations.providers;
        let trakt = &providers[&ProviderId::Trakt];
        assert_eq!(trakt.client_id.as_deref(), Some("from-env"));
        assert_eq!(
            trakt.redirect_uri.as_deref(),
            Some("https://app.example.com/cb")
        );
        assert_eq!(
            providers[&ProviderId::Lastfm].client_id.as_deref(),
            Some("1234567890")
        );
        assert_eq!(
            providers[&ProviderId::Spotify].token_url.as_deref(),
            Some("https://accounts.example.com/token")
        );
        assert!(!providers[&ProviderId::Kitsu].enabled);
        assert!(providers[&ProviderId::Simkl].enabled);
        assert_eq!(providers.len(), ProviderId::ALL.len());
    }

    #[test]
    fn an_unknown_provider_is_refused_naming_the_field() {
        let message = refusal(
            "user_settings: {integrations: {traktx: {client_id: x}}}",
            &[],
        );
        assert!(message.contains("user_settings.integrations"), "{message}");
        assert!(message.contains("`traktx`"), "{message}");
    }

    #[test]
    fn an_unknown_provider_field_is_refused_naming_the_provider() {
        let message = refusal("user_settings: {integrations: {trakt: {password: x}}}", &[]);
        assert!(
            message.contains("user_settings.integrations.trakt"),
            "{message}"
        );
        assert!(message.contains("password"), "{message}");
    }

    #[test]
    fn a_bad_provider_url_is_refused_at_load_naming_the_field() {
        let message = refusal(
            "",
            &[("USER_SETTINGS_SIMKL_TOKEN_URL", "ftp://simkl.example/token")],
        );
        assert!(
            message.contains("user_settings.integrations.simkl.token_url"),
            "{message}"
        );
    }

    fn gateway_with_redirects(
        extra: &[&str],
    ) -> Result<adapter_providers::HttpProviderGateway, adapter_providers::GatewayConfigError> {
        let mut config = IntegrationsConfig::default();
        let trakt = config.provider_mut(ProviderId::Trakt);
        trakt.client_id = Some("id".into());
        trakt.client_secret = Some("secret".to_owned().into());
        trakt.redirect_uri = Some("https://app.example.com/integrations/callback".into());
        trakt.extra_redirect_uris = extra.iter().map(|u| (*u).to_owned()).collect();
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
