//! HTTP adapter: actix-web routes, JWT authentication, problem+json errors and OpenAPI.
//!
//! The app builds an [`ApiState`], an [`auth::Authenticator`] and the [`Operations`] (rate
//! limiter, metrics), then calls [`serve`]. Handlers only translate HTTP to the domain's
//! services and back.

pub mod auth;
pub mod conditional;
pub mod error;
pub mod handlers;
pub mod json;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod request_id;
pub mod state;
pub mod write_permits;

use std::{net::TcpListener, sync::Arc, time::Duration};

use actix_web::{
    App, HttpResponse,
    body::MessageBody,
    dev::{ServiceFactory, ServiceRequest, ServiceResponse},
    guard,
    http::header,
    middleware::from_fn,
    web::{self, Data},
};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

pub use actix_web::dev::Server;
pub use auth::{AuthConfig, Authenticator, VerificationKey};
pub use error::ApiError;
pub use metrics::HttpMetrics;
pub use rate_limit::{AccessKind, Decision, QuotaState, RateLimiter};
pub use state::{ApiOptions, ApiState, DynPreferencesService, DynSettingsService, Readiness};
pub use write_permits::WritePermits;

use crate::handlers::{admin, health, internal, preferences, schema, settings};

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

/// The OpenAPI document of this API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    openapi::ApiDoc::openapi()
}

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
    App::new()
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
                internal_routes(cfg, integrations.is_some());
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
    // Public and unauthenticated: registered before the scope, which would claim it.
    cfg.service(resource("/api/v1/settings/schema").route(web::get().to(schema::registry)))
        .service(
            web::scope("/api/v1")
                .wrap(from_fn(rate_limit::middleware))
                // The bulk write gets its own resource for its larger body limit.
                .service(
                    web::resource("/users/me/settings")
                        .guard(guard::Put())
                        .app_data(json::config(bulk_limit))
                        .route(web::put().to(settings::bulk)),
                )
                .service(
                    resource("/users/me/settings")
                        .route(web::get().to(settings::list))
                        .route(web::post().to(settings::post)),
                )
                .service(
                    resource("/users/me/settings/{key}")
                        .route(web::get().to(settings::get))
                        .route(web::put().to(settings::put))
                        .route(web::delete().to(settings::delete)),
                )
                .service(
                    resource("/users/me/preferences")
                        .route(web::get().to(preferences::get))
                        .route(web::put().to(preferences::put))
                        .route(web::patch().to(preferences::patch)),
                )
                .service(
                    resource("/admin/users/{user_id}/settings")
                        .route(web::get().to(admin::settings)),
                )
                .service(
                    resource("/admin/users/{user_id}/preferences")
                        .route(web::get().to(admin::preferences)),
                )
                .configure(|cfg| {
                    if integrations {
                        handlers::integrations::configure_api(cfg);
                    }
                }),
        )
        .service(resource("/openapi.json").route(web::get().to(openapi_json)))
        .service(resource("/docs").route(web::get().to(docs_redirect)))
        .service(SwaggerUi::new("/docs/{_:.*}").url("/swagger/openapi.json", openapi()));
}

/// What operators and integration services reach: `/internal/*`, health, `/metrics`.
fn internal_routes(cfg: &mut web::ServiceConfig, integrations: bool) {
    cfg.service(
        resource("/internal/v1/users/{user_id}/secrets/{key}")
            .route(web::get().to(internal::secret)),
    );
    if integrations {
        handlers::integrations::configure_internal(cfg);
    }
    cfg.service(resource("/health/live").route(web::get().to(health::live)))
        .service(resource("/health/ready").route(web::get().to(health::ready)))
        // Unauthenticated, like the health routes: expose it to the scraper only.
        .service(resource("/metrics").route(web::get().to(metrics::exposition)));
}

/// A resource that answers 405 problem+json for methods it has no route for.
pub(crate) fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(|| async {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed)
    }))
}

async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(openapi())
}

async fn docs_redirect() -> HttpResponse {
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
