//! The app's metrics, registered in the registry that `/metrics` exposes: cache hits, misses,
//! entries and bytes, crypto operations, database pool state, change-feed reconnects and the rate
//! limiter's size. Values owned elsewhere (the pool's status, the feed's counter) are read at
//! scrape time. No label names a user or a key.

use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};

use adapter_postgres::Pool;
use prometheus::{
    IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    core::{Collector, Desc},
    proto::MetricFamily,
};

use crate::{
    cache::{CacheCounters, Caches},
    counting_cipher::CipherCounters,
    rate_limiter::GovernorRateLimiter,
};

/// Counters the app's decorators increment.
pub struct AppMetrics {
    registry: Registry,
    cache_hits: IntCounterVec,
    cache_misses: IntCounterVec,
    crypto: IntCounterVec,
}

impl AppMetrics {
    /// Registers the counters in `registry`.
    ///
    /// # Errors
    /// When a metric of the same name is already registered.
    pub fn register(registry: Registry) -> prometheus::Result<Self> {
        let cache_hits = IntCounterVec::new(
            Opts::new(
                "user_settings_cache_hits_total",
                "Reads answered from a cache, by cache.",
            ),
            &["cache"],
        )?;
        let cache_misses = IntCounterVec::new(
            Opts::new(
                "user_settings_cache_misses_total",
                "Reads a cache passed to the database, by cache.",
            ),
            &["cache"],
        )?;
        let crypto = IntCounterVec::new(
            Opts::new(
                "user_settings_crypto_operations_total",
                "Secret seals and opens, by operation and outcome.",
            ),
            &["operation", "outcome"],
        )?;
        registry.register(Box::new(cache_hits.clone()))?;
        registry.register(Box::new(cache_misses.clone()))?;
        registry.register(Box::new(crypto.clone()))?;
        Ok(Self {
            registry,
            cache_hits,
            cache_misses,
            crypto,
        })
    }

    /// The counters of the cache named `cache`.
    pub fn cache_counters(&self, cache: &str) -> CacheCounters {
        CacheCounters {
            hits: self.cache_hits.with_label_values(&[cache]),
            misses: self.cache_misses.with_label_values(&[cache]),
        }
    }

    /// The counters of the cipher.
    pub fn cipher_counters(&self) -> CipherCounters {
        CipherCounters::new(&self.crypto)
    }

    /// Pool gauges, read from `pool` at scrape time.
    ///
    /// # Errors
    /// When a metric of the same name is already registered.
    pub fn register_pool(&self, pool: &Pool) -> prometheus::Result<()> {
        type Read = fn(&Pool) -> usize;
        let gauges: [(&str, &str, Read); 4] = [
            (
                "user_settings_db_pool_max_size",
                "Most connections the pools opened so far may hold (one per HTTP worker, one shared).",
                |p| p.status().max_size,
            ),
            (
                "user_settings_db_pool_size",
                "Connections the pools hold open.",
                |p| p.status().size,
            ),
            (
                "user_settings_db_pool_available",
                "Open connections idle and ready for a request.",
                |p| p.status().available,
            ),
            (
                "user_settings_db_pool_waiting",
                "Requests waiting for a connection.",
                |p| p.status().waiting,
            ),
        ];
        for (name, help, read) in gauges {
            let pool = pool.clone();
            self.registry.register(Box::new(Sampled::new(
                IntGauge::new(name, help)?,
                move |gauge| gauge.set(i64::try_from(read(&pool)).unwrap_or(i64::MAX)),
            )))?;
        }
        Ok(())
    }

    /// The change feed's reconnect count, read at scrape time.
    ///
    /// # Errors
    /// When a metric of the same name is already registered.
    pub fn register_change_feed(&self, reconnects: Arc<AtomicU64>) -> prometheus::Result<()> {
        let counter = IntCounter::new(
            "user_settings_change_feed_reconnects_total",
            "Times the change feed re-established its LISTEN connection (each flushes the caches).",
        )?;
        // The feed owns the count; the counter follows it. The lock keeps two concurrent
        // scrapes from both adding the same difference.
        let lock = Mutex::new(());
        self.registry
            .register(Box::new(Sampled::new(counter, move |counter| {
                let _guard = lock.lock();
                let total = reconnects.load(Ordering::Relaxed);
                let shown = counter.get();
                if total > shown {
                    counter.inc_by(total - shown);
                }
            })))
    }

    /// Cache sizes (entries and bytes), read at scrape time.
    ///
    /// # Errors
    /// When a metric of the same name is already registered.
    pub fn register_cache_sizes(&self, caches: Caches) -> prometheus::Result<()> {
        type Read = fn(&Caches) -> [(&'static str, Option<u64>); 3];
        let gauges: [(&str, &str, Read); 2] = [
            (
                "user_settings_cache_entries",
                "Entries held, by cache (approximate).",
                |caches| {
                    let (by_key, listings) =
                        caches.settings.as_ref().map(|s| s.entry_counts()).unzip();
                    [
                        (SETTINGS_CACHE, by_key),
                        (SETTINGS_LIST_CACHE, listings),
                        (
                            PREFERENCES_CACHE,
                            caches.preferences.as_ref().map(|p| p.entry_count()),
                        ),
                    ]
                },
            ),
            (
                "user_settings_cache_bytes",
                "Bytes held, by cache: the estimate of what the entries pin that is charged \
                 against the cache's budget (approximate).",
                |caches| {
                    let (by_key, listings) =
                        caches.settings.as_ref().map(|s| s.weighted_bytes()).unzip();
                    [
                        (SETTINGS_CACHE, by_key),
                        (SETTINGS_LIST_CACHE, listings),
                        (
                            PREFERENCES_CACHE,
                            caches.preferences.as_ref().map(|p| p.weighted_bytes()),
                        ),
                    ]
                },
            ),
        ];
        for (name, help, read) in gauges {
            let caches = caches.clone();
            let gauges = IntGaugeVec::new(Opts::new(name, help), &["cache"])?;
            self.registry
                .register(Box::new(Sampled::new(gauges, move |gauges| {
                    // A disabled cache has no series.
                    for (cache, value) in read(&caches) {
                        if let Some(value) = value {
                            gauges
                                .with_label_values(&[cache])
                                .set(i64::try_from(value).unwrap_or(i64::MAX));
                        }
                    }
                })))?;
        }
        Ok(())
    }

    /// Users the rate limiter tracks, read at scrape time.
    ///
    /// # Errors
    /// When a metric of the same name is already registered.
    /// Registers and returns the counter of requests the in-process limiter decided because
    /// the shared rate-limit store failed.
    ///
    /// # Errors
    /// When a metric of the same name is already registered.
    pub fn register_rate_limit_store_errors(&self) -> prometheus::Result<IntCounter> {
        let counter = IntCounter::new(
            "user_settings_rate_limit_store_errors_total",
            "Requests the in-process limiter decided because the shared store failed or was slow.",
        )?;
        self.registry.register(Box::new(counter.clone()))?;
        Ok(counter)
    }

    pub fn register_rate_limiter(
        &self,
        limiter: Arc<GovernorRateLimiter>,
    ) -> prometheus::Result<()> {
        let gauge = IntGauge::new(
            "user_settings_rate_limiter_tracked_users",
            "Per-user quota states held in memory (reads and writes counted separately).",
        )?;
        self.registry
            .register(Box::new(Sampled::new(gauge, move |gauge| {
                gauge.set(i64::try_from(limiter.len()).unwrap_or(i64::MAX));
            })))
    }
}

/// Cache label of single settings.
pub const SETTINGS_CACHE: &str = "settings";
/// Cache label of settings listings.
pub const SETTINGS_LIST_CACHE: &str = "settings_list";
/// Cache label of preferences.
pub const PREFERENCES_CACHE: &str = "preferences";

/// A metric whose value is refreshed from its source at every scrape.
struct Sampled<M> {
    metric: M,
    refresh: Box<dyn Fn(&M) + Send + Sync>,
}

impl<M> Sampled<M> {
    fn new(metric: M, refresh: impl Fn(&M) + Send + Sync + 'static) -> Self {
        Self {
            metric,
            refresh: Box::new(refresh),
        }
    }
}

impl<M: Collector> Collector for Sampled<M> {
    fn desc(&self) -> Vec<&Desc> {
        self.metric.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        (self.refresh)(&self.metric);
        self.metric.collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use prometheus::{Encoder, TextEncoder};

    use super::*;

    fn render(registry: &Registry) -> String {
        let mut text = Vec::new();
        TextEncoder::new()
            .encode(&registry.gather(), &mut text)
            .unwrap();
        String::from_utf8(text).unwrap()
    }

    #[test]
    fn the_reconnect_counter_follows_the_feed_at_scrape_time() {
        let registry = Registry::new();
        let metrics = AppMetrics::register(registry.clone()).unwrap();
        let reconnects = Arc::new(AtomicU64::new(0));
        metrics
            .register_change_feed(Arc::clone(&reconnects))
            .unwrap();
        assert!(render(&registry).contains("user_settings_change_feed_reconnects_total 0"));
        reconnects.store(3, Ordering::Relaxed);
        assert!(render(&registry).contains("user_settings_change_feed_reconnects_total 3"));
        assert!(render(&registry).contains("user_settings_change_feed_reconnects_total 3"));
    }

    #[test]
    fn cache_counters_are_labelled_by_cache() {
        let registry = Registry::new();
        let metrics = AppMetrics::register(registry.clone()).unwrap();
        metrics.cache_counters(PREFERENCES_CACHE).hits.inc();
        assert!(
            render(&registry).contains(r#"user_settings_cache_hits_total{cache="preferences"} 1"#)
        );
    }
}
