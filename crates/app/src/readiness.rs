//! Readiness probe: the database answers a ping within the pool's timeouts.

use adapter_http::Readiness;
use adapter_postgres::Pool;
use async_trait::async_trait;

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
