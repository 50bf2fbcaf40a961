//! The checks both fuzz targets make of a cache against their model of it: that `iter`
//! yields exactly the model's entries, which keys the cache no longer holds, and the bounds
//! every snapshot of the statistics keeps. Each target adds what only it can know (the
//! TTL target tolerates unreclaimed expired entries; the sizes target demands exact counts).

use std::collections::{BTreeMap, BTreeSet};

use slabcache::{Cache, Stats, Version};

/// An entry of a target's model: what the cache must hold for its key.
pub trait Modelled {
    fn value(&self) -> &[u8];
    fn version(&self) -> Version;
}

/// What one pass of `iter` yielded, each entry checked against the model.
pub struct Yielded {
    pub keys: BTreeSet<Vec<u8>>,
    /// Key and value bytes of the yielded entries.
    pub payload: u64,
}

/// Walks `cache.iter()` and checks every entry it yields: the model holds the key, with the
/// same value and version, and no key comes twice. `describe` names a key in messages.
pub fn check_iter<E: Modelled>(
    cache: &Cache,
    model: &BTreeMap<Vec<u8>, E>,
    describe: impl Fn(&[u8]) -> String,
) -> Yielded {
    let mut yielded = Yielded {
        keys: BTreeSet::new(),
        payload: 0,
    };
    for (key, value, version) in cache.iter() {
        let Some(entry) = model.get(&key) else {
            panic!(
                "iter yielded {} at {version:?}, which the model does not hold",
                describe(&key)
            );
        };
        assert!(
            entry.value() == value && entry.version() == version,
            "iter yielded {} at {version:?} ({} bytes); the model holds {:?} ({} bytes)",
            describe(&key),
            value.len(),
            entry.version(),
            entry.value().len()
        );
        yielded.payload += (key.len() + value.len()) as u64;
        assert!(
            !yielded.keys.contains(&key),
            "iter yielded {} twice",
            describe(&key)
        );
        yielded.keys.insert(key);
    }
    yielded
}

/// The model's keys that `iter` did not yield: gone from the cache.
pub fn vanished<E>(model: &BTreeMap<Vec<u8>, E>, yielded: &Yielded) -> Vec<Vec<u8>> {
    model
        .keys()
        .filter(|key| !yielded.keys.contains(*key))
        .cloned()
        .collect()
}

/// The bounds of every statistics snapshot: the budget the cache was built with, the arena
/// within it, `entries` as `len()` counts them, and within `max_entries` if there is one.
pub fn check_bounds(cache: &Cache, stats: &Stats, max_bytes: u64, max_entries: Option<u64>) {
    assert_eq!(stats.max_bytes, max_bytes, "stats.max_bytes");
    assert!(
        stats.arena_bytes_used <= stats.max_bytes,
        "arena bytes used {} above max_bytes {}",
        stats.arena_bytes_used,
        stats.max_bytes
    );
    assert_eq!(stats.entries, cache.len() as u64, "stats.entries and len()");
    if let Some(max) = max_entries {
        assert!(
            stats.entries <= max,
            "{} entries, max_entries {max}",
            stats.entries
        );
    }
}
