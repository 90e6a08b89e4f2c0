//! HTTP adapter: actix-web routes, JWT authentication, problem+json errors and OpenAPI.
//!
//! The app builds an [`ApiState`], an [`auth::Authenticator`] and the [`Operations`] (rate
//! limiter, metrics), then calls [`serve`]. Handlers only translate HTTP to the domain's
//! services and back.

pub mod auth;
pub mod conditional;
pub mod console;
pub mod error;
pub mod events;
pub mod handlers;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod state;
pub mod views;
pub mod write_permits;

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::{
    App, HttpResponse,
    body::MessageBody,
    dev::{ServiceFactory, ServiceRequest, ServiceResponse},
    http::header,
    middleware::from_fn,
    web::{self, Data},
};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

pub use actix_web::dev::Server;
pub use auth::{AuthConfig, Authenticator, VerificationKey, VerifiedTokens};
pub use error::ApiError;
pub use metrics::HttpMetrics;
pub use rate_limit::{AccessKind, Decision, QuotaState, RateLimiter};
pub use state::{ApiOptions, ApiState, DynPreferencesService, DynSettingsService, Readiness};
pub use write_permits::WritePermits;

use crate::routes::Group;

/// Server tunables: protect workers from slow or idle clients.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Worker threads (0 = one per core).
    pub workers: usize,
    /// Most concurrent connections per worker.
    pub max_connections: usize,
    /// Time a client has to send the request head.
    pub client_request_timeout: Duration,
    /// Time a client has to acknowledge the connection close.
    pub client_disconnect_timeout: Duration,
    /// Keep-alive of idle connections.
    pub keep_alive: Duration,
    /// Grace period for in-flight requests on shutdown.
    pub shutdown_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            workers: 0,
            max_connections: 25_000,
            client_request_timeout: Duration::from_secs(5),
            client_disconnect_timeout: Duration::from_secs(2),
            keep_alive: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// The cross-cutting parts of the HTTP layer that the app supplies.
#[derive(Clone)]
pub struct Operations {
    /// Per-user quotas of the authenticated API.
    pub rate_limiter: Arc<dyn RateLimiter>,
    /// Request metrics, and the registry `/metrics` exposes.
    pub metrics: Arc<HttpMetrics>,
}

/// The OpenAPI document of this API, before the deployment's lists are added (see
/// [`openapi::document`]).
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::ApiDoc::openapi()
}

/// The served OpenAPI document, built once per app from its configuration.
#[derive(Clone, Debug)]
pub struct ServedDocument(Arc<serde_json::Value>);

/// Which routes one listener serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routes {
    /// Every route (a single listener).
    All,
    /// The API and its documentation; the operational routes answer 404.
    Public,
    /// The operational routes only: `/internal/*`, `/metrics`, `/health/*`.
    Internal,
}

impl Routes {
    fn public(self) -> bool {
        self != Routes::Internal
    }

    fn internal(self) -> bool {
        self != Routes::Public
    }
}

/// The application: the routes of `routes` with their middleware.
pub fn app(
    state: ApiState,
    auth: Arc<Authenticator>,
    operations: Operations,
    routes: Routes,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let body_limit = state.options.max_body_bytes;
    let bulk_limit = state.options.max_bulk_body_bytes;
    let integrations = state.integrations.clone();
    let limits = state.settings.limits();
    let document = ServedDocument(Arc::new(openapi::document(&openapi::DocumentConfig {
        categories: state.settings.categories().names().to_vec(),
        max_description_chars: limits.max_description_chars,
        max_bulk_items: limits.max_bulk_items,
    })));
    App::new()
        .app_data(Data::new(document))
        .app_data(request_id::SlowRequest(state.options.slow_request))
        .app_data(Data::new(state))
        .app_data(Data::from(auth))
        .app_data(Data::from(operations.rate_limiter))
        .app_data(Data::from(operations.metrics))
        .app_data(json::config(body_limit))
        .app_data(web::PathConfig::default().error_handler(|err, _| {
            ApiError::NotFound("route_not_found", format!("invalid path parameter: {err}")).into()
        }))
        .app_data(web::QueryConfig::default().error_handler(|err, _| {
            ApiError::BadRequest(format!("invalid query string: {err}")).into()
        }))
        .configure(|cfg| {
            if let Some(api) = &integrations {
                cfg.app_data(Data::new(api.clone()));
            }
            if routes.public() {
                public_routes(cfg, integrations.is_some(), bulk_limit);
            }
            if routes.internal() {
                internal_routes(cfg, integrations.is_some(), bulk_limit);
            }
        })
        .default_service(web::to(|| async {
            Err::<HttpResponse, _>(ApiError::NotFound(
                "route_not_found",
                "no route matches this path".into(),
            ))
        }))
        // The last `wrap` runs first: request id (and the route template), then metrics
        // (which so see 429s). The rate limiter wraps the `/api/v1` scope.
        .wrap(from_fn(metrics::middleware))
        .wrap(from_fn(request_id::middleware))
}

/// The API under `/api/v1` and its documentation.
///
/// The rate limiter wraps the whole `/api/v1` scope rather than deciding on the request's
/// path: the router matches the percent-decoded path, so only a decision taken by the
/// router itself covers every spelling that reaches a handler (`/%61pi/v1/...` included).
fn public_routes(cfg: &mut web::ServiceConfig, integrations: bool, bulk_limit: usize) {
    let api: &[Group] = if integrations {
        &[Group::Api, Group::IntegrationsApi]
    } else {
        &[Group::Api]
    };
    // Public and unauthenticated: registered before the scope, which would claim it.
    routes::register(cfg, &[Group::Open], "", bulk_limit);
    cfg.service(
        web::scope(routes::API_SCOPE)
            .wrap(from_fn(rate_limit::middleware))
            .configure(|cfg| routes::register(cfg, api, routes::API_SCOPE, bulk_limit)),
    );
    routes::register(cfg, &[Group::Docs], "", bulk_limit);
    // The docs page's own files: static assets, not part of the API.
    cfg.service(
        SwaggerUi::new("/docs/{_:.*}").config(utoipa_swagger_ui::Config::from("/openapi.json")),
    );
    // The support console's files: static, not part of the API either.
    console::register(cfg);
}

/// What operators and integration services reach: `/internal/*`, health, `/metrics`.
fn internal_routes(cfg: &mut web::ServiceConfig, integrations: bool, bulk_limit: usize) {
    let groups: &[Group] = if integrations {
        &[
            Group::Internal,
            Group::IntegrationsInternal,
            Group::Operations,
        ]
    } else {
        &[Group::Internal, Group::Operations]
    };
    routes::register(cfg, groups, "", bulk_limit);
}

#[utoipa::path(
    get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object))
)]
/// The OpenAPI document.
pub(crate) async fn openapi_json(document: Data<ServedDocument>) -> HttpResponse {
    HttpResponse::Ok().json(&*document.0)
}

#[utoipa::path(
    get, path = "/docs", tag = "operations",
    responses((status = 308, description = "To the interactive documentation at `/docs/`",
        headers(("Location" = String, description = "`/docs/`"))))
)]
/// Redirects to the documentation page.
pub(crate) async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

/// Starts serving `routes` on `listener`. The returned server runs until SIGTERM/SIGINT
/// (graceful, bounded by `shutdown_timeout`) or until its handle stops it.
///
/// # Errors
/// When the listener cannot be used.
pub fn serve(
    listener: TcpListener,
    routes: Routes,
    state: ApiState,
    auth: Arc<Authenticator>,
    operations: Operations,
    options: &ServerOptions,
) -> std::io::Result<Server> {
    let mut server = actix_web::HttpServer::new(move || {
        app(state.clone(), auth.clone(), operations.clone(), routes)
    })
    .max_connections(options.max_connections)
    .client_request_timeout(options.client_request_timeout)
    .client_disconnect_timeout(options.client_disconnect_timeout)
    .keep_alive(options.keep_alive)
    .shutdown_timeout(options.shutdown_timeout.as_secs());
    if options.workers > 0 {
        server = server.workers(options.workers);
    }
    Ok(server.listen(listener)?.run())
}
