//! Iteration, clear, len, and the entry and arena bounds.

use std::collections::HashMap;
use std::sync::Arc;

use slabcache::{ManualClock, Version, MAX_KEY_LEN};

use crate::common::{
    hang_limited, miri_or, padded_key, pattern_value, small_builder, small_cache, Rng,
    SMALL_MAX_VALUE, SMALL_PAGE,
};
use crate::{assert_absent, assert_holds, describe, key, SEC};

#[test]
fn iter_yields_each_live_entry_once() {
    let (cache, clock) = small_cache();
    // Under Miri fewer and shorter values: 8 size classes, one for each of its 8 pages.
    let (n, longest) = (miri_or(40, 400), miri_or(100, 3000));
    let mut model: HashMap<Vec<u8>, (Vec<u8>, Version)> = HashMap::new();
    for i in 0..n {
        let k = key(i);
        let val = pattern_value(&k, i * 13 % longest);
        let v = cache.insert(&k, &val).unwrap();
        model.insert(k, (val, v));
    }
    for i in (0..n).step_by(7) {
        assert!(cache.remove(&key(i)));
        model.remove(&key(i));
    }
    for i in (1..n).step_by(5) {
        let k = key(i);
        let val = pattern_value(&k, i % 50);
        if let Ok(v) = cache.replace(&k, &val) {
            model.insert(k, (val, v));
        }
    }
    // Entries with a TTL that passes before iterating are not yielded.
    for i in 0..miri_or(10, 50) {
        cache
            .insert_with_ttl(format!("short:{i}").as_bytes(), b"s", Some(SEC))
            .unwrap();
    }
    clock.advance(SEC);

    let mut seen: HashMap<Vec<u8>, (Vec<u8>, Version)> = HashMap::new();
    for (k, val, v) in cache.iter() {
        assert!(!k.starts_with(b"short:"), "expired entry yielded");
        let prev = seen.insert(k.clone(), (val, v));
        assert!(
            prev.is_none(),
            "key {:?} yielded twice",
            String::from_utf8_lossy(&k)
        );
    }
    assert_eq!(seen.len(), model.len());
    for (k, (val, v)) in &model {
        let name = String::from_utf8_lossy(k);
        let (got, gv) = seen
            .get(k)
            .unwrap_or_else(|| panic!("live key {name} not yielded"));
        assert!(got == val, "key {name}: yielded {}", describe(Some(got)));
        assert_eq!(gv, v, "key {name}: yielded version");
    }

    cache.clear();
    assert_eq!(cache.iter().count(), 0);
}

#[test]
fn clear_empties_the_cache() {
    let (cache, _clock) = small_cache();
    // Under Miri fewer and shorter values: 8 size classes, one for each of its 8 pages.
    let (n, longest) = (miri_or(40, 300), miri_or(100, 9000));
    let mut versions = Vec::new();
    for i in 0..n {
        let k = key(i);
        versions.push(
            cache
                .insert(&k, &pattern_value(&k, i * 31 % longest))
                .unwrap(),
        );
    }
    assert_eq!(cache.len(), n);
    cache.clear();
    assert_eq!(cache.len(), 0);
    assert!(cache.is_empty());
    for i in 0..n {
        assert_absent(&cache, &key(i));
    }
    let s = cache.stats();
    assert_eq!((s.entries, s.payload_bytes, s.removals), (0, 0, n as u64));
    assert_eq!(cache.iter().count(), 0);
    cache.clear();
    assert_eq!(
        cache.stats().removals,
        n as u64,
        "clearing an empty cache removes nothing"
    );

    // Usable afterwards, with versions still above the old ones.
    for (i, old) in versions.iter().enumerate() {
        let k = key(i);
        let v = cache.insert(&k, b"new").unwrap();
        assert!(v > *old);
    }
    assert_eq!(cache.len(), n);
}

#[test]
fn len_and_contains_follow_writes() {
    let (cache, _clock) = small_cache();
    let n = miri_or(40, 100);
    for i in 0..n {
        cache.insert(&key(i), b"v").unwrap();
        assert_eq!(cache.len(), i + 1);
        assert!(cache.contains(&key(i)));
    }
    for i in 0..n {
        cache.insert(&key(i), b"w").unwrap();
    }
    assert_eq!(cache.len(), n);
    for i in (0..n).step_by(2) {
        assert!(cache.remove(&key(i)));
    }
    assert_eq!(cache.len(), n / 2);
    for i in 0..n {
        assert_eq!(cache.contains(&key(i)), i % 2 == 1);
    }
}

hang_limited! {
    fn max_entries_bounds_len_after_every_write() {
        // Under Miri fewer writes, of values in fewer size classes than the cache has pages
        // (moving a page costs seconds there), against a lower bound.
        let (max_entries, writes, longest) =
            (miri_or(20, 100), miri_or(60, 2000), miri_or(100, 20_000));
        let clock = Arc::new(ManualClock::new());
        let cache = small_builder(&clock)
            .max_entries(max_entries as u64)
            .build()
            .unwrap();
        let mut rng = Rng::new(2);
        for i in 0..writes {
            let k = key(rng.below(3000) as usize);
            let val = pattern_value(&k, rng.log_uniform(1, longest));
            if i % 4 == 0 {
                let _ = cache.insert_if_absent(&k, &val);
            } else {
                let v = cache.insert(&k, &val).unwrap();
                assert!(
                    cache.get_versioned(&k) == Some((val, v)),
                    "fresh write {i} lost"
                );
            }
            assert!(
                cache.len() <= max_entries,
                "len {} above max_entries after write {i}",
                cache.len()
            );
            assert!(cache.stats().entries <= max_entries as u64);
        }
        assert!(cache.stats().evictions > 0);
    }
}

hang_limited! {
    fn max_entries_one_keeps_only_the_latest_entry() {
        let clock = Arc::new(ManualClock::new());
        let cache = small_builder(&clock).max_entries(1).build().unwrap();
        for i in 0..50 {
            // Reading the entry (a hit marks it referenced) must not stop its eviction.
            let v = cache.insert(&key(i), b"only").unwrap();
            assert_eq!(cache.len(), 1);
            assert_holds(&cache, &key(i), b"only", v);
        }
        assert_eq!(cache.stats().evictions, 49);
    }
}

hang_limited! {
    #[cfg_attr(
        miri,
        ignore = "hashes and compares a 65,535-byte key six times, ~10 s each under Miri"
    )]
    fn one_page_cache_holds_a_maximal_entry() {
        let clock = Arc::new(ManualClock::new());
        let cache = small_builder(&clock).max_bytes(SMALL_PAGE).build().unwrap();
        // First some small entries, so the only page may belong to a small size class.
        for i in 0..100 {
            cache.insert(&key(i), b"small").unwrap();
        }
        let max_key = padded_key("max:", MAX_KEY_LEN);
        let max_val = pattern_value(&max_key, SMALL_MAX_VALUE);
        let v = cache.insert(&max_key, &max_val).unwrap();
        assert_holds(&cache, &max_key, &max_val, v);
        assert!(cache.stats().arena_bytes_used <= SMALL_PAGE);
        // And back to small entries.
        let v2 = cache.insert(b"tiny", b"t").unwrap();
        assert_holds(&cache, b"tiny", b"t", v2);
        assert!(cache.stats().arena_bytes_used <= SMALL_PAGE);
    }
}
