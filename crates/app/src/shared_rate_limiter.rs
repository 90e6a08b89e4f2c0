//! The [`RateLimiter`] shared by every instance: per-user quotas counted in a Redis-protocol
//! store, so that N instances behind a load balancer enforce one quota, not N.
//!
//! A store failure never takes the API down and never lifts the limits: when the store fails
//! or is slower than its timeout, the in-process limiter decides (each instance enforces the
//! quota on its own meanwhile), and the store is left alone for [`RETRY_AFTER_FAILURE`] so that
//! requests do not each wait for the timeout. The next request after that tries the store
//! again, so the shared quota applies again about a second after the store is back.

use std::{
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use adapter_http::{AccessKind, Decision, RateLimiter};
use adapter_redis::{RedisGcra, Verdict};
use async_trait::async_trait;
use domain::UserId;
use prometheus::IntCounter;

use crate::rate_limiter::{GovernorRateLimiter, allowed, limited};

/// How long the store is left alone after it failed.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);
/// At most one warning about the store per this interval.
const WARNING_INTERVAL: Duration = Duration::from_secs(10);
/// The window of a quota.
const HOUR: Duration = Duration::from_secs(3600);
/// Prefix of every key in the store (`rl:r:<user>`, `rl:w:<user>`).
pub const KEY_PREFIX: &str = "rl:";

/// Quotas in a shared store, with the in-process limiter as the fallback.
pub struct SharedRateLimiter {
    store: RedisGcra,
    local: Arc<GovernorRateLimiter>,
    reads: NonZeroU32,
    writes: NonZeroU32,
    health: StoreHealth,
    fallbacks: IntCounter,
}

impl SharedRateLimiter {
    /// Counts in `store`; `local` (with the same quotas) decides while the store fails, and
    /// `fallbacks` counts the requests it decided.
    pub fn new(
        store: RedisGcra,
        local: Arc<GovernorRateLimiter>,
        reads_per_hour: NonZeroU32,
        writes_per_hour: NonZeroU32,
        fallbacks: IntCounter,
    ) -> Self {
        Self {
            store,
            local,
            reads: reads_per_hour,
            writes: writes_per_hour,
            health: StoreHealth::new(),
            fallbacks,
        }
    }

    async fn shared(&self, user: UserId, kind: AccessKind, n: NonZeroU32) -> Option<Decision> {
        if self.health.left_alone() {
            return None;
        }
        let (limit, tag) = match kind {
            AccessKind::Read => (self.reads, 'r'),
            AccessKind::Write => (self.writes, 'w'),
        };
        let key = format!("{tag}:{user}");
        match self.store.check(&key, limit, HOUR, n).await {
            Ok(verdict) => {
                self.health.answered();
                Some(decision(limit, verdict))
            }
            Err(error) => {
                self.health.failed(&error);
                None
            }
        }
    }
}

#[async_trait]
impl RateLimiter for SharedRateLimiter {
    async fn check_n(&self, user: UserId, kind: AccessKind, n: NonZeroU32) -> Decision {
        if let Some(decision) = self.shared(user, kind, n).await {
            return decision;
        }
        self.fallbacks.inc();
        self.local.decide_n(user, kind, n)
    }
}

fn decision(limit: NonZeroU32, verdict: Verdict) -> Decision {
    let per_request = HOUR / limit.get();
    if verdict.allowed {
        allowed(limit.get(), verdict.remaining, per_request)
    } else {
        limited(limit.get(), verdict.retry_after, per_request)
    }
}

/// Whether the store failed recently, and when it was last warned about.
struct StoreHealth {
    epoch: Instant,
    /// Milliseconds since `epoch` until which the store is left alone.
    left_alone_until: AtomicU64,
    /// Milliseconds since `epoch` of the last warning, `u64::MAX` before the first.
    last_warning: AtomicU64,
    degraded: AtomicBool,
}

impl StoreHealth {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            left_alone_until: AtomicU64::new(0),
            last_warning: AtomicU64::new(u64::MAX),
            degraded: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn left_alone(&self) -> bool {
        self.now_ms() < self.left_alone_until.load(Ordering::Relaxed)
    }

    fn failed(&self, error: &adapter_redis::StoreError) {
        let now = self.now_ms();
        let pause = u64::try_from(RETRY_AFTER_FAILURE.as_millis()).unwrap_or(u64::MAX);
        self.left_alone_until
            .store(now.saturating_add(pause), Ordering::Relaxed);
        self.degraded.store(true, Ordering::Relaxed);
        let last = self.last_warning.load(Ordering::Relaxed);
        let due = last == u64::MAX
            || now.saturating_sub(last) >= u64::try_from(WARNING_INTERVAL.as_millis()).unwrap_or(0);
        // One instance of many concurrent failures wins the exchange and warns.
        if due
            && self
                .last_warning
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                %error,
                "rate-limit store unavailable: each instance limits on its own until it answers"
            );
        }
    }

    fn answered(&self) {
        if self.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!("rate-limit store answers again: quotas are shared again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_verdicts_give_the_same_headers_as_the_in_process_limiter() {
        let five = NonZeroU32::new(5).unwrap();
        let allowed = decision(
            five,
            Verdict {
                allowed: true,
                remaining: 3,
                retry_after: Duration::ZERO,
            },
        );
        let Decision::Allowed(state) = allowed else {
            panic!("{allowed:?}");
        };
        // Two spent, one back every 720 s.
        assert_eq!((state.limit, state.remaining), (5, 3));
        assert_eq!(state.reset_after, Duration::from_secs(1440));

        let refused = decision(
            five,
            Verdict {
                allowed: false,
                remaining: 0,
                retry_after: Duration::from_secs(700),
            },
        );
        let Decision::Limited { state, retry_after } = refused else {
            panic!("{refused:?}");
        };
        assert_eq!(retry_after, Duration::from_secs(700));
        assert_eq!(state.reset_after, Duration::from_secs(700 + 4 * 720));
    }

    #[test]
    fn after_a_failure_the_store_is_left_alone_for_a_while() {
        let health = StoreHealth::new();
        assert!(!health.left_alone());

        health.failed(&adapter_redis::StoreError::Timeout(Duration::from_millis(
            50,
        )));

        assert!(health.left_alone());
    }

    #[test]
    fn the_store_is_asked_again_once_the_pause_is_over() {
        let health = StoreHealth::new();
        health.failed(&adapter_redis::StoreError::Timeout(Duration::from_millis(
            50,
        )));
        // As if the failure were older than the pause.
        health.left_alone_until.store(0, Ordering::Relaxed);

        assert!(!health.left_alone());
    }
}
