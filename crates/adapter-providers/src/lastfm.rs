//! Last.fm web authentication (not OAuth 2.0): the browser goes to `auth_url?api_key&cb`,
//! comes back to `cb` with `token`, and `auth.getSession` (signed with `api_sig`) turns the
//! token into a session key that never expires.

use domain::integrations::{ProviderError, RemoteAccount};
use md5::{Digest, Md5};
use reqwest::Url;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::{config::ResolvedProvider, http::ProviderHttp};

/// Parameters that are sent but never signed (Last.fm's rule).
const UNSIGNED: [&str; 2] = ["format", "callback"];

/// `api_sig`: the parameters sorted by name, each name followed by its value, all
/// concatenated, then the shared secret; the lowercase hex MD5 of that (UTF-8) string.
pub fn api_signature(params: &[(&str, &str)], shared_secret: &str) -> String {
    let mut signed: Vec<&(&str, &str)> = params
        .iter()
        .filter(|(name, _)| !UNSIGNED.contains(name))
        .collect();
    signed.sort_by(|a, b| a.0.cmp(b.0));
    let mut hasher = Md5::new();
    for (name, value) in signed {
        hasher.update(name.as_bytes());
        hasher.update(value.as_bytes());
    }
    hasher.update(shared_secret.as_bytes());
    hex::encode(hasher.finalize())
}

/// The URL the browser is sent to. Last.fm has no `state` parameter: the state travels in
/// the callback URL, which Last.fm calls back with `token` appended.
pub(crate) fn authorization_url(
    provider: &ResolvedProvider,
    redirect_uri: &Url,
    state: &str,
) -> Result<Url, ProviderError> {
    let api_key = provider
        .client_id
        .as_deref()
        .ok_or_else(|| ProviderError::Unknown(anyhow::anyhow!("api key is not configured")))?;
    let mut callback = redirect_uri.clone();
    callback.query_pairs_mut().append_pair("state", state);
    let mut url = provider
        .auth_url
        .clone()
        .ok_or_else(|| ProviderError::Unknown(anyhow::anyhow!("auth_url is not configured")))?;
    url.query_pairs_mut()
        .append_pair("api_key", api_key)
        .append_pair("cb", callback.as_str());
    Ok(url)
}

/// `auth.getSession`: the session key and the account name.
pub(crate) async fn get_session(
    http: &ProviderHttp,
    provider: &ResolvedProvider,
    token: &SecretString,
) -> Result<(SecretString, RemoteAccount), ProviderError> {
    let missing = |what: &str| ProviderError::Unknown(anyhow::anyhow!("{what} is not configured"));
    let api_key = provider
        .client_id
        .as_deref()
        .ok_or_else(|| missing("api key"))?;
    let secret = provider
        .client_secret
        .as_ref()
        .ok_or_else(|| missing("shared secret"))?;
    let api = provider.api_url.clone().ok_or_else(|| missing("api_url"))?;
    let params = [
        ("method", "auth.getSession"),
        ("api_key", api_key),
        ("token", token.expose_secret()),
    ];
    let signature = api_signature(&params, secret.expose_secret());
    let request = http
        .client()
        .get(api)
        .query(&params)
        .query(&[("api_sig", signature.as_str()), ("format", "json")]);
    let (status, body) = http.send(request).await?;
    // Last.fm reports errors as `{"error": n, "message": ...}`, with 200 or a 4xx status.
    if let Ok(LastfmError { error }) = serde_json::from_slice::<LastfmError>(&body) {
        return Err(error_meaning(error));
    }
    if !status.is_success() {
        return Err(ProviderError::Status {
            status: status.as_u16(),
        });
    }
    let answer: SessionAnswer = serde_json::from_slice(&body)
        .map_err(|_| ProviderError::InvalidResponse("unexpected auth.getSession answer".into()))?;
    Ok((
        SecretString::from(answer.session.key),
        RemoteAccount {
            username: Some(answer.session.name),
            ..RemoteAccount::default()
        },
    ))
}

/// Last.fm error numbers (https://www.last.fm/api/errorcodes).
fn error_meaning(code: u32) -> ProviderError {
    match code {
        // Invalid, unauthorized (the user did not approve) or expired token.
        4 | 14 | 15 => ProviderError::Rejected {
            code: Some(format!("lastfm_error_{code}")),
        },
        // Service offline, temporarily unavailable.
        11 | 16 => ProviderError::Status { status: 503 },
        // Rate limit exceeded.
        29 => ProviderError::Status { status: 429 },
        // Invalid API key, invalid signature, suspended key: this server's configuration.
        _ => ProviderError::InvalidResponse(format!(
            "Last.fm refused the request (error {code}); check the API key and shared secret"
        )),
    }
}

#[derive(Deserialize)]
struct LastfmError {
    error: u32,
}

#[derive(Deserialize)]
struct SessionAnswer {
    session: Session,
}

#[derive(Deserialize)]
struct Session {
    name: String,
    key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_a_vector_computed_by_hand() {
        // `printf %s "api_keyxxxxxxxxmethodauth.getSessiontokenyyyyyyilovecher" | md5sum`
        let params = [
            ("token", "yyyyyy"),
            ("method", "auth.getSession"),
            ("api_key", "xxxxxxxx"),
        ];
        assert_eq!(
            api_signature(&params, "ilovecher"),
            "1333ebf6f7dec747486b6ce965cca66b"
        );
    }

    #[test]
    fn format_and_callback_are_not_signed() {
        let with = api_signature(&[("a", "1"), ("format", "json"), ("callback", "x")], "s");
        assert_eq!(with, api_signature(&[("a", "1")], "s"));
    }
}
