//! The tokens the authenticator verified, remembered in a bounded in-process cache (the
//! authenticator decides what is remembered and when an entry may be used).

use adapter_http::{VerifiedTokens, auth::Principal};

/// Bytes of tokens remembered at most (each entry weighs its token's length plus
/// [`ENTRY_OVERHEAD`]): about 40 000 tokens of 300 bytes.
pub const VERIFIED_TOKENS_BYTES: u64 = 16 * 1024 * 1024;

/// What an entry costs beyond its token, roughly (the principal and the cache's own keeping).
const ENTRY_OVERHEAD: u32 = 128;

/// Verified tokens by the whole token, least used forgotten first past the byte bound.
pub struct VerifiedTokenCache {
    entries: moka::sync::Cache<Box<str>, Principal>,
}

impl VerifiedTokenCache {
    /// A cache holding at most `max_bytes` of tokens.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            entries: moka::sync::Cache::<Box<str>, Principal>::builder()
                .max_capacity(max_bytes)
                .weigher(|token, _| weight(token))
                .build(),
        }
    }
}

fn weight(token: &str) -> u32 {
    u32::try_from(token.len())
        .unwrap_or(u32::MAX)
        .saturating_add(ENTRY_OVERHEAD)
}

impl VerifiedTokens for VerifiedTokenCache {
    fn recall(&self, token: &str) -> Option<Principal> {
        self.entries.get(token)
    }

    fn remember(&self, token: &str, principal: Principal) {
        self.entries.insert(token.into(), principal);
    }
}

#[cfg(test)]
mod tests {
    use domain::UserId;

    use super::*;

    fn principal(n: u128) -> Principal {
        Principal {
            user_id: UserId::new(uuid::Uuid::from_u128(n)),
            roles: Vec::new(),
            expires_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn a_remembered_token_is_recalled_and_no_other() {
        let cache = VerifiedTokenCache::new(VERIFIED_TOKENS_BYTES);
        cache.remember("a.b.c", principal(1));
        assert_eq!(cache.recall("a.b.c"), Some(principal(1)));
        assert_eq!(cache.recall("a.b.d"), None);
        assert_eq!(cache.recall("a.b."), None);
    }

    #[test]
    fn the_cache_stays_within_its_byte_bound() {
        let bound = 64 * 1024;
        let cache = VerifiedTokenCache::new(bound);
        let token = |i: u32| format!("{i:0>400}");
        for i in 0..2_000 {
            cache.remember(&token(i), principal(u128::from(i)));
        }
        cache.entries.run_pending_tasks();
        assert!(cache.entries.weighted_size() <= bound);
        assert!(cache.entries.entry_count() > 0);
    }
}
