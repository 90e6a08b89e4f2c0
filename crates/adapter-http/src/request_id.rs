//! Request ids and access logging: every request gets a fresh server-generated id, answered
//! in `X-Request-Id`; a well-formed id the client sent in `X-Request-Id` is kept beside it
//! (never instead of it) and echoed in `X-Client-Request-Id`. Every request runs in a span
//! that names both and the route template, and ends with one log line: `info` for most,
//! `warn` ("slow request") for one that took at least the configured threshold, so a
//! deployment logging at `warn` still sees its slow requests.

use std::time::{Duration, Instant};

use actix_web::{
    Error, HttpMessage,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header::{HeaderName, HeaderValue},
    middleware::Next,
};
use tracing::Instrument;
use uuid::Uuid;

/// Header name.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// The response header echoing the client's own request id.
pub const X_CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("x-client-request-id");

/// The server's id of the current request, stored in the request's extensions. Always
/// generated here: audit records and logs can trust it to be unique.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The id the client sent in `X-Request-Id`, when well-formed; for correlation only (a
/// client can send any id, including another request's).
#[derive(Clone, Debug)]
pub struct ClientRequestId(pub String);

/// The route template the request matched (`unmatched` when none), stored in the request's
/// extensions.
#[derive(Clone, Debug)]
pub struct RoutePattern(pub String);

/// The threshold at which a request's log line becomes a warning (`None`: never), stored
/// in the app's data.
#[derive(Clone, Copy, Debug)]
pub struct SlowRequest(pub Option<Duration>);

fn well_formed(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Middleware: assigns the request id, opens the request span, logs one line per request.
///
/// # Errors
/// Only what the inner service returns.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = Uuid::new_v4().to_string();
    let client_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| well_formed(v))
        .map(str::to_owned);
    // Matching the route template costs a routing pass: do it once, for the span and metrics.
    let route = RoutePattern(route_template(&req));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        client_request_id = tracing::field::Empty,
        method = %req.method(),
        route = %route.0,
        user_id = tracing::field::Empty,
    );
    if let Some(client_id) = &client_id {
        // Safe to display: `well_formed` admits no whitespace or control characters.
        span.record("client_request_id", client_id.as_str());
    }
    {
        let mut extensions = req.extensions_mut();
        extensions.insert(RequestId(id.clone()));
        if let Some(client_id) = &client_id {
            extensions.insert(ClientRequestId(client_id.clone()));
        }
        extensions.insert(route);
    }
    let slow = req.app_data::<SlowRequest>().and_then(|slow| slow.0);
    let started = Instant::now();
    let mut response = next.call(req).instrument(span.clone()).await?;
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&id) {
        headers.insert(X_REQUEST_ID, value);
    }
    if let Some(value) = client_id.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(X_CLIENT_REQUEST_ID, value);
    }
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let latency_ms = elapsed.as_secs_f64() * 1e3;
    span.in_scope(|| {
        if slow.is_some_and(|slow| elapsed >= slow) {
            // The span's fields again: at `warn` the (`info`) span itself is not recorded.
            let request = response.request();
            let extensions = request.extensions();
            let route = extensions
                .get::<RoutePattern>()
                .map_or("", |r| r.0.as_str());
            tracing::warn!(
                request_id = %id,
                method = %request.method(),
                route,
                status,
                latency_ms,
                "slow request"
            );
        } else {
            tracing::info!(status, latency_ms, "request handled");
        }
    });
    Ok(response)
}

/// The template of the route the router will pick for `req` (`unmatched` when none).
///
/// Matched on the percent-decoded path, as the router matches, and never on the raw
/// `req.path()`: `/%61pi/v1/...` reaches the `/api/v1/...` handlers and is labelled so.
pub fn route_template(req: &ServiceRequest) -> String {
    req.resource_map()
        .match_pattern(req.match_info().as_str())
        .unwrap_or_else(|| "unmatched".into())
}

#[cfg(test)]
mod tests {
    use super::well_formed;

    #[test]
    fn accepts_ordinary_ids_and_rejects_injection() {
        assert!(well_formed("0b5c2f1e-7d8a-4c55-9c3e-2b1f00000000"));
        assert!(well_formed("trace.abc_123:4"));
        assert!(!well_formed(""));
        assert!(!well_formed("a b"));
        assert!(!well_formed("x\r\nSet-Cookie: a=b"));
        assert!(!well_formed(&"a".repeat(129)));
    }
}
