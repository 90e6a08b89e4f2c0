//! Request ids and access logging: every response carries `X-Request-Id` (the client's when
//! well-formed, else a fresh UUID), and every request runs in a span that names it.

use std::time::Instant;

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

/// The id of the current request, stored in the request's extensions.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The route template the request matched (`unmatched` when none), stored in the request's
/// extensions.
#[derive(Clone, Debug)]
pub struct RoutePattern(pub String);

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
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| well_formed(v))
        .map_or_else(|| Uuid::new_v4().to_string(), str::to_owned);
    // Matching the route template costs a routing pass: do it once, for the span and metrics.
    let route = RoutePattern(req.match_pattern().unwrap_or_else(|| "unmatched".into()));
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        route = %route.0,
        user_id = tracing::field::Empty,
    );
    {
        let mut extensions = req.extensions_mut();
        extensions.insert(RequestId(id.clone()));
        extensions.insert(route);
    }
    let started = Instant::now();
    let mut response = next.call(req).instrument(span.clone()).await?;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID, value);
    }
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1e3,
            "request handled"
        );
    });
    Ok(response)
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
