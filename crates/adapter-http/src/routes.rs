//! The route table: every path the app serves with each method, as data. Registering the
//! routes, the `Allow` header of a 405 and the test that the OpenAPI document covers the
//! router all read this one list, so a route cannot be added without the others seeing it.

use actix_web::{
    HttpResponse, Route, guard,
    http::Method,
    web::{self, ServiceConfig},
};

use crate::{
    error::ApiError,
    handlers::{
        admin, defaults, devices, effective, events, health, history, integrations, internal,
        portability, preferences, schema, settings, support,
    },
    json,
};

/// Which part of the app a route belongs to (what serves it, and with which middleware).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Public and not rate-limited: the known-key registry.
    Open,
    /// The rate-limited `/api/v1` scope.
    Api,
    /// In the `/api/v1` scope, only when integrations are configured.
    IntegrationsApi,
    /// The OpenAPI document and the docs page.
    Docs,
    /// `/internal/*`, for integration services.
    Internal,
    /// In `/internal/*`, only when integrations are configured.
    IntegrationsInternal,
    /// Health and metrics.
    Operations,
}

/// How big a body the route accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLimit {
    /// `max_body_bytes`.
    Default,
    /// `max_bulk_body_bytes` (the bulk write).
    Bulk,
}

/// One method of one path and the handler that serves it.
pub struct Endpoint {
    /// Where it is served.
    pub group: Group,
    /// The full path template, as the OpenAPI document spells it.
    pub path: &'static str,
    /// The method.
    pub method: Method,
    /// Its body limit.
    pub body: BodyLimit,
    handler: fn(Route) -> Route,
}

const fn endpoint(
    group: Group,
    method: Method,
    path: &'static str,
    handler: fn(Route) -> Route,
) -> Endpoint {
    Endpoint {
        group,
        path,
        method,
        body: BodyLimit::Default,
        handler,
    }
}

impl Endpoint {
    const fn with_body(mut self, body: BodyLimit) -> Self {
        self.body = body;
        self
    }
}

/// The prefix of the rate-limited scope.
pub const API_SCOPE: &str = "/api/v1";

/// Every route, in registration order.
pub static ENDPOINTS: &[Endpoint] = &[
    endpoint(Group::Open, Method::GET, "/api/v1/settings/schema", |r| {
        r.to(schema::registry)
    }),
    endpoint(Group::Api, Method::PUT, "/api/v1/users/me/settings", |r| {
        r.to(settings::bulk)
    })
    .with_body(BodyLimit::Bulk),
    endpoint(Group::Api, Method::GET, "/api/v1/users/me/settings", |r| {
        r.to(settings::list)
    }),
    endpoint(Group::Api, Method::POST, "/api/v1/users/me/settings", |r| {
        r.to(settings::post)
    }),
    endpoint(
        Group::Api,
        Method::GET,
        "/api/v1/users/me/settings/{key}",
        |r| r.to(settings::get),
    ),
    endpoint(
        Group::Api,
        Method::PUT,
        "/api/v1/users/me/settings/{key}",
        |r| r.to(settings::put),
    ),
    endpoint(
        Group::Api,
        Method::DELETE,
        "/api/v1/users/me/settings/{key}",
        |r| r.to(settings::delete),
    ),
    endpoint(
        Group::Api,
        Method::GET,
        "/api/v1/users/me/settings/{key}/history",
        |r| r.to(history::setting),
    ),
    endpoint(
        Group::Api,
        Method::POST,
        "/api/v1/users/me/settings/{key}/restore",
        |r| r.to(history::restore_setting),
    ),
    endpoint(
        Group::Api,
        Method::GET,
        "/api/v1/users/me/preferences/history",
        |r| r.to(history::preferences),
    ),
    endpoint(
        Group::Api,
        Method::POST,
        "/api/v1/users/me/preferences/restore",
        |r| r.to(history::restore_preferences),
    ),
    endpoint(
        Group::Api,
        Method::GET,
        "/api/v1/users/me/devices/{device_id}/settings/{key}/history",
        |r| r.to(history::device_setting),
    ),
    endpoint(
        Group::Api,
        Method::POST,
        "/api/v1/users/me/devices/{device_id}/settings/{key}/restore",
        |r| r.to(history::restore_device_setting),
    ),
    endpoint(
        Group::Api,
        Method::GET,
        "/api/v1/admin/users/{user_id}/settings/{key}/history",
        |r| r.to(history::admin_setting),
    ),
    endpoint(Group::Api, Method::GET, "/api/v1/users/me/events", |r| {
        r.to(events::stream)
    }),
    endpoint(
        Group::Api,
        Method::POST,
        "/api/v1/users/me/events/tickets",
        |r| r.to(events::ticket),
    ),
    endpoint(Group::Api, Method::GET, "/api/v1/users/me/export", |r| {
        r.to(portability::export)
    }),
    endpoint(Group::Api, Method::POST, "/api/v1/users/me/import", |r| {
        r.to(portability::import)
    })
    .with_body(BodyLimit::Bulk),
    endpoint(
        Group::Api,
        Method::GET,
        "/api/v1/admin/users/{user_id}/export",
        |r| r.to(portability::admin_export),
    ),
    endpoint(Group::Api, Method::GET, "/api/v1/users/me/effective", |r| {
        r.to(effective::view)
    }),
    endpoint(
        Group::Api,
        Method::GET,
        "/api/v1/users/me/effective/settings/{key}",
        |r| r.to(defaults::effective_setting),
    ),
    endpoint(Group::Api, Method::GET, "/api/v1/users/me/devices", |r| {
        r.to(devices::list)
    }),
    endpoint(
        Group::Api,
        Method::DELETE,
        "/api/v1/users/me/devices/{device_id}",
        |r| r.to(devices::delete),
    ),
    endpoint(
        Group::Api,
        Method::GET,
        "/api/v1/users/me/devices/{device_id}/preferences",
        |r| r.to(devices::get_preferences),
    ),
    endpoint(
        Group::Api,
        Method::PATCH,
        "/api/v1/users/me/devices/{device_id}/preferences",
        |r| r.to(devices::patch_preferences),
    ),
    endpoint(
        Group::Api,
        Method::DELETE,
        "/api/v1/users/me/devices/{device_id}/preferences",
        |r| r.to(devices::delete_preferences),
    ),
    endpoint(
        Group::Api,
        Method::GET,
        "/api/v1/users/me/devices/{device_id}/settings/{key}",
        |r| r.to(devices::get_setting),
    ),
    endpoint(
        Group::Api,
        Method::PUT,
        "/api/v1/users/me/devices/{device_id}/settings/{key}",
        |r| r.to(devices::put_setting),
    ),
    endpoint(
        Group::Api,
        Method::DELETE,
        "/api/v1/users/me/devices/{device_id}/settings/{key}",
        |r| r.to(devices::delete_setting),
    ),
    endpoint(Group::Api, Method::GET, "/api/v1/defaults", |r| {
        r.to(defaults::get)
    }),
    endpoint(
        Group::Api,
        Method::PATCH,
        "/api/v1/defaults/preferences",
        |r| r.to(defaults::patch_preferences),
    ),
    endpoint(
        Group::Api,
        Method::PUT,
        "/api/v1/defaults/settings/{key}",
        |r| r.to(defaults::put_setting),
    ),
    endpoint(
        Group::Api,
        Method::DELETE,
        "/api/v1/defaults/settings/{key}",
        |r| r.to(defaults::delete_setting),
    ),
    endpoint(
        Group::Api,
        Method::GET,
        "/api/v1/users/me/preferences",
        |r| r.to(preferences::get),
    ),
    endpoint(
        Group::Api,
        Method::PUT,
        "/api/v1/users/me/preferences",
        |r| r.to(preferences::put),
    ),
    endpoint(
        Group::Api,
        Method::PATCH,
        "/api/v1/users/me/preferences",
        |r| r.to(preferences::patch),
    ),
    endpoint(
        Group::Api,
        Method::GET,
        "/api/v1/admin/users/{user_id}/settings",
        |r| r.to(admin::settings),
    ),
    endpoint(
        Group::Api,
        Method::GET,
        "/api/v1/admin/users/{user_id}/preferences",
        |r| r.to(admin::preferences),
    ),
    endpoint(
        Group::Api,
        Method::GET,
        "/api/v1/admin/users/{user_id}/effective",
        |r| r.to(effective::admin_view),
    ),
    endpoint(
        Group::Api,
        Method::GET,
        "/api/v1/admin/users/{user_id}/devices",
        |r| r.to(support::devices),
    ),
    endpoint(
        Group::Api,
        Method::GET,
        "/api/v1/admin/users/{user_id}/audit",
        |r| r.to(support::audit),
    ),
    endpoint(
        Group::IntegrationsApi,
        Method::GET,
        "/api/v1/admin/users/{user_id}/integrations",
        |r| r.to(integrations::admin_list),
    ),
    endpoint(
        Group::IntegrationsApi,
        Method::GET,
        "/api/v1/integrations",
        |r| r.to(integrations::list),
    ),
    endpoint(
        Group::IntegrationsApi,
        Method::GET,
        "/api/v1/integrations/{provider}/authorize",
        |r| r.to(integrations::authorize),
    ),
    endpoint(
        Group::IntegrationsApi,
        Method::POST,
        "/api/v1/integrations/{provider}/connect",
        |r| r.to(integrations::connect),
    ),
    endpoint(
        Group::IntegrationsApi,
        Method::GET,
        "/api/v1/integrations/{provider}/status",
        |r| r.to(integrations::status),
    ),
    endpoint(
        Group::IntegrationsApi,
        Method::DELETE,
        "/api/v1/integrations/{provider}/disconnect",
        |r| r.to(integrations::disconnect),
    ),
    endpoint(Group::Docs, Method::GET, "/openapi.json", |r| {
        r.to(crate::openapi_json)
    }),
    endpoint(Group::Docs, Method::GET, "/docs", |r| {
        r.to(crate::docs_redirect)
    }),
    endpoint(
        Group::Internal,
        Method::GET,
        "/internal/v1/users/{user_id}/secrets/{key}",
        |r| r.to(internal::secret),
    ),
    endpoint(
        Group::IntegrationsInternal,
        Method::GET,
        "/internal/v1/users/{user_id}/integrations/{provider}/token",
        |r| r.to(integrations::token),
    ),
    endpoint(Group::Operations, Method::GET, "/health/live", |r| {
        r.to(health::live)
    }),
    endpoint(Group::Operations, Method::GET, "/health/ready", |r| {
        r.to(health::ready)
    }),
    endpoint(Group::Operations, Method::GET, "/metrics", |r| {
        r.to(crate::metrics::exposition)
    }),
];

/// The methods `path` is served with, for `Allow` (RFC 9110 15.5.6).
pub fn allowed_methods(path: &str) -> String {
    let mut methods: Vec<&str> = ENDPOINTS
        .iter()
        .filter(|e| e.path == path)
        .map(|e| e.method.as_str())
        .collect();
    methods.sort_unstable();
    methods.dedup();
    methods.join(", ")
}

/// Registers the routes of `groups` on `cfg`, their paths less `strip`. Every path gets one
/// resource that answers 405 with `Allow` for the methods it has no route for; a route with
/// its own body limit gets a resource of its own before it, guarded by its method.
pub fn register(cfg: &mut ServiceConfig, groups: &[Group], strip: &str, bulk_limit: usize) {
    let selected = || ENDPOINTS.iter().filter(|e| groups.contains(&e.group));
    let mut paths: Vec<&'static str> = Vec::new();
    for e in selected() {
        if !paths.contains(&e.path) {
            paths.push(e.path);
        }
    }
    for path in paths {
        let local = path.strip_prefix(strip).unwrap_or(path);
        for e in selected().filter(|e| e.path == path && e.body == BodyLimit::Bulk) {
            cfg.service(
                web::resource(local)
                    .guard(guard::Method(e.method.clone()))
                    .app_data(json::config(bulk_limit))
                    .route((e.handler)(web::method(e.method.clone()))),
            );
        }
        let allow = allowed_methods(path);
        let mut resource = web::resource(local).default_service(web::to(move || {
            let allow = allow.clone();
            async move { Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow }) }
        }));
        for e in selected().filter(|e| e.path == path && e.body == BodyLimit::Default) {
            resource = resource.route((e.handler)(web::method(e.method.clone())));
        }
        cfg.service(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document() -> serde_json::Value {
        crate::openapi::document(&crate::openapi::DocumentConfig {
            categories: vec!["ui".into()],
            max_description_chars: 500,
            max_bulk_items: 100,
        })
    }

    #[test]
    fn every_registered_route_is_in_the_openapi_document_with_its_method() {
        let doc = document();
        for e in ENDPOINTS {
            let method = e.method.as_str().to_ascii_lowercase();
            assert!(
                doc["paths"][e.path].get(&method).is_some(),
                "{} {} is registered but not documented",
                e.method,
                e.path
            );
        }
    }

    #[test]
    fn every_documented_operation_is_registered() {
        let doc = document();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                assert!(
                    ENDPOINTS
                        .iter()
                        .any(|e| e.path == path && e.method.as_str().eq_ignore_ascii_case(method)),
                    "{method} {path} is documented but not registered"
                );
            }
        }
    }

    #[test]
    fn a_devices_setting_serves_the_methods_of_the_users_own() {
        assert_eq!(
            allowed_methods("/api/v1/users/me/devices/{device_id}/settings/{key}"),
            allowed_methods("/api/v1/users/me/settings/{key}")
        );
    }

    #[test]
    fn allow_lists_every_method_of_a_path_including_the_bulk_write() {
        assert_eq!(
            allowed_methods("/api/v1/users/me/settings"),
            "GET, POST, PUT"
        );
    }
}
