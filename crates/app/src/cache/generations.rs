//! Generation counters: the guard that keeps a value loaded before an invalidation from being
//! served after it.
//!
//! Every cached value carries the generation of its user, read *before* the load started.
//! An invalidation bumps the generation; a reader accepts a cached value only if its
//! generation is at least the one the reader saw when it started. So a slow load that lands
//! in the cache after an invalidation is never served to a request that began after it, and
//! no entry has to be found and removed for an invalidation to take effect (the per-user
//! listings included).
//!
//! Users share a fixed number of counters (stripes), so memory does not grow with users; a
//! bump also invalidates the entries of the users sharing the stripe, which only costs them a
//! reload.

use std::{
    hash::BuildHasher,
    sync::atomic::{AtomicU64, Ordering},
};

use domain::UserId;

/// Stripes per cache: an invalidation costs 1/4096 of the cache a reload.
const STRIPES: usize = 4096;

/// The generation counters of one cache.
pub struct Generations {
    stripes: Box<[AtomicU64]>,
    // Seeded per process, so clients cannot pick user ids that share a stripe on purpose.
    hasher: std::hash::RandomState,
}

impl Generations {
    /// All counters at zero.
    pub fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn stripe(&self, user: UserId) -> &AtomicU64 {
        let index = (self.hasher.hash_one(user) as usize) % self.stripes.len();
        &self.stripes[index]
    }

    /// The current generation of `user`'s entries.
    pub fn current(&self, user: UserId) -> u64 {
        // SeqCst throughout: the ordering argument above is about real time across tasks.
        self.stripe(user).load(Ordering::SeqCst)
    }

    /// Makes every entry of `user` loaded so far stale.
    pub fn bump(&self, user: UserId) {
        self.stripe(user).fetch_add(1, Ordering::SeqCst);
    }

    /// Whether `a` and `b` share a counter.
    #[cfg(test)]
    pub fn same_stripe(&self, a: UserId, b: UserId) -> bool {
        std::ptr::eq(self.stripe(a), self.stripe(b))
    }

    /// Makes every entry loaded so far stale.
    pub fn bump_all(&self) {
        for stripe in &*self.stripes {
            stripe.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Default for Generations {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn bumps_are_per_user_and_global() {
        let generations = Generations::new();
        let (alice, bob) = (UserId::new(Uuid::new_v4()), UserId::new(Uuid::new_v4()));
        let (a0, b0) = (generations.current(alice), generations.current(bob));
        generations.bump(alice);
        assert!(generations.current(alice) > a0);
        generations.bump_all();
        assert!(generations.current(bob) > b0);
    }
}
