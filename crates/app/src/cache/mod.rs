//! Read-through caches as decorators of the repository ports: preferences per
//! user, settings per user and key, and per-user listings; and the memo of verified tokens.
//!
//! - Concurrent misses of one entry load it once (moka's `try_get_with`); absent rows are
//!   cached too (a later write invalidates them like any other entry).
//! - Every local write invalidates its user's entries, whatever its outcome.
//! - The store's change feed invalidates the entries another instance changed; `FlushAll`
//!   (after every feed reconnect) and a listener that fell behind drop everything.
//! - A load that began before an invalidation is never served after it (`generations`).
//! - Each cache is held to a byte budget: an entry weighs an estimate of what it pins, and a
//!   listing above a threshold is served but not cached (`budget`).
//! - The TTL is the backstop for anything missed; a TTL of 0 disables a cache (the app then
//!   wires the repository without decorator).

mod budget;
mod defaults;
mod devices;
mod generations;
mod imports;
mod invalidation;
mod preferences;
mod read_through;
mod settings;
#[cfg(test)]
mod tests;
mod tokens;
mod views;

pub use budget::{Budget, ByteSize, SettingsBudgets};
pub use defaults::{CachedDefaultsRepository, DefaultsCache};
pub use devices::InvalidatingDeviceSettings;
pub use imports::InvalidatingImport;
pub use invalidation::{Caches, spawn_invalidation};
pub use preferences::{CachedPreferencesRepository, PreferencesCache};
pub use read_through::CacheCounters;
pub use settings::{CachedSettingsRepository, SettingsCache};
pub use tokens::{VERIFIED_TOKENS_BYTES, VerifiedTokenCache};
pub use views::RenderedViews;
