//! The providers' production endpoints and default scopes, used when the configuration does
//! not override them.

use domain::integrations::ProviderId;

/// Default URLs and scopes of one provider.
pub(crate) struct DefaultEndpoints {
    pub auth: Option<&'static str>,
    pub token: Option<&'static str>,
    pub api: Option<&'static str>,
    pub revoke: Option<&'static str>,
    pub scopes: &'static [&'static str],
}

pub(crate) fn default_endpoints(provider: ProviderId) -> DefaultEndpoints {
    let none = DefaultEndpoints {
        auth: None,
        token: None,
        api: None,
        revoke: None,
        scopes: &[],
    };
    match provider {
        ProviderId::Trakt => DefaultEndpoints {
            auth: Some("https://trakt.tv/oauth/authorize"),
            token: Some("https://api.trakt.tv/oauth/token"),
            api: Some("https://api.trakt.tv"),
            revoke: Some("https://api.trakt.tv/oauth/revoke"),
            ..none
        },
        ProviderId::Lastfm => DefaultEndpoints {
            auth: Some("https://www.last.fm/api/auth/"),
            api: Some("https://ws.audioscrobbler.com/2.0/"),
            ..none
        },
        ProviderId::Listenbrainz => DefaultEndpoints {
            api: Some("https://api.listenbrainz.org"),
            ..none
        },
        ProviderId::Simkl => DefaultEndpoints {
            auth: Some("https://simkl.com/oauth/authorize"),
            token: Some("https://api.simkl.com/oauth/token"),
            api: Some("https://api.simkl.com"),
            ..none
        },
        ProviderId::Letterboxd => none,
        ProviderId::Anilist => DefaultEndpoints {
            auth: Some("https://anilist.co/api/v2/oauth/authorize"),
            token: Some("https://anilist.co/api/v2/oauth/token"),
            api: Some("https://graphql.anilist.co"),
            ..none
        },
        ProviderId::Myanimelist => DefaultEndpoints {
            auth: Some("https://myanimelist.net/v1/oauth2/authorize"),
            token: Some("https://myanimelist.net/v1/oauth2/token"),
            api: Some("https://api.myanimelist.net/v2"),
            ..none
        },
        ProviderId::Kitsu => DefaultEndpoints {
            token: Some("https://kitsu.app/api/oauth/token"),
            api: Some("https://kitsu.app/api/edge"),
            revoke: Some("https://kitsu.app/api/oauth/revoke"),
            ..none
        },
        ProviderId::Spotify => DefaultEndpoints {
            auth: Some("https://accounts.spotify.com/authorize"),
            token: Some("https://accounts.spotify.com/api/token"),
            api: Some("https://api.spotify.com/v1"),
            scopes: &[
                "user-read-recently-played",
                "user-read-currently-playing",
                "user-read-playback-state",
            ],
            ..none
        },
    }
}
