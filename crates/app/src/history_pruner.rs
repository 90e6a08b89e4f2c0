//! The background pruner of the history of changes: every `interval`, one walk over the users
//! in small batches (see `PgHistoryRepository::prune_batch`), removing what the retention no
//! longer keeps. Every instance runs one; batches are idempotent, so instances that walk at
//! the same time only share the work.

use std::time::Duration;

use adapter_postgres::PgHistoryRepository;
use domain::history::{Pruned, Retention};
use tokio::task::JoinHandle;

/// A pause between batches, so a long walk never holds a connection or the database's
/// attention for long.
const PAUSE_BETWEEN_BATCHES: Duration = Duration::from_millis(20);

/// Prunes every `interval` (the first walk right away) until the task is aborted.
pub fn spawn_pruner(
    history: PgHistoryRepository,
    retention: Retention,
    interval: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match walk(&history, retention).await {
                Ok(pruned) if pruned != Pruned::default() => tracing::info!(
                    beyond_versions = pruned.beyond_versions,
                    too_old = pruned.too_old,
                    "history pruned"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "history pruning failed; retried later"),
            }
        }
    })
}

/// One walk over every user's history.
async fn walk(
    history: &PgHistoryRepository,
    retention: Retention,
) -> Result<Pruned, domain::RepositoryError> {
    let mut total = Pruned::default();
    let mut after = None;
    loop {
        let (pruned, next) = history.prune_batch(retention, after).await?;
        total.beyond_versions += pruned.beyond_versions;
        total.too_old += pruned.too_old;
        match next {
            Some(user) => after = Some(user),
            None => return Ok(total),
        }
        tokio::time::sleep(PAUSE_BETWEEN_BATCHES).await;
    }
}
