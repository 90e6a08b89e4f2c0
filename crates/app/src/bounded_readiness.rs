//! A deadline around the readiness probe, so `/health/ready` answers within the database
//! timeout even when the database host stops answering in the middle of the ping.

use std::time::Duration;

use adapter_http::Readiness;
use async_trait::async_trait;

/// `inner`, failing when it takes longer than `limit`.
pub struct BoundedReadiness<R> {
    inner: R,
    limit: Duration,
}

impl<R> BoundedReadiness<R> {
    /// Bounds `inner` by `limit`.
    pub fn new(inner: R, limit: Duration) -> Self {
        Self { inner, limit }
    }
}

#[async_trait]
impl<R: Readiness> Readiness for BoundedReadiness<R> {
    async fn check(&self) -> Result<(), String> {
        tokio::time::timeout(self.limit, self.inner.check())
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "the database did not answer within {}",
                    humantime::format_duration(self.limit)
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Hanging;

    #[async_trait]
    impl Readiness for Hanging {
        async fn check(&self) -> Result<(), String> {
            std::future::pending().await
        }
    }

    #[tokio::test]
    async fn a_hanging_probe_fails_at_the_deadline() {
        let probe = BoundedReadiness::new(Hanging, Duration::from_millis(20));
        let result = probe.check().await;
        assert_eq!(
            result,
            Err("the database did not answer within 20ms".to_owned())
        );
    }
}
