//! Per-user rate limiting of the authenticated API: the [`RateLimiter`] port, and the
//! middleware that asks it and answers 429 with `Retry-After` and the `RateLimit-*` headers.
//!
//! Reads (`GET`, `HEAD`, ...) and writes (`PUT`, `PATCH`, `DELETE`, `POST`) have separate
//! quotas. The limiter is keyed by the token's `sub`, so the middleware verifies the token
//! itself; a request without a valid token passes through and its handler answers 401.

use std::{num::NonZeroU32, time::Duration};

use crate::{auth::Authenticator, error::ApiError, metrics::HttpMetrics};
use actix_web::{
    Error, HttpMessage,
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{
        Method,
        header::{self, HeaderMap, HeaderName, HeaderValue},
    },
    middleware::Next,
    web::Data,
};
use async_trait::async_trait;
use domain::UserId;

/// `RateLimit-Limit`: the quota of the window.
pub const RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
/// `RateLimit-Remaining`: requests left in the window.
pub const RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
/// `RateLimit-Reset`: seconds until the whole quota is available again.
pub const RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// Which quota a request counts against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccessKind {
    /// `GET`, `HEAD` and anything that is not a write.
    Read,
    /// `PUT`, `PATCH`, `DELETE`, `POST`.
    Write,
}

impl AccessKind {
    /// The kind of a request method.
    pub fn of(method: &Method) -> Self {
        match *method {
            Method::PUT | Method::PATCH | Method::DELETE | Method::POST => AccessKind::Write,
            _ => AccessKind::Read,
        }
    }

    /// `read` or `write` (metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            AccessKind::Read => "read",
            AccessKind::Write => "write",
        }
    }
}

/// The state of one user's quota, as the `RateLimit-*` headers report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuotaState {
    /// Requests allowed per window.
    pub limit: u32,
    /// Requests still allowed now.
    pub remaining: u32,
    /// Time until the whole quota is available again.
    pub reset_after: Duration,
}

/// The limiter's answer for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead; the request has been counted.
    Allowed(QuotaState),
    /// Refused until `retry_after` has passed.
    Limited {
        /// The quota (its `remaining` is 0).
        state: QuotaState,
        /// Time until the next request of this kind would be allowed.
        retry_after: Duration,
    },
}

/// Counts requests per user and kind. Async so that a limiter shared by every instance
/// (e.g. in a network store) can replace the in-process one.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Counts one request of `kind` by `user` and says whether it may proceed.
    async fn check(&self, user: UserId, kind: AccessKind) -> Decision {
        self.check_n(user, kind, NonZeroU32::MIN).await
    }

    /// Counts `n` requests of `kind` at once (an operation worth several, such as an import
    /// that changes `n` items): all are allowed, or none is counted.
    async fn check_n(&self, user: UserId, kind: AccessKind, n: NonZeroU32) -> Decision;
}

/// Middleware of the routes limited per user (the `/api/v1` scope, which leaves out the
/// public schema; `/internal` is not limited, as a service acts for many users): counts the
/// request against the caller's quota; refuses it with 429 once the quota is spent. Allowed
/// responses carry the `RateLimit-*` headers too.
///
/// It wraps routes rather than inspecting the path, so it sees exactly the requests the
/// router sends to those handlers, whatever the spelling of the path.
///
/// # Errors
/// Only what the inner service returns.
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let limited = req
        .app_data::<Data<dyn RateLimiter>>()
        .cloned()
        .zip(caller(&req));
    let Some((limiter, user)) = limited else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let kind = AccessKind::of(req.method());
    match limiter.check(user, kind).await {
        Decision::Allowed(state) => {
            let mut response = next.call(req).await?;
            insert_quota_headers(response.headers_mut(), &state);
            Ok(response.map_into_left_body())
        }
        Decision::Limited { state, retry_after } => {
            if let Some(metrics) = req.app_data::<Data<HttpMetrics>>() {
                metrics.rate_limited(kind);
            }
            let refusal = ApiError::RateLimited {
                kind,
                state,
                retry_after,
            };
            Ok(req.error_response(refusal).map_into_right_body())
        }
    }
}

/// Counts `n` more requests of `kind` by `user` from inside a handler (an import worth
/// several writes, a stream opened with a ticket the middleware could not attribute); all or
/// none. Without a limiter nothing is counted.
///
/// # Errors
/// [`ApiError::RateLimited`] when the quota has fewer left.
pub async fn count_more(
    req: &actix_web::HttpRequest,
    user: UserId,
    kind: AccessKind,
    n: NonZeroU32,
) -> Result<(), ApiError> {
    let Some(limiter) = req.app_data::<Data<dyn RateLimiter>>() else {
        return Ok(());
    };
    match limiter.check_n(user, kind, n).await {
        Decision::Allowed(_) => Ok(()),
        Decision::Limited { state, retry_after } => Err(ApiError::RateLimited {
            kind,
            state,
            retry_after,
        }),
    }
}

/// The user named by a valid bearer token, if any. The verified principal is kept in the
/// request's extensions, so the handler's extractor does not verify the token again.
fn caller(req: &ServiceRequest) -> Option<UserId> {
    let authenticator = req.app_data::<Data<Authenticator>>()?;
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = crate::auth::bearer_token(value)?;
    let principal = authenticator.verify(token).ok()?;
    let user = principal.user_id;
    req.extensions_mut().insert(principal);
    Some(user)
}

/// Whole seconds, rounded up: a client that waits this long is not refused again.
fn ceil_seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn insert_quota_headers(headers: &mut HeaderMap, state: &QuotaState) {
    for (name, value) in quota_headers(state) {
        headers.insert(name, value);
    }
}

/// The `RateLimit-*` headers of a quota.
pub(crate) fn quota_headers(state: &QuotaState) -> [(HeaderName, HeaderValue); 3] {
    [
        (RATELIMIT_LIMIT, HeaderValue::from(state.limit)),
        (RATELIMIT_REMAINING, HeaderValue::from(state.remaining)),
        (
            RATELIMIT_RESET,
            HeaderValue::from(ceil_seconds(state.reset_after)),
        ),
    ]
}

/// `Retry-After` of a refusal: whole seconds, at least one.
pub(crate) fn retry_seconds(retry_after: Duration) -> u64 {
    ceil_seconds(retry_after).max(1)
}

#[cfg(test)]
mod tests {
    use actix_web::ResponseError;

    use super::*;
    use crate::error::PROBLEM_JSON;

    #[test]
    fn methods_map_to_kinds() {
        assert_eq!(AccessKind::of(&Method::GET), AccessKind::Read);
        assert_eq!(AccessKind::of(&Method::HEAD), AccessKind::Read);
        for method in [Method::PUT, Method::PATCH, Method::DELETE, Method::POST] {
            assert_eq!(AccessKind::of(&method), AccessKind::Write, "{method}");
        }
    }

    #[test]
    fn seconds_round_up() {
        assert_eq!(ceil_seconds(Duration::from_millis(36_000)), 36);
        assert_eq!(ceil_seconds(Duration::from_millis(35_001)), 36);
        assert_eq!(ceil_seconds(Duration::ZERO), 0);
    }

    #[test]
    fn refusal_is_problem_json_with_retry_after_and_quota_headers() {
        let state = QuotaState {
            limit: 100,
            remaining: 0,
            reset_after: Duration::from_millis(3_599_500),
        };
        let response = ApiError::RateLimited {
            kind: AccessKind::Write,
            state,
            retry_after: Duration::from_millis(35_200),
        }
        .error_response();
        assert_eq!(response.status().as_u16(), 429);
        let headers = response.headers();
        let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        assert_eq!(get("content-type"), Some(PROBLEM_JSON));
        assert_eq!(get("retry-after"), Some("36"));
        assert_eq!(get("ratelimit-limit"), Some("100"));
        assert_eq!(get("ratelimit-remaining"), Some("0"));
        assert_eq!(get("ratelimit-reset"), Some("3600"));
    }
}
