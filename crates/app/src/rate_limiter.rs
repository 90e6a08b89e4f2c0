//! The in-process [`RateLimiter`]: two governor keyed limiters (reads, writes) per user, and
//! the timer that evicts idle users so memory stays bounded.
//!
//! A quota of `n` per hour is GCRA with burst `n` and one request regained every `1h / n`:
//! a user may spend the whole hour's quota at once, then one more every `1h / n`.

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use adapter_http::{AccessKind, Decision, QuotaState, RateLimiter};
use async_trait::async_trait;
use domain::UserId;
use governor::{
    Quota,
    clock::{Clock, DefaultClock},
    middleware::StateInformationMiddleware,
    state::keyed::DefaultKeyedStateStore,
};
use tokio::task::JoinHandle;

/// How often idle users are evicted.
pub const EVICTION_INTERVAL: Duration = Duration::from_secs(60);

/// One governor keyed limiter that reports the remaining burst on success.
type Keyed<C> =
    governor::RateLimiter<UserId, DefaultKeyedStateStore<UserId>, C, StateInformationMiddleware>;

/// Per-user read and write quotas, in memory (one instance's view: behind a load balancer
/// each instance counts its own share).
pub struct GovernorRateLimiter<C: Clock = DefaultClock> {
    reads: Limiter<C>,
    writes: Limiter<C>,
}

struct Limiter<C: Clock> {
    keyed: Keyed<C>,
    quota: Quota,
}

impl GovernorRateLimiter<DefaultClock> {
    /// Limits each user to `reads_per_hour` reads and `writes_per_hour` writes per hour.
    pub fn per_hour(reads_per_hour: NonZeroU32, writes_per_hour: NonZeroU32) -> Self {
        Self::with_clock(
            Quota::per_hour(reads_per_hour),
            Quota::per_hour(writes_per_hour),
            &DefaultClock::default(),
        )
    }
}

impl<C: Clock + Clone> GovernorRateLimiter<C> {
    /// Limits with explicit quotas and clock (tests use a fake clock).
    pub fn with_clock(reads: Quota, writes: Quota, clock: &C) -> Self {
        Self {
            reads: Limiter::new(reads, clock.clone()),
            writes: Limiter::new(writes, clock.clone()),
        }
    }
}

impl<C: Clock> GovernorRateLimiter<C> {
    /// Checks and counts one request (the port's logic, without the async wrapper).
    pub fn decide(&self, user: UserId, kind: AccessKind) -> Decision {
        self.decide_n(user, kind, NonZeroU32::MIN)
    }

    /// Checks and counts `n` requests at once: all, or none.
    pub fn decide_n(&self, user: UserId, kind: AccessKind, n: NonZeroU32) -> Decision {
        match kind {
            AccessKind::Read => self.reads.decide(user, n),
            AccessKind::Write => self.writes.decide(user, n),
        }
    }

    /// Forgets users whose quota is full again (so indistinguishable from a new user), then
    /// releases the freed memory.
    pub fn evict_idle(&self) {
        for limiter in [&self.reads, &self.writes] {
            limiter.keyed.retain_recent();
            limiter.keyed.shrink_to_fit();
        }
    }

    /// Users currently tracked, reads and writes counted separately.
    pub fn len(&self) -> usize {
        self.reads.keyed.len() + self.writes.keyed.len()
    }

    /// Whether no user is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<C: Clock> Limiter<C> {
    fn new(quota: Quota, clock: C) -> Self {
        let keyed = Keyed::new(quota, DefaultKeyedStateStore::default(), clock);
        Self { keyed, quota }
    }

    fn decide(&self, user: UserId, n: NonZeroU32) -> Decision {
        let limit = self.quota.burst_size().get();
        let per_request = self.quota.replenish_interval();
        match self.keyed.check_key_n(&user, n) {
            Ok(Ok(snapshot)) => allowed(limit, snapshot.remaining_burst_capacity(), per_request),
            Ok(Err(not_until)) => limited(
                limit,
                not_until.wait_time_from(self.keyed.clock().now()),
                per_request,
            ),
            // More than the whole quota: never allowed; the quota is whole again after this.
            Err(_) => limited(limit, per_request * limit, per_request),
        }
    }
}

/// An allowed request of a GCRA quota of `limit` that regains one request every `per_request`.
/// Each spent request comes back after `per_request`; the exact arrival times are not known
/// here, so the reset is exact to within one `per_request`, never less.
pub(crate) fn allowed(limit: u32, remaining: u32, per_request: Duration) -> Decision {
    Decision::Allowed(QuotaState {
        limit,
        remaining,
        reset_after: per_request * limit.saturating_sub(remaining),
    })
}

/// A refused request: the next one comes back after `retry_after`, the rest one by one.
pub(crate) fn limited(limit: u32, retry_after: Duration, per_request: Duration) -> Decision {
    Decision::Limited {
        state: QuotaState {
            limit,
            remaining: 0,
            reset_after: retry_after + per_request * limit.saturating_sub(1),
        },
        retry_after,
    }
}

#[async_trait]
impl<C> RateLimiter for GovernorRateLimiter<C>
where
    C: Clock + Send + Sync,
    C::Instant: Send + Sync,
{
    async fn check_n(&self, user: UserId, kind: AccessKind, n: NonZeroU32) -> Decision {
        self.decide_n(user, kind, n)
    }
}

/// Evicts idle users every `every` until the returned task is aborted.
pub fn spawn_eviction(limiter: Arc<GovernorRateLimiter>, every: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            limiter.evict_idle();
            tracing::debug!(users = limiter.len(), "rate limiter evicted idle users");
        }
    })
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;
    use uuid::Uuid;

    use super::*;

    fn limiter(
        reads: u32,
        writes: u32,
    ) -> (GovernorRateLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let limiter = GovernorRateLimiter::with_clock(
            Quota::per_hour(NonZeroU32::new(reads).unwrap()),
            Quota::per_hour(NonZeroU32::new(writes).unwrap()),
            &clock,
        );
        (limiter, clock)
    }

    fn user() -> UserId {
        UserId::new(Uuid::new_v4())
    }

    fn allowed(decision: Decision) -> QuotaState {
        match decision {
            Decision::Allowed(state) => state,
            Decision::Limited { .. } => panic!("expected an allowed request, got {decision:?}"),
        }
    }

    #[test]
    fn the_quota_counts_down_then_refuses_with_the_wait() {
        let (limiter, _clock) = limiter(1000, 4);
        let alice = user();
        for expected_remaining in [3, 2, 1, 0] {
            let state = allowed(limiter.decide(alice, AccessKind::Write));
            assert_eq!(state.limit, 4);
            assert_eq!(state.remaining, expected_remaining);
        }
        let Decision::Limited { state, retry_after } = limiter.decide(alice, AccessKind::Write)
        else {
            panic!("the fifth write within the hour is refused");
        };
        // One write comes back every 15 minutes; the whole quota after an hour.
        assert_eq!(retry_after, Duration::from_secs(15 * 60));
        assert_eq!(state.remaining, 0);
        assert_eq!(state.reset_after, Duration::from_secs(60 * 60));
    }

    #[test]
    fn reset_counts_the_time_until_the_whole_quota_is_back() {
        let (limiter, _clock) = limiter(1000, 4);
        let first = allowed(limiter.decide(user(), AccessKind::Write));
        assert_eq!(first.reset_after, Duration::from_secs(15 * 60));
    }

    #[test]
    fn reads_and_writes_and_users_are_counted_separately() {
        let (limiter, _clock) = limiter(2, 1);
        let (alice, bob) = (user(), user());
        allowed(limiter.decide(alice, AccessKind::Write));
        assert!(matches!(
            limiter.decide(alice, AccessKind::Write),
            Decision::Limited { .. }
        ));
        assert_eq!(
            allowed(limiter.decide(alice, AccessKind::Read)).remaining,
            1
        );
        assert_eq!(allowed(limiter.decide(bob, AccessKind::Write)).remaining, 0);
    }

    #[test]
    fn spent_requests_come_back_over_time() {
        let (limiter, clock) = limiter(1000, 2);
        let alice = user();
        allowed(limiter.decide(alice, AccessKind::Write));
        allowed(limiter.decide(alice, AccessKind::Write));
        clock.advance(Duration::from_secs(30 * 60));
        assert_eq!(
            allowed(limiter.decide(alice, AccessKind::Write)).remaining,
            0
        );
    }

    #[test]
    fn eviction_keeps_only_users_seen_within_the_window() {
        let (limiter, clock) = limiter(1000, 100);
        for _ in 0..10_000 {
            allowed(limiter.decide(user(), AccessKind::Write));
        }
        assert_eq!(limiter.len(), 10_000);
        limiter.evict_idle();
        assert_eq!(limiter.len(), 10_000, "users seen a moment ago are kept");

        clock.advance(Duration::from_secs(60 * 60));
        let active = user();
        allowed(limiter.decide(active, AccessKind::Read));
        limiter.evict_idle();
        assert_eq!(
            limiter.len(),
            1,
            "only the user seen within the hour is kept"
        );
        assert_eq!(
            allowed(limiter.decide(active, AccessKind::Read)).remaining,
            998,
            "a kept user keeps their count"
        );
    }
}
