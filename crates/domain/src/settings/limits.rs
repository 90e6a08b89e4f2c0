//! `Limits`: the configurable bounds every write is checked against.

use serde::{Deserialize, Serialize};

/// Bounds on settings. Each has the default of docs/design.md, "Domain rules".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Largest serialized value, in bytes (100 KiB).
    pub max_value_bytes: usize,
    /// Deepest nesting of arrays and objects in a value (32).
    pub max_json_depth: usize,
    /// Longest description, in characters (1024).
    pub max_description_chars: usize,
    /// Most settings one user may hold (1000).
    pub max_settings_per_user: u32,
    /// Most items in one bulk write (100).
    pub max_bulk_items: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_value_bytes: 100 * 1024,
            max_json_depth: 32,
            max_description_chars: 1024,
            max_settings_per_user: 1000,
            max_bulk_items: 100,
        }
    }
}
