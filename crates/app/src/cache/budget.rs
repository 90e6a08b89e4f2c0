//! Byte budgets: what an entry weighs (an estimate of the bytes it pins in memory), how many
//! bytes a cache may hold, and which entries are too heavy to cache at all.
//!
//! The estimate counts what the entry keeps alive: the key, the value's inline size and what
//! it owns on the heap, plus moka's bookkeeping per entry. JSON values are walked rather than
//! measured as text: `[1,1,1,…]` is 2 bytes of text per element but 32 bytes of
//! `serde_json::Value`, so the text length would under-count such a value sixteenfold.

use std::mem::size_of;

use domain::{
    UserId,
    preferences::StoredPreferences,
    settings::{Category, Page, Setting, SettingKey, StoredValue},
};
use serde_json::Value;

use crate::config::CacheConfig;

/// moka's bookkeeping per entry (the key's `Arc`, the entry's metadata, its places in the
/// access-order and write-order queues and in the hash table); an order of magnitude, not a
/// measurement of one version.
pub const ENTRY_OVERHEAD: usize = 160;

/// Per-entry overhead of a JSON object's map beyond its keys and values (tree nodes).
const MAP_ENTRY_OVERHEAD: usize = 16;

/// Bytes a value owns on the heap (its inline size is counted by whoever holds it).
pub trait HeapSize {
    /// The estimate, in bytes.
    fn heap_bytes(&self) -> usize;
}

/// What an entry of key `K` and value `V` (held as `H`) pins: the inline sizes, the heap
/// parts and moka's overhead.
pub fn entry_bytes<K: HeapSize, V: HeapSize, H>(key: &K, value: &V) -> usize {
    ENTRY_OVERHEAD + size_of::<K>() + key.heap_bytes() + size_of::<H>() + value.heap_bytes()
}

/// The limits of one cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Most bytes the entries may weigh together.
    pub max_bytes: u64,
    /// Every entry is charged at least this, so that a cache full by weight holds at most
    /// `max_bytes / min_entry_bytes` entries (the secondary bound of `cache.max_entries`).
    pub min_entry_bytes: u32,
    /// An entry heavier than this is served but not cached.
    pub max_entry_bytes: u64,
}

impl Budget {
    /// At most `max_bytes`, no other bound (an entry heavier than the whole budget is never
    /// cached).
    pub fn bytes(max_bytes: u64) -> Self {
        Self {
            max_bytes,
            min_entry_bytes: 0,
            max_entry_bytes: max_bytes,
        }
    }

    /// Also at most `max_entries` entries (when set).
    pub fn with_max_entries(self, max_entries: Option<u64>) -> Self {
        let Some(entries) = max_entries.filter(|n| *n > 0) else {
            return self;
        };
        let floor = self.max_bytes.div_ceil(entries);
        Self {
            min_entry_bytes: u32::try_from(floor).unwrap_or(u32::MAX),
            ..self
        }
    }

    /// Entries heavier than `max_entry_bytes` are not cached.
    pub fn with_max_entry_bytes(self, max_entry_bytes: u64) -> Self {
        Self {
            max_entry_bytes: max_entry_bytes.min(self.max_bytes),
            ..self
        }
    }

    /// What an entry of `bytes` is charged, or `None` if it must not be cached.
    pub fn charge(&self, bytes: usize) -> Option<u32> {
        let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
        if bytes > self.max_entry_bytes {
            return None;
        }
        // Below `max_bytes`, which moka holds in a u64 but weighs per entry in a u32.
        let charged = u32::try_from(bytes).ok()?;
        Some(charged.max(self.min_entry_bytes))
    }
}

/// The budgets of the settings caches.
#[derive(Clone, Copy, Debug)]
pub struct SettingsBudgets {
    /// Single settings.
    pub settings: Budget,
    /// Listings.
    pub listings: Budget,
}

// Kept beside `Budget` so the configuration module only declares the fields.
impl CacheConfig {
    /// The budgets of the settings caches.
    pub fn settings_budgets(&self) -> SettingsBudgets {
        SettingsBudgets {
            settings: Budget::bytes(self.settings_max_bytes.get())
                .with_max_entries(self.max_entries),
            listings: Budget::bytes(self.listings_max_bytes.get())
                .with_max_entries(self.max_entries)
                .with_max_entry_bytes(self.max_cached_listing_bytes.get()),
        }
    }

    /// The budget of the preferences cache.
    pub fn preferences_budget(&self) -> Budget {
        Budget::bytes(self.preferences_max_bytes.get()).with_max_entries(self.max_entries)
    }
}

/// A size in bytes, written as a number of bytes or with a binary unit: `64MiB`, `512KiB`,
/// `1GiB`, `4096B`, `4096`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteSize(u64);

impl ByteSize {
    /// `n` bytes.
    pub const fn bytes(n: u64) -> Self {
        Self(n)
    }

    /// `n` MiB.
    pub const fn mib(n: u64) -> Self {
        Self(n << 20)
    }

    /// The size in bytes.
    pub const fn get(self) -> u64 {
        self.0
    }

    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (digits, unit) = text.split_at(split);
        let n: u64 = digits.parse().ok()?;
        let shift = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 0,
            "kib" => 10,
            "mib" => 20,
            "gib" => 30,
            _ => return None,
        };
        n.checked_mul(1 << shift).map(Self)
    }
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let n = self.0;
        match [(30, "GiB"), (20, "MiB"), (10, "KiB")]
            .into_iter()
            .find(|(shift, _)| n != 0 && n.is_multiple_of(1 << shift))
        {
            Some((shift, unit)) => s.serialize_str(&format!("{}{unit}", n >> shift)),
            None => s.serialize_u64(n),
        }
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => Ok(Self(n)),
            Raw::Text(text) => Self::parse(&text).ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{text:?} is not a size such as 64MiB, 512KiB, 1GiB or 4096 (bytes)"
                ))
            }),
        }
    }
}

macro_rules! owns_nothing {
    ($($t:ty),*) => {
        $(impl HeapSize for $t {
            fn heap_bytes(&self) -> usize {
                0
            }
        })*
    };
}

owns_nothing!(UserId, bool, u8, u16, u32, u64, usize, i32, i64);

impl HeapSize for SettingKey {
    fn heap_bytes(&self) -> usize {
        self.as_str().len()
    }
}

impl HeapSize for Page {
    fn heap_bytes(&self) -> usize {
        self.after.heap_bytes()
    }
}

impl HeapSize for Category {
    fn heap_bytes(&self) -> usize {
        self.as_str().len()
    }
}

impl HeapSize for String {
    fn heap_bytes(&self) -> usize {
        self.capacity()
    }
}

impl<T: HeapSize> HeapSize for Option<T> {
    fn heap_bytes(&self) -> usize {
        self.as_ref().map_or(0, HeapSize::heap_bytes)
    }
}

impl<T: HeapSize> HeapSize for Vec<T> {
    fn heap_bytes(&self) -> usize {
        self.capacity() * size_of::<T>() + self.iter().map(HeapSize::heap_bytes).sum::<usize>()
    }
}

impl<A: HeapSize, B: HeapSize> HeapSize for (A, B) {
    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes() + self.1.heap_bytes()
    }
}

impl<A: HeapSize, B: HeapSize, C: HeapSize> HeapSize for (A, B, C) {
    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes() + self.1.heap_bytes() + self.2.heap_bytes()
    }
}

impl<A: HeapSize, B: HeapSize, C: HeapSize, D: HeapSize> HeapSize for (A, B, C, D) {
    fn heap_bytes(&self) -> usize {
        self.0.heap_bytes() + self.1.heap_bytes() + self.2.heap_bytes() + self.3.heap_bytes()
    }
}

impl HeapSize for Value {
    fn heap_bytes(&self) -> usize {
        match self {
            Value::Null | Value::Bool(_) | Value::Number(_) => 0,
            Value::String(s) => s.len(),
            Value::Array(items) => {
                items.len() * size_of::<Value>()
                    + items.iter().map(HeapSize::heap_bytes).sum::<usize>()
            }
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| {
                    MAP_ENTRY_OVERHEAD
                        + size_of::<String>()
                        + k.len()
                        + size_of::<Value>()
                        + v.heap_bytes()
                })
                .sum(),
        }
    }
}

impl HeapSize for StoredValue {
    fn heap_bytes(&self) -> usize {
        match self {
            StoredValue::Plain(value) => value.heap_bytes(),
            StoredValue::Sealed(e) => [&e.alg, &e.kid, &e.salt, &e.nonce, &e.ciphertext]
                .iter()
                .map(|s| s.heap_bytes())
                .sum(),
        }
    }
}

impl HeapSize for Setting {
    fn heap_bytes(&self) -> usize {
        self.key.heap_bytes()
            + self.value.heap_bytes()
            + self.description.as_ref().map_or(0, |d| d.as_str().len())
            + self.category.heap_bytes()
    }
}

impl HeapSize for StoredPreferences {
    fn heap_bytes(&self) -> usize {
        // The inline part is in `size_of`; what it owns (language tags, device tokens) is
        // about its JSON text.
        let mut counter = Counter(0);
        match serde_json::to_writer(&mut counter, &self.overrides) {
            Ok(()) => counter.0,
            // Serializing plain data does not fail; if it did, charge the value's own size.
            Err(_) => size_of::<StoredPreferences>(),
        }
    }
}

/// Counts the bytes written to it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn sizes_read_bytes_and_binary_units() {
        let parse = |t: &str| ByteSize::parse(t).map(ByteSize::get);
        assert_eq!(parse("64MiB"), Some(64 << 20));
        assert_eq!(parse("512 kib"), Some(512 << 10));
        assert_eq!(parse("1GiB"), Some(1 << 30));
        assert_eq!(parse("4096"), Some(4096));
        assert_eq!(parse("4096B"), Some(4096));
        for refused in ["64MB", "1.5MiB", "MiB", "-1", ""] {
            assert_eq!(parse(refused), None, "{refused}");
        }
    }

    #[test]
    fn sizes_serialize_to_what_they_parse_from() {
        for n in [64 << 20, 1 << 30, 3 << 10, 1000, 0] {
            let text = serde_json::to_value(ByteSize(n)).unwrap();
            assert_eq!(
                serde_json::from_value::<ByteSize>(text).unwrap(),
                ByteSize(n)
            );
        }
    }

    #[test]
    fn a_json_array_weighs_its_values_not_its_text() {
        let ones = Value::Array(vec![json!(1); 10_000]);
        let text = serde_json::to_string(&ones).unwrap().len();
        assert!(ones.heap_bytes() >= 10_000 * size_of::<Value>());
        assert!(ones.heap_bytes() > 10 * text);
    }

    #[test]
    fn strings_and_object_keys_count_their_bytes() {
        let small = json!({"k": "v"});
        let large = json!({"k": "v".repeat(10_000)});
        assert!(large.heap_bytes() - small.heap_bytes() >= 9_999);
    }

    #[test]
    fn max_entries_sets_a_floor_per_entry() {
        let budget = Budget::bytes(1000).with_max_entries(Some(10));
        assert_eq!(budget.charge(1), Some(100));
        assert_eq!(budget.charge(500), Some(500));
    }

    #[test]
    fn an_entry_above_the_threshold_is_not_charged_but_refused() {
        let budget = Budget::bytes(1 << 20).with_max_entry_bytes(1000);
        assert_eq!(budget.charge(1000), Some(1000));
        assert_eq!(budget.charge(1001), None);
        assert_eq!(Budget::bytes(100).charge(101), None);
    }
}
