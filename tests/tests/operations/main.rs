//! End-to-end tests of the operational behaviour: rate limits, caches shared across
//! instances, metrics, and what the API does while the database is away.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod caching;
mod listeners;
mod metrics;
mod outage;
mod rate_limits;
mod round_trips;
mod shared_rate_limits;
mod slow_requests;

/// A response header as text (empty when absent).
fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The path of one of the caller's settings.
fn setting(key: &str) -> String {
    format!("/api/v1/users/me/settings/{key}")
}
