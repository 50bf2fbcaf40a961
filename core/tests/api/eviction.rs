//! What the eviction policy keeps, seen through the API: the cases where W-TinyLFU's admission
//! filter must beat plain recency. (The hit ratios on recorded traces are the benchmark's; these
//! check only that the filter acts at all, with margins no seed of the hash can cross.)

use slabcache::Cache;

use crate::common::miri_or;
use crate::key;

/// A cache of `capacity` entries, small values, bounded by its entry count alone.
fn cache_of(capacity: u64) -> Cache {
    Cache::builder()
        .max_entries(capacity)
        .max_bytes(8 << 20)
        .max_value_bytes(16)
        .build()
        .unwrap()
}

/// Reads `keys` through the cache in order, inserting each miss; returns the hits.
fn replay(cache: &Cache, keys: impl Iterator<Item = usize>) -> usize {
    let mut hits = 0;
    for k in keys {
        if cache.get(&key(k)).is_some() {
            hits += 1;
        } else {
            cache.insert(&key(k), b"v").unwrap();
        }
    }
    hits
}

/// A loop over ten times the cache's capacity: recency keeps nothing (each key is evicted
/// just before it comes back), and the best possible keeps 100 keys of every 1,011. Admission
/// must turn new keys away to keep any: every new key that enters unopposed pushes out a key
/// of the loop that would have hit.
#[test]
fn a_loop_larger_than_the_cache_still_hits() {
    let cache = cache_of(100);
    let rounds = miri_or(3, 50);
    let hits = replay(&cache, (0..rounds).flat_map(|_| 0..1_011));
    let ratio = hits as f64 / (rounds * 1_011) as f64;
    // OPT is 9.8%; W-TinyLFU gets about 9% once its sketch knows the loop.
    let least = if cfg!(miri) { 0.03 } else { 0.06 };
    assert!(ratio >= least, "hit ratio {ratio:.4} on a loop; LRU's is 0");
}

/// A key read often survives a scan of new keys many times the cache's size.
#[test]
fn frequent_keys_survive_a_scan() {
    let cache = cache_of(100);
    let hot = 0..20;
    for _ in 0..10 {
        replay(&cache, hot.clone());
    }
    replay(&cache, 1_000..1_000 + miri_or(300, 2_000));
    let kept = hot.clone().filter(|&k| cache.contains(&key(k))).count();
    assert!(kept >= 18, "{kept} of 20 hot keys survived the scan");
}
