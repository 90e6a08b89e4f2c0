//! Readiness probe: the database answers a ping within the pool's timeouts, and
//! [`CachedReadiness`], which shares one probe between callers so that `/health/ready` (no
//! token needed) cannot be used to take the API's pool connections.

use std::time::Duration;

use adapter_http::Readiness;
use adapter_postgres::Pool;
use async_trait::async_trait;
use tokio::{sync::Mutex, time::Instant};

/// How old a readiness answer may be.
pub const READINESS_MAX_AGE: Duration = Duration::from_secs(1);

/// Checks the pool.
pub struct PoolReadiness {
    pool: Pool,
}

impl PoolReadiness {
    /// Wraps a pool.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl Readiness for PoolReadiness {
    async fn check(&self) -> Result<(), String> {
        adapter_postgres::ping(&self.pool)
            .await
            .map_err(|e| e.to_string())
    }
}

/// `inner`'s answer, shared: at most one probe runs at a time, and its result (success or
/// failure) answers every caller that arrives within `max_age` of the probe's start.
///
/// Callers that arrive while a probe runs wait for it (it is bounded by the inner probe's
/// deadline) instead of starting their own. A new probe starts only for a caller that arrived
/// more than `max_age` after the last probe started, so probes start at least `max_age`
/// apart, however many callers there are.
pub struct CachedReadiness<R> {
    inner: R,
    max_age: Duration,
    last: Mutex<Option<Probe>>,
}

struct Probe {
    started: Instant,
    result: Result<(), String>,
}

impl<R> CachedReadiness<R> {
    /// Shares `inner`'s answers for `max_age`.
    pub fn new(inner: R, max_age: Duration) -> Self {
        Self {
            inner,
            max_age,
            last: Mutex::new(None),
        }
    }
}

#[async_trait]
impl<R: Readiness> Readiness for CachedReadiness<R> {
    async fn check(&self) -> Result<(), String> {
        let arrived = Instant::now();
        // Held across the probe: this is what makes concurrent callers share it. A caller
        // dropped mid-probe releases the lock without storing a result.
        let mut last = self.last.lock().await;
        if let Some(probe) = last.as_ref()
            && arrived.saturating_duration_since(probe.started) <= self.max_age
        {
            return probe.result.clone();
        }
        let started = Instant::now();
        let result = self.inner.check().await;
        *last = Some(Probe {
            started,
            result: result.clone(),
        });
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;

    /// Counts its probes; each takes `takes` and answers `answer`.
    struct Counting {
        probes: AtomicUsize,
        takes: Duration,
        answer: Result<(), String>,
    }

    impl Counting {
        fn new(takes: Duration, answer: Result<(), String>) -> Arc<Self> {
            Arc::new(Self {
                probes: AtomicUsize::new(0),
                takes,
                answer,
            })
        }

        fn probes(&self) -> usize {
            self.probes.load(Ordering::SeqCst)
        }
    }

    /// The probe as the cache holds it; the test keeps the other handle to count.
    struct Shared(Arc<Counting>);

    #[async_trait]
    impl Readiness for Shared {
        async fn check(&self) -> Result<(), String> {
            self.0.probes.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.0.takes).await;
            self.0.answer.clone()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_one_probe() {
        let fake = Counting::new(Duration::from_millis(300), Ok(()));
        let cached = Arc::new(CachedReadiness::new(
            Shared(Arc::clone(&fake)),
            READINESS_MAX_AGE,
        ));
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..200 {
            let cached = Arc::clone(&cached);
            callers.spawn(async move { cached.check().await });
        }
        while let Some(answer) = callers.join_next().await {
            assert_eq!(answer.unwrap(), Ok(()));
        }
        assert_eq!(fake.probes(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_of_callers_causes_at_most_one_probe_per_second() {
        let fake = Counting::new(Duration::from_millis(20), Ok(()));
        let cached = Arc::new(CachedReadiness::new(
            Shared(Arc::clone(&fake)),
            READINESS_MAX_AGE,
        ));
        // About 10 s of callers, three at once every 10 ms.
        let started = Instant::now();
        for _ in 0..1000 {
            let mut burst = tokio::task::JoinSet::new();
            for _ in 0..3 {
                let cached = Arc::clone(&cached);
                burst.spawn(async move { cached.check().await });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            while burst.join_next().await.is_some() {}
        }
        let (probes, elapsed) = (fake.probes(), started.elapsed());
        let most = elapsed.as_secs() as usize + 1;
        assert!(
            (2..=most).contains(&probes),
            "{probes} probes in {elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_is_shared_and_a_later_caller_probes_again() {
        let fake = Counting::new(Duration::ZERO, Err("down".to_owned()));
        let cached = CachedReadiness::new(Shared(Arc::clone(&fake)), READINESS_MAX_AGE);
        assert_eq!(cached.check().await, Err("down".to_owned()));
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(cached.check().await, Err("down".to_owned()));
        assert_eq!(fake.probes(), 1);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(cached.check().await, Err("down".to_owned()));
        assert_eq!(fake.probes(), 2);
    }
}
