//! The support console at `/admin/`: a read-only page for support staff, served from files
//! embedded in the binary (no build step, nothing fetched from elsewhere). The page signs in
//! with an admin token kept in the tab's session storage and reads only through the audited
//! admin API; the files themselves hold no data, so they are served without authentication.
//!
//! Every file goes out with a policy that lets the page run only its own scripts and styles,
//! talk only to this origin, and never be framed.

use std::{
    hash::{DefaultHasher, Hasher},
    sync::LazyLock,
};

use actix_web::{
    HttpRequest, HttpResponse,
    http::header::{self, CacheControl, CacheDirective, EntityTag},
    web::{self, Path},
};

use crate::{conditional::not_modified_since, error::ApiError};

/// Where the console is served.
pub const PATH: &str = "/admin/";

/// Only this origin's own files and API; no inline script or style, no plugins, no forms
/// posted anywhere, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

/// A file of `console/`, embedded at build time.
macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_str!(concat!("../console/", $name)),
        }
    };
}

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("format.js", "text/javascript; charset=utf-8"),
    asset!("views.js", "text/javascript; charset=utf-8"),
];

/// Each file's strong ETag: a hash of its bytes, so a new build's files are fetched again.
static TAGS: LazyLock<Vec<EntityTag>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let mut hasher = DefaultHasher::new();
            hasher.write(asset.body.as_bytes());
            EntityTag::new_strong(format!("{:016x}", hasher.finish()))
        })
        .collect()
});

/// Registers `/admin` (a redirect), `/admin/` and its files.
pub fn register(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(redirect))
        .route(PATH, web::get().to(index))
        .route("/admin/{file}", web::get().to(file));
}

async fn redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, PATH))
        .finish()
}

async fn index(req: HttpRequest) -> HttpResponse {
    serve(&req, 0)
}

async fn file(req: HttpRequest, name: Path<String>) -> Result<HttpResponse, ApiError> {
    match ASSETS.iter().position(|asset| asset.name == name.as_str()) {
        Some(at) => Ok(serve(&req, at)),
        None => Err(ApiError::NotFound(
            "route_not_found",
            "the console has no such file".into(),
        )),
    }
}

/// The file at `at`, or 304 when the client holds it; revalidated on every use, so a
/// deployment's new console is seen at once.
fn serve(req: &HttpRequest, at: usize) -> HttpResponse {
    let asset = &ASSETS[at];
    let tag = TAGS[at].clone();
    let unchanged = not_modified_since(req, &tag);
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header(header::ETag(tag))
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header(("cross-origin-opener-policy", "same-origin"))
        .insert_header(("cross-origin-resource-policy", "same-origin"));
    if unchanged {
        return response.finish();
    }
    response
        .insert_header((header::CONTENT_TYPE, asset.content_type))
        .body(asset.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_loads_is_embedded() {
        let names: Vec<&str> = ASSETS.iter().map(|a| a.name).collect();
        for asset in ASSETS {
            for reference in referenced_files(asset.body) {
                assert!(
                    names.contains(&reference.as_str()),
                    "{} loads {reference}, which is not served",
                    asset.name
                );
            }
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_loads_nothing_from_elsewhere() {
        let html = ASSETS[0].body;
        assert!(!html.contains("<style"), "inline style");
        assert!(!html.contains(" style="), "inline style attribute");
        for (at, _) in html.match_indices("<script") {
            let tag = &html[at..at + html[at..].find('>').unwrap()];
            assert!(tag.contains("src="), "inline script: {tag}");
        }
        for asset in ASSETS {
            assert!(
                !asset.body.contains("http://"),
                "{} names http://",
                asset.name
            );
            assert!(
                !asset.body.contains("https://"),
                "{} names https://",
                asset.name
            );
        }
    }

    /// `src="x"`, `href="x"` of the page and `from "./x"` of the modules.
    fn referenced_files(body: &str) -> Vec<String> {
        let mut found = Vec::new();
        for marker in ["src=\"", "href=\"", "from \"./"] {
            for (at, _) in body.match_indices(marker) {
                let rest = &body[at + marker.len()..];
                let name = &rest[..rest.find('"').unwrap()];
                if !name.starts_with('#') {
                    found.push(name.to_owned());
                }
            }
        }
        found
    }
}
