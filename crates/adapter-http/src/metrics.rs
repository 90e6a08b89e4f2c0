//! Prometheus metrics of the HTTP layer (requests by route template, method and status, their
//! latency, rate-limited requests) and the `GET /metrics` exposition of the whole registry.
//!
//! Labels are bounded sets: the route *template* (never the path, which holds keys and user
//! ids), a known method or `other`, the status code. No label names a user.
//! `/metrics` needs no token: expose it to the scraper only, not publicly.

use std::time::{Duration, Instant};

use actix_web::{
    Error, HttpMessage, HttpResponse,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::Method,
    middleware::Next,
    web::Data,
};
use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TEXT_FORMAT, TextEncoder,
};

use crate::{error::ApiError, rate_limit::AccessKind};

/// Latency buckets, in seconds: from a cache hit to a database timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The HTTP metrics, registered in the registry that `/metrics` exposes.
#[derive(Clone)]
pub struct HttpMetrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    rate_limited: IntCounterVec,
}

impl HttpMetrics {
    /// Registers the HTTP metrics in `registry`; `/metrics` will expose all of `registry`.
    ///
    /// # Errors
    /// When a metric of the same name is already registered.
    pub fn new(registry: Registry) -> prometheus::Result<Self> {
        let requests = IntCounterVec::new(
            Opts::new(
                "user_settings_http_requests_total",
                "HTTP requests answered, by route template, method and status.",
            ),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "user_settings_http_request_duration_seconds",
                "Time to the response head, by route template and method.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method"],
        )?;
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "user_settings_rate_limited_total",
                "Requests refused with 429, by quota (read or write).",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(rate_limited.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
            rate_limited,
        })
    }

    /// Records one answered request.
    pub fn observe(&self, route: &str, method: &Method, status: u16, elapsed: Duration) {
        let method = method_label(method);
        self.requests
            .with_label_values(&[route, method, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[route, method])
            .observe(elapsed.as_secs_f64());
    }

    /// Records one request refused by the rate limiter.
    pub fn rate_limited(&self, kind: AccessKind) {
        self.rate_limited.with_label_values(&[kind.as_str()]).inc();
    }

    /// Every metric of the registry in the Prometheus text format (collectors that read
    /// their values at scrape time, such as the pool's, run now).
    ///
    /// # Errors
    /// When a metric cannot be encoded.
    pub fn render(&self) -> prometheus::Result<String> {
        let mut text = String::new();
        TextEncoder::new().encode_utf8(&self.registry.gather(), &mut text)?;
        Ok(text)
    }
}

/// Known methods by name; anything else is `other`, so a client cannot mint label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: counts and times every request under its route template (`unmatched` when
/// no route matches, so unknown paths cannot mint label values).
///
/// # Errors
/// Only what the inner service returns.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let Some(metrics) = req.app_data::<Data<HttpMetrics>>().cloned() else {
        return next.call(req).await;
    };
    let route = req
        .extensions()
        .get::<crate::request_id::RoutePattern>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| crate::request_id::route_template(&req));
    let method = req.method().clone();
    let started = Instant::now();
    let result = next.call(req).await;
    let status = match &result {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    metrics.observe(&route, &method, status.as_u16(), started.elapsed());
    result
}

#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format (keep this route internal)",
        content_type = "text/plain")))]
/// `GET /metrics`: the Prometheus text exposition.
pub async fn exposition(metrics: Data<HttpMetrics>) -> Result<HttpResponse, ApiError> {
    let text = metrics
        .render()
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("encoding metrics")))?;
    Ok(HttpResponse::Ok().content_type(TEXT_FORMAT).body(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_route_template_method_and_status() {
        let metrics = HttpMetrics::new(Registry::new()).unwrap();
        let route = "/api/v1/users/me/settings/{key}";
        metrics.observe(route, &Method::PUT, 201, Duration::from_millis(3));
        metrics.observe(route, &Method::PUT, 201, Duration::from_millis(4));
        metrics.rate_limited(AccessKind::Write);
        let text = metrics.render().unwrap();
        assert!(
            text.contains(
                r#"user_settings_http_requests_total{method="PUT",route="/api/v1/users/me/settings/{key}",status="201"} 2"#
            ),
            "{text}"
        );
        assert!(text.contains("user_settings_http_request_duration_seconds_bucket"));
        assert!(text.contains(r#"user_settings_rate_limited_total{kind="write"} 1"#));
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let custom = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&custom), "other");
        assert_eq!(method_label(&Method::GET), "GET");
    }
}
