//! `Limits`: the configurable bounds every write is checked against, and the per-user quota.

use serde::{Deserialize, Serialize};

/// Bounds on settings. Each has the default of docs/design.md, "Domain rules".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest value, in bytes of its JSON text without the whitespace between tokens
    /// (100 KiB).
    pub max_value_bytes: usize,
    /// Deepest nesting of arrays and objects in a value (32).
    pub max_json_depth: usize,
    /// Longest description, in characters (1024).
    pub max_description_chars: usize,
    /// Most settings one user may hold (1000).
    pub max_settings_per_user: u32,
    /// Most bytes of values one user may hold, as the store measures them (5 MiB; see
    /// [`UserQuota::max_bytes`]).
    pub max_bytes_per_user: u64,
    /// Most items in one bulk write (100).
    pub max_bulk_items: usize,
    /// Most devices of one user that hold overrides (20).
    pub max_devices_per_user: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_value_bytes: 100 * 1024,
            max_json_depth: 32,
            max_description_chars: 1024,
            max_settings_per_user: 1000,
            max_bytes_per_user: 5 * 1024 * 1024,
            max_bulk_items: 100,
            max_devices_per_user: 20,
        }
    }
}

impl Limits {
    /// The largest `max_bulk_items` a deployment may configure: a bulk body is never read
    /// past this many items.
    pub const BULK_ITEMS_CEILING: usize = 1000;

    /// The per-user quota the store enforces on every write.
    pub fn quota(&self) -> UserQuota {
        UserQuota {
            max_settings: self.max_settings_per_user,
            max_bytes: self.max_bytes_per_user,
            max_devices: self.max_devices_per_user,
        }
    }
}

/// What one user may hold in the store, checked atomically with each write. The user's own
/// settings and their devices' overrides count together.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UserQuota {
    /// Most settings: the user's own and every override of their devices.
    pub max_settings: u32,
    /// Most bytes of values: the sum over the user's settings of the length in bytes of the
    /// value's text as PostgreSQL renders `jsonb` (`octet_length(value::text)`), envelopes
    /// included for secrets. Keys and descriptions do not count.
    pub max_bytes: u64,
    /// Most devices that hold overrides.
    pub max_devices: u32,
}

/// Which quota a write would break, and its figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuotaExceeded {
    /// The number of settings.
    #[error("a user may hold at most {limit} settings")]
    Settings {
        /// The limit.
        limit: u32,
    },
    /// The total size of the values.
    #[error("a user's values may total at most {limit} bytes")]
    Bytes {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The number of devices that hold overrides.
    #[error("a user may have overrides on at most {limit} devices")]
    Devices {
        /// The limit.
        limit: u32,
    },
}
