//! A per-user bound on settings writes in flight on this instance. A write holds its request
//! body, its validated values and, while it waits for a pool connection and the user's row
//! lock, all of them at once: without a bound one user could hold many such requests.
//!
//! The permit is an extractor placed before the body's: a refused write (429
//! `too_many_concurrent_writes`, `Retry-After`) is answered before its body is read. The map
//! holds only users with a write in flight; the last permit of a user removes its entry.

use std::{
    collections::HashMap,
    future::{Ready, ready},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use actix_web::{FromRequest, HttpRequest, dev::Payload, web::Data};
use domain::UserId;

use crate::{auth::User, error::ApiError, state::ApiState};

/// The writes in flight per user, bounded by `per_user`.
#[derive(Debug)]
pub struct WritePermits {
    per_user: usize,
    in_flight: Mutex<HashMap<UserId, usize>>,
}

impl WritePermits {
    /// The default bound per user.
    pub const DEFAULT_PER_USER: usize = 4;

    /// At most `per_user` (at least 1) writes in flight per user.
    pub fn new(per_user: usize) -> Self {
        Self {
            per_user: per_user.max(1),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    /// A permit for one more write of `user`, or `None` when the user is at the bound.
    pub fn try_acquire(self: &Arc<Self>, user: UserId) -> Option<WritePermit> {
        let mut in_flight = self.lock();
        let count = in_flight.entry(user).or_insert(0);
        if *count >= self.per_user {
            return None;
        }
        *count += 1;
        Some(WritePermit {
            permits: Arc::clone(self),
            user,
        })
    }

    /// Users with at least one write in flight.
    pub fn tracked_users(&self) -> usize {
        self.lock().len()
    }

    // Every critical section only adjusts counters, so a panic cannot leave them torn.
    fn lock(&self) -> MutexGuard<'_, HashMap<UserId, usize>> {
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn release(&self, user: UserId) {
        let mut in_flight = self.lock();
        if let Some(count) = in_flight.get_mut(&user) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                in_flight.remove(&user);
            }
        }
    }
}

impl Default for WritePermits {
    fn default() -> Self {
        Self::new(Self::DEFAULT_PER_USER)
    }
}

/// One write in flight; released when dropped (when the handler's response is built).
#[derive(Debug)]
pub struct WritePermit {
    permits: Arc<WritePermits>,
    user: UserId,
}

impl Drop for WritePermit {
    fn drop(&mut self) {
        self.permits.release(self.user);
    }
}

impl FromRequest for WritePermit {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let acquire = || {
            let User(principal) = User::from_request(req, &mut Payload::None).into_inner()?;
            let state = req.app_data::<Data<ApiState>>().ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!("the API state is not registered"))
            })?;
            state
                .write_permits
                .try_acquire(principal.user_id)
                .ok_or(ApiError::TooManyConcurrentWrites)
        };
        ready(acquire())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(n: u128) -> UserId {
        UserId::new(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn a_user_gets_at_most_the_bound_and_a_released_permit_comes_back() {
        let permits = Arc::new(WritePermits::new(2));
        let first = permits.try_acquire(user(1));
        let second = permits.try_acquire(user(1));
        assert!(first.is_some() && second.is_some());
        assert!(permits.try_acquire(user(1)).is_none());
        assert!(
            permits.try_acquire(user(2)).is_some(),
            "other users are not affected"
        );
        drop(first);
        assert!(permits.try_acquire(user(1)).is_some());
    }

    #[test]
    fn users_without_writes_in_flight_are_forgotten() {
        let permits = Arc::new(WritePermits::new(4));
        let held: Vec<_> = (0..100)
            .filter_map(|n| permits.try_acquire(user(n)))
            .collect();
        assert_eq!(permits.tracked_users(), 100);
        drop(held);
        assert_eq!(permits.tracked_users(), 0);
    }
}
