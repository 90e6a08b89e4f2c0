//! Rate-limit counters shared by every instance of the service, in a Redis-protocol store
//! (Redis 6 or newer, Valkey, Dragonfly: plain commands and Lua, no modules).
//!
//! A decision is one round trip: GCRA in one Lua script (`gcra.lua`) that the store runs
//! atomically, sent as `EVALSHA` and loaded again when the store answers `NOSCRIPT` (after a
//! restart or `SCRIPT FLUSH`). Each counter is one key holding the instant its quota is full
//! again, and expiring then, so the store holds only users active within the last window.
//!
//! The connection is one multiplexed connection that reconnects by itself and is opened on
//! first use, so an unreachable store never stops start-up. Every call is bounded by a timeout;
//! what to do when the store fails is the caller's choice.

use std::{num::NonZeroU32, time::Duration};

use redis::{
    Client, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

/// A store URL that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not a `redis://` or `rediss://` URL (the URL is not repeated: it may hold a password).
    #[error("not a usable redis:// or rediss:// URL ({0})")]
    Url(&'static str),
}

/// Why the store gave no decision.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No answer within the configured timeout.
    #[error("the store did not answer within {0:?}")]
    Timeout(Duration),
    /// The connection or the script failed.
    #[error("the store failed: {0}")]
    Failed(String),
}

/// The store's decision for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the request may proceed (it has been counted).
    pub allowed: bool,
    /// Requests still allowed now.
    pub remaining: u32,
    /// When refused: time until the next request would be allowed.
    pub retry_after: Duration,
}

/// GCRA counters in a Redis-protocol store.
pub struct RedisGcra {
    connection: ConnectionManager,
    script: Script,
    prefix: String,
    timeout: Duration,
}

impl RedisGcra {
    /// A limiter on the store at `url`, keys prefixed with `prefix`, every call bounded by
    /// `timeout`. Does not connect: the first call does.
    ///
    /// # Errors
    /// [`ConfigError`] when `url` is not a usable `redis://` or `rediss://` URL.
    pub fn connect_lazily(url: &str, prefix: &str, timeout: Duration) -> Result<Self, ConfigError> {
        let client = client(url)?;
        // Reconnection is retried in the background by the manager; a caller never waits for
        // it longer than `timeout`.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout.max(Duration::from_secs(1))))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|_| ConfigError::Url("the client cannot be built from it"))?;
        Ok(Self {
            connection,
            script: Script::new(include_str!("gcra.lua")),
            prefix: prefix.to_owned(),
            timeout,
        })
    }

    /// Checks that `url` is a usable store URL, without connecting (configuration checks).
    ///
    /// # Errors
    /// [`ConfigError`] when it is not.
    pub fn check_url(url: &str) -> Result<(), ConfigError> {
        client(url).map(drop)
    }

    /// Counts `cost` requests at once (all or none) against the counter `key`, which allows
    /// `limit` requests at once and gains one back every `period / limit`.
    ///
    /// # Errors
    /// [`StoreError`] when the store does not answer within the timeout or fails.
    pub async fn check(
        &self,
        key: &str,
        limit: NonZeroU32,
        period: Duration,
        cost: NonZeroU32,
    ) -> Result<Verdict, StoreError> {
        let interval_us = (period.as_micros() / u128::from(limit.get())).max(1);
        let mut connection = self.connection.clone();
        let mut invocation = self.script.key(format!("{}{key}", self.prefix));
        invocation
            .arg(u64::try_from(interval_us).unwrap_or(u64::MAX))
            .arg(limit.get())
            .arg(cost.get());
        let answer: (u8, u64, u64) =
            tokio::time::timeout(self.timeout, invocation.invoke_async(&mut connection))
                .await
                .map_err(|_| StoreError::Timeout(self.timeout))?
                .map_err(|e| StoreError::Failed(e.to_string()))?;
        let (allowed, remaining, retry_after_us) = answer;
        Ok(Verdict {
            allowed: allowed == 1,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            retry_after: Duration::from_micros(retry_after_us),
        })
    }
}

fn client(url: &str) -> Result<Client, ConfigError> {
    if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
        return Err(ConfigError::Url("the scheme must be redis or rediss"));
    }
    Client::open(url).map_err(|_| ConfigError::Url("it does not parse"))
}
