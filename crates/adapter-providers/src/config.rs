//! Configuration of the gateway: per provider, the client credentials, redirect URIs and
//! endpoint URLs (defaults are the providers' production endpoints; tests point them at a
//! loopback fake), and the HTTP timeouts.

use std::{collections::BTreeMap, time::Duration};

use domain::integrations::{AuthMethod, ClientRequirement, ProviderId};
use reqwest::Url;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::endpoints::{DefaultEndpoints, default_endpoints};

/// What the deployment configured for one provider: the `integrations.{provider}` section of
/// the service's configuration, read as is (unset URLs are the provider's production
/// endpoints). Environment values are typed by their look, so ids and secrets that happen to
/// be all digits are still read as text.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProviderSettings {
    /// Off: the provider is listed as not configured whatever else is set.
    pub enabled: bool,
    /// OAuth client id (Last.fm: the API key).
    #[serde(deserialize_with = "text::string")]
    pub client_id: Option<String>,
    /// OAuth client secret (Last.fm: the shared secret).
    #[serde(serialize_with = "text::redacted", deserialize_with = "text::secret")]
    pub client_secret: Option<SecretString>,
    /// The default redirect URI (where the provider sends the browser back).
    pub redirect_uri: Option<String>,
    /// Further redirect URIs a client may ask for with `?redirect_uri=`.
    pub extra_redirect_uris: Vec<String>,
    /// Authorization endpoint (where the browser goes).
    pub auth_url: Option<String>,
    /// Token endpoint.
    pub token_url: Option<String>,
    /// API base URL (account look-ups, Last.fm's API endpoint).
    pub api_url: Option<String>,
    /// Revocation endpoint (RFC 7009), for providers that offer one.
    pub revoke_url: Option<String>,
    /// Scopes requested (the provider's defaults when `None`).
    pub scopes: Option<Vec<String>>,
}

impl Default for ProviderSettings {
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

impl ProviderSettings {
    /// Checks every URL as the gateway will read it, so a bad one is refused when the
    /// configuration is loaded rather than when the gateway is built.
    ///
    /// # Errors
    /// The first bad URL, naming the provider and the field.
    pub fn validate(&self, id: ProviderId) -> Result<(), GatewayConfigError> {
        ResolvedProvider::resolve(id, self).map(drop)
    }

    /// The redirect URIs a client may ask for; the first is the default.
    fn redirect_uris(&self) -> impl Iterator<Item = &String> {
        self.redirect_uri.iter().chain(&self.extra_redirect_uris)
    }
}

/// The whole gateway configuration.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Longest a whole provider call may take (connect, send, receive): past it, 504.
    pub timeout: Duration,
    /// Longest the TCP/TLS connection may take.
    pub connect_timeout: Duration,
    /// `User-Agent` sent to providers (some, like MusicBrainz-family APIs, ask for one).
    pub user_agent: String,
    /// Per provider; a provider absent here has only its defaults (usually "not configured").
    pub providers: BTreeMap<ProviderId, ProviderSettings>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            user_agent: concat!("user-settings/", env!("CARGO_PKG_VERSION")).to_owned(),
            providers: BTreeMap::new(),
        }
    }
}

/// Why the gateway could not be built: names the provider and the field.
#[derive(Debug, thiserror::Error)]
pub enum GatewayConfigError {
    /// A URL does not parse or is not http(s).
    #[error("integrations.{provider}.{field}: {message}")]
    InvalidUrl {
        /// The provider.
        provider: ProviderId,
        /// The field (`auth_url`, `redirect_uri`, ...).
        field: &'static str,
        /// What is wrong (never a secret: URLs here carry none).
        message: String,
    },
    /// The HTTP client could not be built.
    #[error("the HTTP client for providers could not be built: {0}")]
    Client(String),
}

/// A provider's settings, resolved: defaults applied, URLs parsed.
#[derive(Clone, Debug)]
pub(crate) struct ResolvedProvider {
    pub id: ProviderId,
    pub enabled: bool,
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub redirect_uris: Vec<Url>,
    pub auth_url: Option<Url>,
    pub token_url: Option<Url>,
    pub api_url: Option<Url>,
    pub revoke_url: Option<Url>,
    pub scopes: Vec<String>,
}

impl ResolvedProvider {
    pub(crate) fn resolve(
        id: ProviderId,
        settings: &ProviderSettings,
    ) -> Result<Self, GatewayConfigError> {
        let DefaultEndpoints {
            auth,
            token,
            api,
            revoke,
            scopes,
        } = default_endpoints(id);
        let url = |field: &'static str, configured: &Option<String>, default: Option<&str>| {
            configured
                .as_deref()
                .filter(|u| !u.trim().is_empty())
                .or(default)
                .map(|u| parse_url(id, field, u))
                .transpose()
        };
        Ok(Self {
            id,
            enabled: settings.enabled,
            client_id: settings.client_id.clone().filter(|c| !c.trim().is_empty()),
            client_secret: settings.client_secret.clone(),
            redirect_uris: settings
                .redirect_uris()
                .map(|u| parse_redirect_uri(id, u))
                .collect::<Result<_, _>>()?,
            auth_url: url("auth_url", &settings.auth_url, auth)?,
            token_url: url("token_url", &settings.token_url, token)?,
            api_url: url("api_url", &settings.api_url, api)?,
            revoke_url: url("revoke_url", &settings.revoke_url, revoke)?,
            scopes: settings
                .scopes
                .clone()
                .unwrap_or_else(|| scopes.iter().map(|s| (*s).to_owned()).collect()),
        })
    }

    /// Everything the provider's flow needs is configured.
    pub(crate) fn is_configured(&self) -> bool {
        use secrecy::ExposeSecret;
        let spec = self.id.spec();
        let has_id = self.client_id.is_some();
        let has_secret = self
            .client_secret
            .as_ref()
            .is_some_and(|s| !s.expose_secret().is_empty());
        let client = match spec.client {
            ClientRequirement::None => true,
            ClientRequirement::ClientId => has_id,
            ClientRequirement::ClientIdAndSecret => has_id && has_secret,
        };
        let endpoints = match spec.auth {
            AuthMethod::AuthorizationCode { .. } => {
                self.auth_url.is_some() && self.token_url.is_some() && self.api_url.is_some()
            }
            AuthMethod::PasswordGrant => self.token_url.is_some() && self.api_url.is_some(),
            AuthMethod::LastfmWebAuth => self.auth_url.is_some() && self.api_url.is_some(),
            AuthMethod::UserToken => self.api_url.is_some(),
            AuthMethod::StoredPassword => true,
        };
        let redirect = !spec.auth.uses_redirect() || !self.redirect_uris.is_empty();
        self.enabled && client && endpoints && redirect
    }
}

fn parse_url(
    provider: ProviderId,
    field: &'static str,
    raw: &str,
) -> Result<Url, GatewayConfigError> {
    let invalid = |message: String| GatewayConfigError::InvalidUrl {
        provider,
        field,
        message,
    };
    let url = Url::parse(raw.trim()).map_err(|e| invalid(format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must be an http or https URL".into()));
    }
    Ok(url)
}

/// Schemes that run or read something locally instead of handing the code to an app.
const REFUSED_REDIRECT_SCHEMES: [&str; 6] =
    ["javascript", "data", "file", "vbscript", "blob", "about"];

/// A redirect URI: http(s) like the endpoints, or a native app's private-use scheme (RFC 8252
/// §7.1: `com.example.app:/callback`, which the RFC recommends, or a plain `myapp://callback`).
/// The URL parser already holds the scheme to RFC 3986's syntax and lowercases it.
fn parse_redirect_uri(provider: ProviderId, raw: &str) -> Result<Url, GatewayConfigError> {
    let invalid = |message: String| GatewayConfigError::InvalidUrl {
        provider,
        field: "redirect_uri",
        message,
    };
    let url = Url::parse(raw.trim()).map_err(|e| invalid(format!("not a URL ({e})")))?;
    if REFUSED_REDIRECT_SCHEMES.contains(&url.scheme()) {
        return Err(invalid(format!(
            "the {} scheme cannot be a redirect URI (use https, http, or an app's private-use scheme)",
            url.scheme()
        )));
    }
    Ok(url)
}

/// Values as text whatever their look (`12345`), and secrets never serialized.
mod text {
    use secrecy::SecretString;
    use serde::{Deserialize, Deserializer, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Lenient {
        Text(String),
        Unsigned(u64),
        Signed(i64),
        Flag(bool),
    }

    pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Lenient>::deserialize(d)?.map(|t| match t {
            Lenient::Text(s) => s,
            Lenient::Unsigned(n) => n.to_string(),
            Lenient::Signed(n) => n.to_string(),
            Lenient::Flag(b) => b.to_string(),
        }))
    }

    pub fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
        Ok(string(d)?.map(SecretString::from))
    }

    pub fn redacted<S: Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(_) => s.serialize_str("[REDACTED]"),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirect(raw: &str) -> Result<Url, GatewayConfigError> {
        parse_redirect_uri(ProviderId::Trakt, raw)
    }

    #[test]
    fn private_use_scheme_redirect_uris_are_accepted() {
        for raw in [
            "com.example.app:/oauth2redirect",
            "com.example.app://callback",
            "myapp://integrations/callback",
            "my-app+v2:/cb",
        ] {
            assert!(redirect(raw).is_ok(), "{raw}");
        }
    }

    #[test]
    fn http_and_https_redirect_uris_are_still_accepted() {
        for raw in [
            "https://app.example.com/integrations/callback",
            "http://127.0.0.1:8400/callback",
        ] {
            assert!(redirect(raw).is_ok(), "{raw}");
        }
    }

    #[test]
    fn script_and_local_scheme_redirect_uris_are_refused_by_field() {
        for raw in [
            "javascript:alert(1)",
            "JavaScript://x/%0aalert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "vbscript:msgbox",
            "blob:https://app.example.com/1",
            "about:blank",
        ] {
            let error = redirect(raw).unwrap_err().to_string();
            assert!(
                error.contains("redirect_uri") && error.contains("scheme"),
                "{raw}: {error}"
            );
        }
    }

    #[test]
    fn a_redirect_uri_without_a_valid_scheme_is_refused() {
        for raw in ["callback", "1app://cb", "my_app://cb", "://cb"] {
            assert!(redirect(raw).is_err(), "{raw}");
        }
    }

    #[test]
    fn endpoint_urls_stay_http_only() {
        assert!(parse_url(ProviderId::Trakt, "token_url", "myapp://token").is_err());
    }
}
