//! Who the user is at the provider, read with a fresh access token right after connecting.

use domain::integrations::{ProviderError, ProviderId, RemoteAccount, RemoteUserId};
use reqwest::{Url, header};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::json;

use crate::{config::ResolvedProvider, http::ProviderHttp};

/// The remote account behind `access_token`.
pub(crate) async fn fetch(
    http: &ProviderHttp,
    provider: &ResolvedProvider,
    access_token: &SecretString,
) -> Result<RemoteAccount, ProviderError> {
    let api = provider
        .api_url
        .as_ref()
        .ok_or_else(|| ProviderError::Unknown(anyhow::anyhow!("api_url is not configured")))?;
    let client = http.client();
    let bearer = format!("Bearer {}", access_token.expose_secret());
    let client_id = provider.client_id.clone().unwrap_or_default();
    match provider.id {
        ProviderId::Trakt => {
            let request = client
                .get(join(api, "users/settings"))
                .header(header::AUTHORIZATION, bearer)
                .header("trakt-api-version", "2")
                .header("trakt-api-key", client_id);
            let answer: TraktSettings = http.json(request).await?;
            let ids = answer.user.ids;
            Ok(RemoteAccount {
                id: ids
                    .uuid
                    .map(RemoteUserId::Text)
                    .or(ids.trakt.map(RemoteUserId::Number))
                    .or_else(|| ids.slug.clone().map(RemoteUserId::Text)),
                username: answer.user.username,
                slug: ids.slug,
                email: None,
            })
        }
        ProviderId::Simkl => {
            let request = client
                .post(join(api, "users/settings"))
                .header(header::AUTHORIZATION, bearer)
                .header("simkl-api-key", client_id);
            let answer: SimklSettings = http.json(request).await?;
            Ok(RemoteAccount {
                id: Some(answer.account.id),
                username: answer.user.and_then(|u| u.name),
                ..RemoteAccount::default()
            })
        }
        ProviderId::Anilist => {
            let request = client
                .post(api.clone())
                .header(header::AUTHORIZATION, bearer)
                .header(header::ACCEPT, "application/json")
                .json(&json!({"query": "query { Viewer { id name } }"}));
            let answer: AnilistViewer = http.json(request).await?;
            let viewer = answer.data.viewer;
            Ok(RemoteAccount {
                id: Some(RemoteUserId::Number(viewer.id)),
                username: Some(viewer.name),
                ..RemoteAccount::default()
            })
        }
        ProviderId::Myanimelist => {
            let request = client
                .get(join(api, "users/@me"))
                .header(header::AUTHORIZATION, bearer);
            let answer: IdAndName = http.json(request).await?;
            Ok(RemoteAccount {
                id: Some(RemoteUserId::Number(answer.id)),
                username: Some(answer.name),
                ..RemoteAccount::default()
            })
        }
        ProviderId::Kitsu => {
            let mut url = join(api, "users");
            url.query_pairs_mut().append_pair("filter[self]", "true");
            let request = client
                .get(url)
                .header(header::AUTHORIZATION, bearer)
                .header(header::ACCEPT, "application/vnd.api+json");
            let answer: KitsuUsers = http.json(request).await?;
            let user = answer.data.into_iter().next().ok_or_else(|| {
                ProviderError::InvalidResponse("the account list is empty".into())
            })?;
            Ok(RemoteAccount {
                id: Some(RemoteUserId::Text(user.id)),
                username: user.attributes.and_then(|a| a.name),
                ..RemoteAccount::default()
            })
        }
        ProviderId::Spotify => {
            let request = client
                .get(join(api, "me"))
                .header(header::AUTHORIZATION, bearer);
            let answer: SpotifyMe = http.json(request).await?;
            Ok(RemoteAccount {
                username: answer.display_name.or_else(|| Some(answer.id.clone())),
                id: Some(RemoteUserId::Text(answer.id)),
                ..RemoteAccount::default()
            })
        }
        ProviderId::Lastfm | ProviderId::Listenbrainz | ProviderId::Letterboxd => {
            Ok(RemoteAccount::default())
        }
    }
}

/// `base` + `path`, whether or not `base` ends with a slash.
pub(crate) fn join(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!("{}/{}", base.path().trim_end_matches('/'), path);
    url.set_path(&joined);
    url
}

#[derive(Deserialize)]
struct TraktSettings {
    user: TraktUser,
}

#[derive(Deserialize)]
struct TraktUser {
    username: Option<String>,
    ids: TraktIds,
}

#[derive(Deserialize)]
struct TraktIds {
    slug: Option<String>,
    uuid: Option<String>,
    trakt: Option<i64>,
}

#[derive(Deserialize)]
struct SimklSettings {
    user: Option<SimklUser>,
    account: SimklAccount,
}

#[derive(Deserialize)]
struct SimklUser {
    name: Option<String>,
}

#[derive(Deserialize)]
struct SimklAccount {
    id: RemoteUserId,
}

#[derive(Deserialize)]
struct AnilistViewer {
    data: AnilistData,
}

#[derive(Deserialize)]
struct AnilistData {
    #[serde(rename = "Viewer")]
    viewer: IdAndName,
}

#[derive(Deserialize)]
struct IdAndName {
    id: i64,
    name: String,
}

#[derive(Deserialize)]
struct KitsuUsers {
    data: Vec<KitsuUser>,
}

#[derive(Deserialize)]
struct KitsuUser {
    id: String,
    attributes: Option<KitsuAttributes>,
}

#[derive(Deserialize)]
struct KitsuAttributes {
    name: Option<String>,
}

#[derive(Deserialize)]
struct SpotifyMe {
    id: String,
    display_name: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_adds_exactly_one_slash() {
        let with = Url::parse("http://h/api/").unwrap();
        let without = Url::parse("http://h/api").unwrap();
        assert_eq!(join(&with, "me").as_str(), "http://h/api/me");
        assert_eq!(join(&without, "me").as_str(), "http://h/api/me");
        assert_eq!(
            join(&Url::parse("http://h").unwrap(), "users/settings").as_str(),
            "http://h/users/settings"
        );
    }
}
